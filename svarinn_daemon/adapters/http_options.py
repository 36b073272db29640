"""The ``http`` adapter's options that need more than reading: URLs, headers, the
Authorization value (a token, or basic auth) and TLS, each refused with the key it came from.

Apart from ``http_archive.py`` so that the adapter's sending and its configuration each stay
readable. No secret value is ever part of an error.
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Mapping

from svarinn_daemon.adapters.base import AdapterContext
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.config.secrets import Secret

__all__ = [
    "SECRET_LOOKING",
    "authorization",
    "check_headers",
    "check_url",
    "secret_headers",
    "secret_strings",
    "tls_context",
]

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_BAD_HEADER_VALUE = re.compile(r"[\r\n\x00]")
SECRET_LOOKING = re.compile(r"key|token|auth|secret|pass|cookie|session", re.IGNORECASE)


def check_headers(context: AdapterContext, key: str, headers: Mapping[str, str]) -> None:
    """No header the adapter sets itself, and nothing that could end a header line."""
    for name, value in headers.items():
        if name.lower() in ("authorization", "idempotency-key", "content-type"):
            raise context.option_error(key, f"{name} is set by the adapter itself")
        if not _HEADER_NAME.fullmatch(name) or _BAD_HEADER_VALUE.search(value):
            raise context.option_error(key, f"{name!r}: not a header name, or CR/LF/NUL in it")


def secret_headers(reader: AdapterOptions) -> dict[str, Secret]:
    """``secret_headers_file = { X-Api-Key = "/etc/.../api-key" }``: header values read from
    files, never printed, hidden in logs and errors."""
    context = reader.context
    out: dict[str, Secret] = {}
    for name, path in reader.string_table("secret_headers_file").items():
        file = context.base_dir / path
        try:
            value = file.read_text("utf-8").strip()
        except OSError as exc:
            raise context.option_error(
                "secret_headers_file", f"{name}: cannot read {file}: {exc.strerror}"
            ) from None
        out[name] = Secret(source=f"file:{file}", _value=value.encode(), path=file)
    return out


def authorization(reader: AdapterOptions) -> tuple[Secret | None, Secret | None]:
    """The Authorization value (``authorization_*``, or ``username`` + ``password_*`` as
    Basic) and the basic password, for the redactor."""
    context = reader.context
    value = reader.secret("authorization")
    username = reader.string("username", "") or None
    password = reader.secret("password")
    if (username is None) != (password is None):
        raise context.option_error("username", "username and password_file go together")
    if username is not None and password is not None:
        if value is not None:
            raise context.option_error("username", "set authorization_file or basic auth, not both")
        pair = f"{username}:{password.reveal()}".encode()
        basic = b"Basic " + base64.b64encode(pair)
        return Secret(source=f"basic:{username}", _value=basic), password
    if value is not None and _BAD_HEADER_VALUE.search(value.reveal()):
        # httpx would refuse it at each request with the whole value in its error text.
        raise context.option_error(
            "authorization", "CR, LF or NUL in its value: the file holds the one header value"
        )
    return value, None


def secret_strings(authorization: Secret | None, password: Secret | None) -> list[str]:
    """The Authorization value whole and its credential (``Bearer <this>``), the password."""
    out = [password.reveal()] if password is not None else []
    if authorization is not None:
        value = authorization.reveal()
        out += [value, value.partition(" ")[2].strip()]
    return [s for s in out if len(s) >= 4]


def check_url(reader: AdapterOptions, key: str, text: str) -> None:
    """The one URL check (``config/urls.py``); credentials go in authorization_file."""
    reader.check_url(key, text, credentials=": set authorization_file")


def tls_context(reader: AdapterOptions) -> ssl.SSLContext:
    """Always verifying: ``ca_bundle`` for a private CA, ``client_certificate_file`` and
    ``client_key_file`` (together) for mTLS."""
    context = reader.context
    ca_bundle = reader.optional_path("ca_bundle")
    certificate = reader.optional_path("client_certificate_file")
    key = reader.optional_path("client_key_file")
    if (certificate is None) != (key is None):
        raise context.option_error(
            "client_certificate_file", "client_certificate_file and client_key_file go together"
        )
    try:
        tls = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    except (OSError, ssl.SSLError) as exc:
        raise context.option_error("ca_bundle", f"cannot load {ca_bundle}: {exc}") from None
    if certificate is not None and key is not None:
        try:
            tls.load_cert_chain(certificate, key)
        except (OSError, ssl.SSLError) as exc:
            raise context.option_error(
                "client_certificate_file", f"cannot load {certificate} with {key}: {exc}"
            ) from None
    return tls
