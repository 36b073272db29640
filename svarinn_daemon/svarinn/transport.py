"""How the SvarInn client reaches SvarInn: TLS, proxy, timeouts, and large socket reads.

The HTTP plumbing under :class:`~svarinn_daemon.svarinn.client.SvarInnClient`, apart from
what it says to SvarInn: one ``httpx.Client`` per account, built from its ``HttpConfig``.
"""

from __future__ import annotations

import contextlib
import ssl

import httpcore
import httpx

from svarinn_daemon import __version__, netstream
from svarinn_daemon.config.model import HttpConfig
from svarinn_daemon.errors import ConfigError

READ_SIZE = 256 * 1024  # bytes asked of each socket read of a response


def user_agent() -> str:
    return f"svarinn-daemon/{__version__}"


def http_client(
    http: HttpConfig,
    *,
    account: str,
    transport: httpx.BaseTransport | None = None,
    max_connections: int = 16,
) -> httpx.Client:
    """The account's HTTP client: no redirects followed (the SvarInn client checks each hop's
    origin), no cookies kept, the environment's proxy and CA settings only with
    ``trust_env``."""
    client = _CookielessClient(
        timeout=httpx.Timeout(
            connect=http.connect_timeout.total_seconds(),
            read=http.read_timeout.total_seconds(),
            write=http.write_timeout.total_seconds(),
            pool=http.pool_timeout.total_seconds(),
        ),
        verify=_tls_verification(http, account),
        transport=transport,
        follow_redirects=False,
        proxy=proxy_for(http),
        trust_env=http.trust_env,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        headers={"User-Agent": user_agent()},
    )
    if transport is None:
        _read_large(client)
    return client


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing. SvarInn's API needs no cookie, and one kept would go with
    the next request, perhaps to another origin after a redirect; reading each response's
    into a jar also cost every request a urllib round trip (a fifth of httpx's time per
    small letter, measured by benchmarks/bench_daemon.py under py-spy)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


class _CookielessClient(httpx.Client):
    """An httpx.Client whose ``cookies`` is always an empty :class:`_NoCookies`."""

    @property
    def cookies(self) -> httpx.Cookies:
        jar = self.__dict__.get("_no_cookies")
        if jar is None:
            jar = self.__dict__["_no_cookies"] = _NoCookies()
        return jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        """httpx sets the jar at construction; nothing is kept."""


def _read_large(client: httpx.Client) -> None:
    """httpcore asks each recv() for 64 KiB, so a 1 GiB letter takes 16,000 trips through
    h11 and httpx, which cost the daemon a third of its CPU per byte (measured by
    benchmarks/bench_daemon.py). This client's connections read up to READ_SIZE instead;
    other clients (the notifiers') keep the default."""
    netstream.install(client, lambda inner: netstream.WrappingBackend(inner, _LargeReadStream))


class _LargeReadStream(netstream.PassStream):
    def __init__(self, inner: httpcore.NetworkStream, *, tls: bool = False):
        super().__init__(inner)
        self._tls = tls

    def wrap(self, inner: httpcore.NetworkStream) -> httpcore.NetworkStream:
        return _LargeReadStream(inner, tls=True)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        limit = max(max_bytes, READ_SIZE)
        data = self._inner.read(limit, timeout)
        if self._tls and data:
            return self._gather(data, limit)
        return data

    def _gather(self, first: bytes, limit: int) -> bytes:
        """Over TLS each recv() returns one record (16 KiB at most), so HTTP parsing would
        run per 16 KiB: take the records already here as well, up to ``limit``, without
        waiting for more. A failure is left to the next read, which httpcore maps."""
        sock = self._inner.get_extra_info("socket")
        if not isinstance(sock, ssl.SSLSocket) or isinstance(
            self._inner.get_extra_info("ssl_object"), ssl.SSLObject
        ):
            # TLS in TLS (an https proxy): the socket carries the proxy's outer layer, whose
            # bytes are the inner records, not the body; httpcore's own stream reads them.
            return first
        parts, have = [first], len(first)
        previous = sock.gettimeout()
        try:
            sock.settimeout(0.0)
            while have < limit:
                more = sock.recv(limit - have)
                if not more:
                    break
                parts.append(more)
                have += len(more)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            pass  # nothing more has arrived yet
        except OSError:
            pass  # said by the next read, through httpcore's error mapping
        finally:
            with contextlib.suppress(OSError):  # a socket closed meanwhile: the next read says
                sock.settimeout(previous)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def proxy_for(http: HttpConfig) -> httpx.Proxy | None:
    """The configured proxy, with its credentials (sent to the proxy only, as
    Proxy-Authorization; an https origin is reached through a CONNECT tunnel, so the
    account's own Authorization travels encrypted end to end)."""
    if http.proxy is None:
        return None
    if http.proxy_username is not None and http.proxy_password is not None:
        return httpx.Proxy(http.proxy, auth=(http.proxy_username, http.proxy_password.reveal()))
    return httpx.Proxy(http.proxy)


def _tls_verification(http: HttpConfig, account: str) -> ssl.SSLContext | bool:
    if not http.verify_tls:
        return False
    try:
        if http.ca_bundle is not None:
            return ssl.create_default_context(cafile=str(http.ca_bundle))
        return ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the CA bundle {http.ca_bundle}: {exc}",
            key=f"accounts.{account}.http.ca_bundle",
        ) from None
