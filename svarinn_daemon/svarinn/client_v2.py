"""The SvarInn V2 client: the v1 client's HTTP handling with V2's paths, items and receipts.

Everything that decides whether a request is safe and what an answer means is shared with
:class:`~svarinn_daemon.svarinn.client.SvarInnClient`: credentials only to the account's
origin, redirects followed hop by hop with the same origin check, the listing's size, item
and time limits, download streaming with its deadlines, and the status-to-error mapping
(404 gone, 401/403 stop the account, 408/429/5xx retried). What differs:

- listing: ``GET {base}/svarinn/v2/forsendelser`` (at most 200 per call, the same paging
  rule), items parsed by :mod:`~svarinn_daemon.svarinn.models_v2`;
- download: ``GET nedlastingslenke``, like v1's ``downloadUrl`` (the body is always a ZIP;
  the verify stage holds the letter to that);
- receipts: one ``PATCH {base}/svarinn/v2/forsendelser/{id}/status`` with
  ``{"status": "MOTTATT"}`` or ``{"status": "FEILET", "feil": {...}}``. Setting a status is
  idempotent, so a PATCH whose answer was lost is safe to send again.
"""

from __future__ import annotations

from typing import Any

from svarinn_daemon.errors import ProtocolError
from svarinn_daemon.svarinn.client import MAX_FEILMELDING_CHARS, SvarInnClient, _path_id
from svarinn_daemon.svarinn.models import Forsendelse, RejectedItem
from svarinn_daemon.svarinn.models_v2 import LISTING_NAME, parse_item_v2

__all__ = ["LIST_PATH_V2", "STATUS_PATH_V2", "SvarInnV2Client"]

LIST_PATH_V2 = "/svarinn/v2/forsendelser"
STATUS_PATH_V2 = "/svarinn/v2/forsendelser/{id}/status"


class SvarInnV2Client(SvarInnClient):
    """One account's connection to SvarInn V2; ``base_url`` is the part before
    ``/svarinn/v2/`` (``https://svarut.ks.no/api`` by default)."""

    api = "v2"
    list_path = LIST_PATH_V2
    listing_name = LISTING_NAME

    def _parse_item(self, value: Any, index: int) -> Forsendelse | RejectedItem:
        return parse_item_v2(value, index=index)

    def acknowledge(self, forsendelse_id: str) -> None:
        """Status MOTTATT: the letter is archived; SvarUt stops listing it."""
        self._set_status(forsendelse_id, {"status": "MOTTATT"})

    def report_failure(self, forsendelse_id: str, message: str, *, permanent: bool) -> None:
        """Status FEILET: ``permanent=True`` makes SvarUt send the letter by other means."""
        text = self._redactor.scrub(message).strip() or "mottak feilet"
        feil = {"feilmelding": text[:MAX_FEILMELDING_CHARS], "permanent": bool(permanent)}
        self._set_status(forsendelse_id, {"status": "FEILET", "feil": feil})

    def _set_status(self, forsendelse_id: str, body: dict[str, Any]) -> None:
        url = self._base + STATUS_PATH_V2.format(id=_path_id(forsendelse_id))
        try:
            self._call("PATCH", url, json_body=body, letter=True)
        except ProtocolError as exc:
            if exc.status_code != 400:
                raise
            # The server refused the body: say which letter, which fields we sent, and what
            # the server said about them (its error body names the field it refused).
            fields = "status, feil.feilmelding, feil.permanent" if "feil" in body else "status"
            said = f": {exc.body_start[:300]}" if exc.body_start else ""
            raise ProtocolError(
                f"account {self.name}: forsendelse {forsendelse_id}: SvarInn refused the "
                f"status update {body['status']} with 400 Bad Request (fields sent: "
                f"{fields}){said}",
                status_code=400,
                body_start=exc.body_start,
            ) from None
