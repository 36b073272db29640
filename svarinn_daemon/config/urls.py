"""The one check of a URL the daemon sends to and of a proxy URL, for every table that has one
(accounts, archives, notifiers), so each refuses the same things with the same words.

Pure: each returns why a URL is refused, or None. A URL that may hold a secret (a webhook's
token in its path) is checked with ``show=False`` and never appears in the reason; one with a
user name or password in it never does.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from svarinn_daemon.common import is_loopback

__all__ = ["proxy_problem", "url_problem"]


def _split(url: str, said: str, credentials: str) -> SplitResult | str:
    """The URL's parts, or why it is refused whatever it is for."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:  # said only when it cannot hold credentials
        return f"{'' if '@' in url else said}is not a URL, or has an invalid port"
    if parts.username or parts.password:
        return f"must not contain a user name or password{credentials}"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return f"{said}must not contain white space or control characters (CR, LF, ...)"
    return parts


def url_problem(
    url: str, *, path: bool = True, query: bool = True, show: bool = True, credentials: str = ""
) -> str | None:
    """Why ``url`` is no URL to send to: https only (plain http to loopback, for test
    servers), a host, no credentials (``credentials`` says where they go instead), nothing
    that could end a header line. ``path=False``: scheme://host[:port] only; ``query=False``:
    no ?query or #fragment."""
    said = f"{url!r} " if show else ""
    parts = _split(url, said, credentials)
    if isinstance(parts, str):
        return parts
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{said}must be an https:// URL"
    if not path and (parts.path not in ("", "/") or parts.query or parts.fragment):
        return f"{said}must be scheme://host[:port] only"
    if not query and (parts.query or parts.fragment):
        return f"{said}must be scheme://host[:port]/path only, without ?query or #fragment"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return (
            f"{said}uses plain http to a remote host; what it sends would travel "
            "unencrypted: use https://"
        )
    return None


def proxy_problem(url: str) -> str | None:
    """Why ``url`` is no ``http://host:port`` proxy: credentials belong in proxy_username and
    proxy_password (a secret), never in a URL that ends up in logs."""
    parts = _split(url, f"{url!r} ", ": set proxy_username and proxy_password_file")
    if isinstance(parts, str):
        return parts
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} must be an http://host:port proxy URL"
    if parts.path.strip("/") or parts.query or parts.fragment:
        return f"{url!r} must be scheme://host:port only"
    return None
