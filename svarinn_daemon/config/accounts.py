"""The ``[[accounts]]`` tables: one SvarInn mottakersystem each, with keys and HTTP settings."""

from __future__ import annotations

import base64
import difflib
import stat
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import unquote, urlsplit

from svarinn_daemon.config.model import (
    API_VERSIONS,
    DEFAULT_BASE_URL,
    DEFAULT_V2_BASE_URL,
    AccountConfig,
    ArchiveConfig,
    HttpConfig,
    KeyConfig,
)
from svarinn_daemon.config.secrets import secret_keys
from svarinn_daemon.config.table import Table
from svarinn_daemon.errors import ConfigError


def read_account(table: Table, archives: Mapping[str, ArchiveConfig]) -> AccountConfig:
    name = table.string("name")
    if not name or not all(c.isalnum() or c in "-_" for c in name) or not name.isascii():
        table.fail("name", f"{name!r} must be letters, digits, '-' or '_'")
    api = table.string("api", "v1", choices=API_VERSIONS)
    default_base = DEFAULT_V2_BASE_URL if api == "v2" else DEFAULT_BASE_URL
    base_url = table.string("base_url", default_base).rstrip("/")
    if api == "v1":
        said = "is v1" if "api" in table.data else "is not set, so it means v1"
        table.ctx.warnings.append(
            f"{table.key('api')} {said}: SvarInn v1 (MottakService), which KS lists as "
            'deprecated; switch to api = "v2" '
            '(docs/svarinn.md: "Switching an account from v1 to v2")'
        )
    table.check_url("base_url", base_url, query=False, credentials=": set password_file")
    username = table.string("username")
    password = table.secret("password", required=True)
    assert password is not None
    archive = table.string("archive", "default")
    if archive not in archives:
        close = difflib.get_close_matches(archive, list(archives), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        table.fail(
            "archive",
            f"no [archives.{archive}] is defined (defined: {', '.join(archives)}){hint}",
        )
    keys = tuple(_key(t) for t in table.tables("keys"))
    if not keys:
        table.fail("keys", "at least one [[accounts.keys]] (the private key SvarUt encrypts for)")
    receipts = table.boolean("receipts", True)
    if not receipts:
        table.ctx.warnings.append(
            f"{table.key('receipts')} is false: shadow mode, letters are imported but never "
            "acknowledged (no kvitterMottak, no mottakFeilet); another importer must answer "
            "SvarUt for them"
        )
    http = _http(table.table("http"))
    table.finish()
    return AccountConfig(
        name=name,
        username=username,
        password=password,
        keys=keys,
        archive=archive,
        base_url=base_url,
        http=http,
        receipts=receipts,
        api=api,
    )


def _environment_proxy_secrets(table: Table) -> tuple[str, ...]:
    """With ``trust_env`` httpx takes proxies from the environment, credentials and all: their
    password and the Basic value built from them are secrets for the log redactor."""
    out: list[str] = []
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        for variant in (name, name.lower()):
            parts = urlsplit(table.ctx.environ.get(variant, ""))
            if parts.password:
                user, password = unquote(parts.username or ""), unquote(parts.password)
                token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
                out += [password, token]
    return tuple(out)


def _http(table: Table) -> HttpConfig:
    d = HttpConfig()
    positive = timedelta(milliseconds=1)
    origins = table.string_list("allowed_download_origins")
    for i, origin in enumerate(origins):
        table.check_url(f"allowed_download_origins[{i}]", origin.rstrip("/"), path=False)
    ca_bundle = table.optional_path("ca_bundle")
    if ca_bundle is not None and not ca_bundle.is_file():
        table.fail("ca_bundle", f"file {ca_bundle} does not exist")
    proxy = table.proxy()
    http = HttpConfig(
        environment_proxy_secrets=_environment_proxy_secrets(table) if proxy.trust_env else (),
        proxy=proxy.url,
        proxy_username=proxy.username,
        proxy_password=proxy.password,
        trust_env=proxy.trust_env,
        connect_timeout=table.duration("connect_timeout", d.connect_timeout, positive),
        read_timeout=table.duration("read_timeout", d.read_timeout, positive),
        write_timeout=table.duration("write_timeout", d.write_timeout, positive),
        pool_timeout=table.duration("pool_timeout", d.pool_timeout, positive),
        verify_tls=table.boolean("verify_tls", True),
        ca_bundle=ca_bundle,
        max_download_size=table.size("max_download_size", d.max_download_size),
        allowed_download_origins=tuple(o.rstrip("/") for o in origins),
        download_min_rate=table.size("download_min_rate", d.download_min_rate),
        download_deadline_base=table.duration(
            "download_deadline_base", d.download_deadline_base, positive
        ),
        listing_deadline=table.duration("listing_deadline", d.listing_deadline, positive),
    )
    if not http.verify_tls:
        table.ctx.warnings.append(f"{table.key('verify_tls')} is false: TLS is not verified")
    table.finish()
    return http


def _key(table: Table) -> KeyConfig:
    key_secret = table.secret("private_key", required=True, strip=False)
    assert key_secret is not None
    cert_secret = table.secret("certificate", required=False, strip=False)
    passphrase = table.secret("passphrase", required=False)
    table.finish()
    pair = None
    if table.ctx.load_keys:
        from svarinn_daemon.keys import load_key_pair

        try:
            pair = load_key_pair(
                key_secret.source,
                key_secret.reveal_bytes(),
                passphrase=passphrase.reveal_bytes() if passphrase else None,
                certificate_pem=cert_secret.reveal_bytes() if cert_secret else None,
                key_name=table.key(_set_variant(table, "private_key")),
                certificate_name=table.key(_set_variant(table, "certificate")),
            )
        except ConfigError as exc:
            raise ConfigError(str(exc), source=str(table.ctx.source)) from None
    mode = None
    if key_secret.path is not None:
        try:
            mode = stat.S_IMODE(key_secret.path.stat().st_mode)
        except OSError:
            mode = None
    return KeyConfig(
        loaded=pair,
        key_path=key_secret.path,
        key_mode=mode,
        certificate_path=cert_secret.path if cert_secret else None,
    )


def _set_variant(table: Table, name: str) -> str:
    for key in secret_keys(name):
        if key in table.data:
            return key
    return name
