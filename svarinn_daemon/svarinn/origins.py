"""Origins (scheme, host, port): the unit credentials are bound to.

Credentials for an account go only to the origin of its ``base_url``. A downloadUrl or a
redirect elsewhere is refused unless the operator listed that origin in
``http.allowed_download_origins``, and even then it is fetched without credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from svarinn_daemon.errors import OriginNotAllowedError, ProtocolError

__all__ = ["Origin", "OriginPolicy", "display_url", "redirect_target"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str | httpx.URL) -> Origin:
        """The origin of an absolute http(s) URL, with host lower-cased and port explicit."""
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
            host = parsed.raw_host.decode("ascii").lower()
        except (httpx.InvalidURL, UnicodeDecodeError, TypeError) as exc:
            raise ProtocolError(f"{display_url(str(url))!r} is not a valid URL: {exc}") from None
        scheme = parsed.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not host:
            raise OriginNotAllowedError(f"{display_url(str(url))!r} is not an absolute http(s) URL")
        port = parsed.port or _DEFAULT_PORTS[scheme]
        if not 0 < port < 65536 or "%" in host:
            raise ProtocolError(f"{display_url(str(url))!r} is not a valid URL")
        return cls(scheme, host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"


def display_url(url: str) -> str:
    """A URL fit for messages and logs: no user-info, no query, no fragment."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        query = "..." if parts.query else ""
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))[:300]
    except ValueError:
        return "<unparseable URL>"


@dataclass(frozen=True)
class OriginPolicy:
    """Where one account's requests may go: ``home`` (its ``base_url``'s origin) with its
    credentials, the ``downloads`` origins the operator allowed without them, nowhere else."""

    home: Origin
    downloads: frozenset[Origin] = frozenset()

    def credentials_for(self, target: httpx.URL, *, download: bool, account: str) -> bool:
        """True when ``target`` is home (send credentials); raise when it is not allowed."""
        origin = Origin.of(target)
        if origin == self.home:
            return True
        if download and origin in self.downloads:
            return False
        raise OriginNotAllowedError(
            f"account {account}: {display_url(str(target))} is on origin {origin}, "
            f"not on the account's {self.home}; refusing to connect. If SvarUt really serves "
            f'files from there, add "{origin}" to http.allowed_download_origins (credentials '
            "are never sent there)"
        )


def redirect_target(target: httpx.URL, location: str, *, where: str) -> httpx.URL:
    """Where a redirect points; a Location that is no http(s) URL with a host (such as
    ``http:host:port/x``) is the server's protocol error, never ours."""
    shown = repr(location[:200])
    try:
        joined = target.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ProtocolError(f"{where}: bad redirect Location {shown} ({exc})") from None
    if joined.scheme not in ("http", "https") or not joined.host:
        raise ProtocolError(f"{where}: redirect Location {shown} is not an http(s) URL with a host")
    return joined
