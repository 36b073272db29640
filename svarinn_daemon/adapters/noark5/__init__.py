"""The ``noark5`` archive adapter: Noark 5 tjenestegrensesnitt v1.1 (Arkivverket's REST
standard). ``adapter.py`` walks the links and orders a letter's calls, ``encode.py`` spells
the registration in the standard's JSON (pure)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from svarinn_daemon.adapters import http_options
from svarinn_daemon.adapters.archive_http import ArchiveHttp
from svarinn_daemon.adapters.base import AdapterContext
from svarinn_daemon.adapters.noark5.adapter import DEFAULT_CHUNK, Noark5Archive
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.adapters.registration import TEMPORARY
from svarinn_daemon.adapters.systems import DEFAULT_SAMLESAK

__all__ = ["Noark5Archive", "create_adapter"]

DEFAULT_TIMEOUT = timedelta(minutes=2)


def create_adapter(options: Mapping[str, Any], context: AdapterContext) -> Noark5Archive:
    """Entry point ``noark5``: ``url`` (the API root), ``token_*`` or ``username`` +
    ``password_*``, ``arkivdel``, ``journalstatus``, ``samlesak``, ``title_limit``,
    ``chunk_size``, ``timeout``, ``ca_bundle``, ``client_certificate_file`` + ``client_key_file``,
    ``work_directory``."""
    reader = AdapterOptions(options, context)
    url = reader.string("url", "", blank=True)
    if not url:
        raise context.option_error("url", "is required: the API root (e.g. .../noark5v5/)")
    http_options.check_url(reader, "url", url)
    arkivdel = reader.string("arkivdel", "", blank=True).strip()
    if not arkivdel:
        raise context.option_error("arkivdel", "is required: the arkivdel's title or systemID")
    token = reader.secret("token")
    username = reader.string("username", "") or None
    password = reader.secret("password")
    if (username is None) != (password is None):
        raise context.option_error("username", "username and password_file go together")
    if token is not None and username is not None:
        raise context.option_error("token", "set token_file or username + password, not both")
    secrets: tuple[str, ...] = ()
    value: str | None = None
    if token is not None:
        value = f"Bearer {token.reveal()}"
        secrets = (token.reveal(),)
    elif username is not None and password is not None:
        pair = base64.b64encode(f"{username}:{password.reveal()}".encode()).decode()
        value = f"Basic {pair}"
        secrets = (password.reveal(), pair)
    samlesak = reader.string("samlesak", DEFAULT_SAMLESAK)
    try:
        samlesak.format(year=2026)
    except (KeyError, IndexError, ValueError):
        raise context.option_error("samlesak", "may hold {year} and no other {...}") from None
    journalstatus = reader.string("journalstatus", TEMPORARY, blank=False)
    title_limit = reader.integer("title_limit", 255, minimum=20, maximum=4000)
    chunk_size = reader.size("chunk_size", DEFAULT_CHUNK)
    if chunk_size < 64 * 1024:
        raise context.option_error("chunk_size", "must be at least 64KiB")
    timeout = reader.duration("timeout", DEFAULT_TIMEOUT)
    tls = http_options.tls_context(reader)
    work = reader.work_directory()
    reader.finish()
    http = ArchiveHttp(
        timeout=timeout,
        tls=tls,
        secrets=secrets,
        credentials_hint="check token, or username and password",
    )
    return Noark5Archive(
        url,
        arkivdel=arkivdel,
        authorization=lambda: value,
        http=http,
        work_directory=work,
        timeout=timeout,
        journalstatus=journalstatus,
        samlesak=samlesak,
        title_limit=title_limit,
        chunk_size=chunk_size,
        owner=context.worker_id,
    )
