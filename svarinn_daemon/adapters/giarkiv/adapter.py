"""The ``gi-arkiv`` archive: each letter becomes one incoming journalpost in a GI-Arkiv 1.1
archive (ePhorte/Elements and others), in the case it names or in a collection case.

One letter, in this order (as KS's svarut-sak-mottak does it, plus the look-ups that make
it exactly once):

1. Innsyn ``FinnJournalposterGittNoekkel`` by our external key (``fagsystem``, the
   forsendelse id): a journalpost left by an attempt that was cut short is completed, never
   registered twice.
2. If there is none: the case. The one the sender named for import (saksår and
   sekvensnummer) when Innsyn ``FinnSaksmapperGittNoekkel`` finds it; otherwise the
   collection case (``samlesak``, per year), found by its external key or its exact title,
   and created (Oppdatering ``NySaksmappe``) when missing. Then ``NyJournalpost``
   (journalposttype I, ``journalstatus``, title, date, sender and receiver, the external key,
   ``antallVedlegg``).
3. Innsyn ``FinnDokumenterGittJournalpostnoekkel``; each document not there yet goes with
   ``NyDokument``, one at a time, the main one first, the file inline.

``has`` says "archived" only when the journalpost exists *and* holds 1 + ``antallVedlegg``
documents. Faults: transport errors, HTTP errors, timeouts and the archive's System,
Implementation, Operational and Finder faults are temporary; refused credentials, a wrong
address and Validation or Application faults (an unknown arkivdel...) are loud (an operator
fixes them; never paper); only a fault whose ``feilKode`` the operator listed in
``permanent_fault_codes``, answered to ``NyJournalpost`` or ``NyDokument``, is permanent.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from svarinn_daemon.adapters.base import LetterOrigin
from svarinn_daemon.adapters.giarkiv import encode
from svarinn_daemon.adapters.giarkiv.soap import INNSYN, OPPDATERING, GiArkivSoap, SoapFault
from svarinn_daemon.adapters.inline import InlineFiles
from svarinn_daemon.adapters.registration import (
    TEMPORARY,
    RegisteredDocument,
    Registration,
)
from svarinn_daemon.adapters.staging import StagedLetter
from svarinn_daemon.adapters.systems import DEFAULT_SAMLESAK, RegisteringArchive, Rules
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.logs import get_logger

__all__ = ["GiArkivArchive"]

# svarut-sak-mottak's fagsystem: letters it imported are found again after a switch.
DEFAULT_FAGSYSTEM = "SvarUt.Korrespondansepart.ConversationId"
TEMPORARY_FAULTS = frozenset(
    {"SystemFault", "ImplementationFault", "OperationalFault", "FinderFault", "Fault"}
)
CONTENT_OPERATIONS = frozenset({"NyJournalpost", "NyDokument"})

log = get_logger(__name__)


class GiArkivArchive(RegisteringArchive):
    """Archive letters as journalposts over GI-Arkiv 1.1; see the module docstring."""

    lookup = "innsyn_url"

    def __init__(
        self,
        soap: GiArkivSoap,
        *,
        work_directory: Path,
        timeout: timedelta,
        arkivdel: str | None = None,
        journalenhet: str | None = None,
        journalstatus: str = TEMPORARY,
        samlesak: str = DEFAULT_SAMLESAK,
        fagsystem: str = DEFAULT_FAGSYSTEM,
        title_limit: int = 255,
        klientnavn: str = "svarinn-daemon",
        permanent_fault_codes: Sequence[str] = (),
        owner: str | None = None,
        now: Clock = utc_now,
    ):
        rules = Rules(journalstatus, samlesak, title_limit)
        super().__init__(
            work_directory,
            timeout=timeout,
            rules=rules,
            deadline=soap.deadline,
            owner=owner,
            now=now,
        )
        self.soap = soap
        self.arkivdel = arkivdel
        self.journalenhet = journalenhet
        self.fagsystem = fagsystem
        self.kontekst = {"klientnavn": klientnavn}
        self.permanent_fault_codes = frozenset(permanent_fault_codes)
        self._cases: dict[str, encode.CaseRef] = {}
        self._case_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GiArkivArchive(url={self.soap.urls[OPPDATERING]!r})"

    # -- the daemon's questions ------------------------------------------------------

    def forget(self) -> None:
        with self._case_lock:
            self._cases.clear()

    def has_from(self, origin: LetterOrigin | None, forsendelse_id: str) -> str | None:
        """The journalpost's reference when it holds all its documents, else None."""
        post = self._journalpost(forsendelse_id)
        if post is None:
            return None
        declared = encode.attachments_declared(post)
        post_id = encode.system_id(post)
        if declared is None or post_id is None:
            return None  # the archive did not keep the count: deliver() completes or confirms
        if len(self._documents(post_id)) >= 1 + declared:
            return encode.journalpost_reference(post)
        return None

    def probe(self) -> bool:
        """Innsyn answers (credentials) about a made-up letter, and knows the arkivdel."""
        if self.arkivdel:
            codes = encode.items(self._call(INNSYN, "HentKodeliste", kodelistenavn="Arkivdel"))
            known = {code for c in codes if (code := encode.code_of(c)) is not None}
            if known and self.arkivdel not in known:
                raise ArchiveError(
                    f"the archive has no arkivdel {self.arkivdel!r} (it lists "
                    f"{', '.join(sorted(known)[:10])}): check arkivdel",
                    temporary=True,
                    loud=True,
                )
        return super().probe()

    def secret_values(self) -> list[str]:
        return list(self.soap.redactor.secrets)

    def warnings(self) -> list[str]:
        out = []
        if not self.arkivdel:
            out.append(
                "gi-arkiv has no arkivdel: collection cases and journalposts go to "
                "the archive's default arkivdel"
            )
        if not self.permanent_fault_codes:
            out.append(
                "gi-arkiv has no permanent_fault_codes: a letter the archive refuses "
                "is retried (loudly) until an operator acts, never sent to paper"
            )
        return out

    # -- one letter --------------------------------------------------------------------

    def register(self, reg: Registration, staged: StagedLetter) -> str:
        post = self._journalpost(reg.external_key)
        if post is None:
            case = self._case(reg)
            journalpost = encode.journalpost(
                reg, case, fagsystem=self.fagsystem, arkivdel=self.arkivdel
            )
            post = self._call(OPPDATERING, "NyJournalpost", journalpost=journalpost)
            log.info(
                "archive.gi_arkiv.journalpost",
                forsendelse_id=reg.external_key,
                case=case.spelled(),
                journalpost=encode.journalpost_reference(post),
            )
        else:
            log.info(
                "archive.gi_arkiv.completing",
                forsendelse_id=reg.external_key,
                journalpost=encode.journalpost_reference(post),
            )
        post_id = encode.system_id(post)
        if post_id is None:
            raise ArchiveError(
                f"{reg.external_key}: the archive named no systemID for its journalpost",
                temporary=True,
            )
        self._complete(reg, post_id, staged)
        return encode.journalpost_reference(post)

    def _complete(self, reg: Registration, post_id: str, staged: StagedLetter) -> None:
        """Add the documents the journalpost does not hold yet, in order."""
        present = self._documents(post_id)
        for doc in reg.documents[len(present) :]:
            self._add_document(doc, post_id, staged)

    def _journalpost(self, key: str) -> Any | None:
        found = encode.items(
            self._call(
                INNSYN,
                "FinnJournalposterGittNoekkel",
                nokkel=encode.journalpost_key(self.fagsystem, key),
                returnerMerknad=False,
                returnerTilleggsinformasjon=False,
                returnerKorrespondansepart=False,
                returnerAvskrivning=False,
            )
        )
        if len(found) > 1:
            log.warning("archive.gi_arkiv.duplicates", forsendelse_id=key, count=len(found))
        return found[0] if found else None

    def _documents(self, post_id: str) -> list[Any]:
        return encode.items(
            self._call(
                INNSYN,
                "FinnDokumenterGittJournalpostnoekkel",
                journpostnokkel=encode.journalpost_by_system_id(post_id),
                returnerFil=False,
            )
        )

    def _case(self, reg: Registration) -> encode.CaseRef:
        """The case the letter names, when the archive has it; else the collection case."""
        placement = reg.case
        if placement.saksaar is not None and placement.sakssekvensnummer is not None:
            found = self._cases_by(encode.case_key(placement.saksaar, placement.sakssekvensnummer))
            if found:
                return encode.case_ref(found[0])
            log.info(
                "archive.gi_arkiv.case_not_found",
                forsendelse_id=reg.external_key,
                case=f"{placement.saksaar}/{placement.sakssekvensnummer}",
            )
        title = placement.collection_title
        if not title:
            raise ArchiveError(
                f"{reg.external_key}: the letter names no case the archive has, and samlesak "
                "is empty: set samlesak",
                temporary=True,
                loud=True,
            )
        with self._case_lock:  # one worker creates a year's collection case, the rest reuse it
            cached = self._cases.get(title)
            if cached is not None:
                return cached
            found = self._cases_by(encode.collection_key(self.fagsystem, title))
            if not found:
                found = [
                    m
                    for m in encode.items(
                        self._call(INNSYN, "FinnSaksmapper", sok=encode.title_search(title))
                    )
                    if encode.title_of(m) == title
                ]
            if found:
                case = encode.case_ref(found[0])
            else:
                mappe = encode.collection_case(
                    title,
                    fagsystem=self.fagsystem,
                    arkivdel=self.arkivdel,
                    journalenhet=self.journalenhet,
                )
                case = encode.case_ref(self._call(OPPDATERING, "NySaksmappe", mappe=mappe))
                log.info("archive.gi_arkiv.collection_case", title=title, case=case.spelled())
            if case.system_id is None and case.saksaar is None:
                raise ArchiveError(
                    f"the collection case {title!r} has neither systemID nor saksnr",
                    temporary=True,
                )
            self._cases[title] = case
            return case

    def _cases_by(self, key: encode.Typed) -> list[Any]:
        return encode.items(self._call(INNSYN, "FinnSaksmapperGittNoekkel", nokkel=key))

    # -- faults --------------------------------------------------------------------------

    def _call(self, service: str, operation: str, **arguments: Any) -> Any:
        try:
            return self.soap.call(service, operation, kontekst=self.kontekst, **arguments)
        except SoapFault as exc:
            raise self._error(operation, exc) from None

    def _add_document(self, doc: RegisteredDocument, post_id: str, staged: StagedLetter) -> None:
        def arguments(files: InlineFiles) -> dict[str, Any]:
            content = files.marker(lambda: staged.open_file(doc.file), doc.size, encoded=True)
            return {"dokument": encode.document(doc, post_id, content), "returnerFil": False}

        try:
            self.soap.call_with_files(OPPDATERING, "NyDokument", arguments, kontekst=self.kontekst)
        except SoapFault as exc:
            raise self._error("NyDokument", exc) from None

    def _error(self, operation: str, exc: SoapFault) -> ArchiveError:
        fault = exc.fault
        what = f"{operation}: the archive answered {fault.kind} {fault.code}: {fault.description}"
        if operation in CONTENT_OPERATIONS and fault.code in self.permanent_fault_codes:
            return ArchiveError(what + " (listed in permanent_fault_codes)", temporary=False)
        if fault.kind in TEMPORARY_FAULTS:
            return ArchiveError(what, temporary=True)
        return ArchiveError(what, temporary=True, loud=True)

    def close(self) -> None:
        self.soap.close()
