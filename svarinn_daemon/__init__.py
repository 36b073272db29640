"""svarinn-daemon: fetches letters from KS SvarInn, decrypts and verifies them, hands them
to the archive and acknowledges them before SvarUt sends them on by post.
"""

__version__ = "0.1.0"
