"""Local archive systems, built from their public specifications, for ``demo`` and the tests.

Each is a faithful small implementation of one archive interface on loopback, not a mock of
the daemon: it validates every request against the published schema (a request the real
system would refuse is refused here too), checks what it can (checksums, sizes, the order
of documents), keeps what it receives, and can be told to fail the way real archives do.

``server.py`` is the HTTP server they share; ``giarkiv.py`` is GI-Arkiv 1.1 (SOAP, both
the Oppdatering and the Innsyn service).
"""
