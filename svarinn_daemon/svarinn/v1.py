"""SvarInn MottakService v1 (deprecated by KS; V2 is the default): its keys, its item
parser and its endpoints. Everything both versions share is in ``parsing.py`` (reading)
and ``client.py`` (HTTP); the records are ``records.py``'s."""

from __future__ import annotations

from typing import Any, TypeVar

from svarinn_daemon.svarinn.client import SvarInnHttpClient, path_id
from svarinn_daemon.svarinn.parsing import (
    FileKeys,
    as_text,
    item_id_and_link,
    metadata,
    parse_date,
    parse_files,
)
from svarinn_daemon.svarinn.parsing import parse_item as _parse_item
from svarinn_daemon.svarinn.parsing import parse_listing as _parse_listing
from svarinn_daemon.svarinn.records import (
    Adressat,
    Avsender,
    Forsendelse,
    Listing,
    Mottaker,
    RejectedItem,
    compact_json,
)

__all__ = [
    "ACKNOWLEDGE_PATH",
    "LISTING_NAME",
    "LIST_PATH",
    "REPORT_FAILURE_PATH",
    "SvarInnClient",
    "parse_forsendelse",
    "parse_forsendelser",
    "parse_item",
    "parse_listing",
]

LISTING_NAME = "hentNyeForsendelser"
LIST_PATH = "/tjenester/svarinn/mottaker/hentNyeForsendelser"
ACKNOWLEDGE_PATH = "/tjenester/svarinn/kvitterMottak/forsendelse/{id}"
REPORT_FAILURE_PATH = "/tjenester/svarinn/mottakFeilet/forsendelse/{id}"
# v1 spells a metadata block's case officer both ways.
_V1_SAKSBEHANDLER = ("saksBehandler", "saksbehandler")
V1_FILE_KEYS = FileKeys("sha256hash", "size", "mimetype", "dokumentType", single=True)
_A = TypeVar("_A", bound=Adressat)


class SvarInnClient(SvarInnHttpClient):
    """One account's connection to MottakService v1: ``hentNyeForsendelser``, then
    ``kvitterMottak`` or ``mottakFeilet`` per letter (both POSTs)."""

    api = "v1"
    list_path = LIST_PATH
    listing_name = LISTING_NAME

    def _parse_item(self, value: Any, index: int) -> Forsendelse | RejectedItem:
        return parse_item(value, index=index)

    def acknowledge(self, forsendelse_id: str) -> None:
        """kvitterMottak: the letter is safely archived; SvarUt will not send it on."""
        url = self._base + ACKNOWLEDGE_PATH.format(id=path_id(forsendelse_id))
        self._call("POST", url, content=b"")

    def report_failure(self, forsendelse_id: str, message: str, *, permanent: bool) -> None:
        """mottakFeilet: tell SvarUt (and the sender) that the import failed.

        ``permanent=True`` makes SvarUt deliver the letter through another channel.
        """
        url = self._base + REPORT_FAILURE_PATH.format(id=path_id(forsendelse_id))
        self._call("POST", url, json_body=self._feil(message, permanent))


def parse_listing(data: Any) -> Listing:
    """A decoded hentNyeForsendelser response, malformed items set aside."""
    return _parse_listing(data, parse=parse_forsendelse, name=LISTING_NAME)


def parse_item(item: Any, *, index: int) -> Forsendelse | RejectedItem:
    """One listed v1 item: the letter, or why it cannot be read. Never raises."""
    return _parse_item(item, index=index, parse=parse_forsendelse, name=LISTING_NAME)


def parse_forsendelser(data: Any) -> tuple[Forsendelse, ...]:
    """Parse a decoded hentNyeForsendelser response strictly: the first bad item raises."""
    listing = parse_listing(data)
    if listing.rejected:
        raise listing.rejected[0].error
    return listing.letters


def parse_forsendelse(item: Any, *, index: int = 0) -> Forsendelse:
    """Parse one letter; ``index`` is its position in the response, for error messages."""
    forsendelse_id, download_url, where = item_id_and_link(
        item, where=f"hentNyeForsendelser[{index}]", link_key="downloadUrl"
    )
    return Forsendelse(
        id=forsendelse_id,
        download_url=download_url,
        tittel=as_text(item.get("tittel")),
        date=parse_date(item.get("date")),
        status=as_text(item.get("status")),
        niva=as_text(item.get("niva")),
        avsender=_adressat(Avsender, item.get("avsender")),
        mottaker=_adressat(Mottaker, item.get("mottaker")),
        svar_sendes_til=_adressat(Mottaker, item.get("svarSendesTil")),
        svar_pa_forsendelse=as_text(item.get("svarPaForsendelse")),
        forsendelse_type=as_text(item.get("forsendelseType")),
        ekstern_ref=as_text(item.get("eksternRef")),
        kryptert=item.get("kryptert") if isinstance(item.get("kryptert"), bool) else None,
        metadata_fra_avleverende_system=metadata(
            item.get("metadataFraAvleverendeSystem"), saksbehandler=_V1_SAKSBEHANDLER
        ),
        metadata_for_import=metadata(
            item.get("metadataForImport"), saksbehandler=_V1_SAKSBEHANDLER
        ),
        filmetadata=parse_files(
            item.get("filmetadata"), V1_FILE_KEYS, where=f"{where}.filmetadata"
        ),
        raw_text=compact_json(item),
    )


def _adressat(cls: type[_A], value: Any) -> _A | None:
    if not isinstance(value, dict):
        return None
    lines = [value.get(f"{prefix}{n}") for prefix in ("adresselinje", "adresse") for n in (1, 2, 3)]
    return cls(
        navn=as_text(value.get("navn")),
        adresselinjer=tuple(line for line in (as_text(v) for v in lines) if line),
        postnr=as_text(value.get("postnr")),
        poststed=as_text(value.get("poststed")),
        land=as_text(value.get("land")),
        orgnr=as_text(value.get("orgnr")),
        fnr=as_text(value.get("fnr")),
    )
