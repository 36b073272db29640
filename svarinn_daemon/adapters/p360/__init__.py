"""The ``p360`` archive adapter: Public 360 through its SIF JSON RPC. ``adapter.py`` orders a
letter's calls, ``encode.py`` spells the registration in SIF's fields (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from svarinn_daemon.adapters import http_options
from svarinn_daemon.adapters.archive_http import ArchiveHttp
from svarinn_daemon.adapters.base import AdapterContext
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.adapters.p360.adapter import (
    DEFAULT_CASE_NUMBER,
    P360Archive,
)
from svarinn_daemon.adapters.p360.encode import Settings
from svarinn_daemon.adapters.registration import TEMPORARY
from svarinn_daemon.adapters.systems import DEFAULT_SAMLESAK

__all__ = ["P360Archive", "create_adapter"]

DEFAULT_TIMEOUT = timedelta(minutes=2)


def _template(reader: AdapterOptions, key: str, default: str, **names: int) -> str:
    value = reader.string(key, default, blank=False)
    try:
        value.format(**names)
    except (KeyError, IndexError, ValueError):
        allowed = ", ".join("{" + n + "}" for n in names)
        raise reader.context.option_error(key, f"may hold {allowed} and no other {{...}}") from None
    return value


def create_adapter(options: Mapping[str, Any], context: AdapterContext) -> P360Archive:
    """Entry point ``p360``: ``url`` (the SI.Data.RPC base), ``authkey_*``, ``authkey_in``,
    ``client_id``, ``archive``, ``category``, ``journalstatus``, ``external_key_field``,
    ``samlesak``, ``case_number_format``, ``case_type``, ``sub_archive``, ``access_code``,
    ``paragraph``, ``responsible_enterprise_number``, ``title_limit``, ``timeout``,
    ``ca_bundle``, ``client_certificate_file`` + ``client_key_file``, ``work_directory``."""
    reader = AdapterOptions(options, context)
    url = reader.string("url", "", blank=True).rstrip("/")
    if not url:
        raise context.option_error("url", "is required: the SIF base, ending in SI.Data.RPC")
    http_options.check_url(reader, "url", url)
    authkey = reader.secret("authkey", required=True)
    assert authkey is not None
    authkey_in = reader.string("authkey_in", "header", choices=("header", "query"))
    field = reader.string("external_key_field", "", blank=True).strip()
    if not field:
        raise context.option_error(
            "external_key_field",
            "is required: the custom field (AdditionalFields) 360 keeps the forsendelse id "
            "in, which finds a letter again; ask the 360 administrator to create one",
        )
    settings = Settings(
        archive=reader.string("archive", "Saksdokument", blank=False),
        category=reader.string("category", "110", blank=False),
        external_key_field=field,
        access_code=reader.string("access_code", "") or None,
        paragraph=reader.string("paragraph", "") or None,
        responsible_enterprise_number=reader.string("responsible_enterprise_number", "") or None,
        sub_archive=reader.string("sub_archive", "") or None,
        case_type=reader.string("case_type", "") or None,
    )
    samlesak = _template(reader, "samlesak", DEFAULT_SAMLESAK, year=2026)
    case_number = _template(
        reader,
        "case_number_format",
        DEFAULT_CASE_NUMBER,
        saksaar=2026,
        saksaar_short=26,
        sakssekvensnummer=1,
    )
    journalstatus = reader.string("journalstatus", TEMPORARY, blank=False)
    client_id = reader.string("client_id", "") or None
    title_limit = reader.integer("title_limit", 254, minimum=20, maximum=4000)
    timeout = reader.duration("timeout", DEFAULT_TIMEOUT)
    tls = http_options.tls_context(reader)
    work = reader.work_directory()
    reader.finish()
    http = ArchiveHttp(
        timeout=timeout,
        tls=tls,
        secrets=(authkey.reveal(),),
        credentials_hint="check authkey (and client_id)",
    )
    return P360Archive(
        url,
        authkey=authkey,
        settings=settings,
        work_directory=work,
        timeout=timeout,
        authkey_in=authkey_in,
        client_id=client_id,
        journalstatus=journalstatus,
        samlesak=samlesak,
        case_number_format=case_number,
        title_limit=title_limit,
        http=http,
        owner=context.worker_id,
    )
