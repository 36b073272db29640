"""The ``gi-arkiv`` archive adapter: GI-Arkiv 1.1 (GeoIntegrasjon, SOAP) on the standard's
own WSDL/XSD through zeep. ``adapter.py`` orders a letter's calls, ``encode.py`` spells the
registration in GI-Arkiv's types (pure), ``soap.py`` sends and reads them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from svarinn_daemon.adapters import http_options
from svarinn_daemon.adapters.base import AdapterContext
from svarinn_daemon.adapters.giarkiv.adapter import (
    DEFAULT_FAGSYSTEM,
    GiArkivArchive,
)
from svarinn_daemon.adapters.giarkiv.soap import GiArkivSoap
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.adapters.registration import TEMPORARY
from svarinn_daemon.adapters.systems import DEFAULT_SAMLESAK

__all__ = ["GiArkivArchive", "create_adapter"]

DEFAULT_TIMEOUT = timedelta(minutes=2)


def create_adapter(options: Mapping[str, Any], context: AdapterContext) -> GiArkivArchive:
    """Entry point ``gi-arkiv``: ``url`` (Oppdatering), ``innsyn_url``, ``username`` +
    ``password_*``, ``arkivdel``, ``journalenhet``, ``journalstatus``, ``samlesak``,
    ``fagsystem``, ``klientnavn``, ``title_limit``, ``permanent_fault_codes``, ``timeout``,
    ``ca_bundle``, ``client_certificate_file`` + ``client_key_file``, ``work_directory``."""
    reader = AdapterOptions(options, context)
    url = reader.string("url", "", blank=True)
    if not url:
        raise context.option_error("url", "is required: the SakArkivOppdatering service")
    http_options.check_url(reader, "url", url)
    innsyn_url = reader.string("innsyn_url", "", blank=True)
    if not innsyn_url:
        raise context.option_error(
            "innsyn_url", "is required: the Innsyn service, which finds a letter again"
        )
    http_options.check_url(reader, "innsyn_url", innsyn_url)
    username = reader.string("username", "") or None
    password = reader.secret("password")
    if (username is None) != (password is None):
        raise context.option_error("username", "username and password_file go together")
    samlesak = reader.string("samlesak", DEFAULT_SAMLESAK)
    try:
        samlesak.format(year=2026)
    except (KeyError, IndexError, ValueError):
        raise context.option_error(
            "samlesak", 'may hold {year} and no other {...}: e.g. "SvarInn {year}"'
        ) from None
    journalstatus = reader.string("journalstatus", TEMPORARY, blank=False)
    arkivdel = reader.string("arkivdel", "") or None
    journalenhet = reader.string("journalenhet", "") or None
    fagsystem = reader.string("fagsystem", DEFAULT_FAGSYSTEM, blank=False)
    klientnavn = reader.string("klientnavn", "svarinn-daemon", blank=False)
    title_limit = reader.integer("title_limit", 255, minimum=20, maximum=4000)
    permanent = reader.string_list("permanent_fault_codes", blank=False)
    timeout = reader.duration("timeout", DEFAULT_TIMEOUT)
    tls = http_options.tls_context(reader)
    work = reader.work_directory()
    reader.finish()
    soap = GiArkivSoap(
        oppdatering_url=url.rstrip("/"),
        innsyn_url=innsyn_url.rstrip("/"),
        username=username,
        password=password,
        timeout=timeout,
        tls=tls,
    )
    return GiArkivArchive(
        soap,
        work_directory=work,
        timeout=timeout,
        owner=context.worker_id,
        arkivdel=arkivdel,
        journalenhet=journalenhet,
        journalstatus=journalstatus,
        samlesak=samlesak,
        fagsystem=fagsystem,
        klientnavn=klientnavn,
        title_limit=title_limit,
        permanent_fault_codes=permanent,
    )
