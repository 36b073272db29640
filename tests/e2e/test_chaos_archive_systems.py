"""SIGKILL at random instants with the archive-system adapters against their local archives
(GI-Arkiv 1.1, Public 360 SIF, Noark 5 tjenestegrensesnitt): every good letter ends as
exactly one journalpost (document) holding all its files, and SvarInn hears of none before
it is complete; the archive meanwhile answers 503s, faults, slow answers, stalls and answers
lost after the work was done."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path
from typing import Any

from svarinn_daemon.archives.giarkiv import LocalGiArkiv
from svarinn_daemon.archives.noark5 import LocalNoark5
from svarinn_daemon.archives.p360 import LocalP360
from svarinn_daemon.archives.server import Injected
from tests.support.daemon_harness import harness
from tests.support.programs import use_archive

SEED = 20_261_205
KILLS = 6
FULL_IMPORT = 3.0
PASSWORD = "gi-chaos-passord"
OPERATIONS = ("NyJournalpost", "NyDokument", "FinnJournalposterGittNoekkel", "NySaksmappe")


def _faults(
    rng: random.Random, operations: tuple[str, ...] = OPERATIONS, fault: str | None = None
) -> list[Injected]:
    """Ten faults at random calls; ``fault`` names the archive's own kind of refusal."""
    out = []
    for _ in range(10):
        operation = rng.choice(operations)
        skip = rng.randint(0, 8)
        out.append(
            rng.choice(
                [
                    Injected(operation, skip=skip, status=503),
                    Injected(operation, skip=skip, fault=fault)
                    if fault
                    else Injected(operation, skip=skip, status=500),
                    Injected(operation, skip=skip, delay=1.5),
                    Injected(operation, skip=skip, stall=0.5),
                    Injected(operation, skip=skip, lose_answer=True),
                ]
            )
        )
    return out


def test_sigkill_with_the_gi_arkiv_adapter(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    secret = tmp_path / "gi-password"
    secret.write_text(PASSWORD)
    with LocalGiArkiv(password=PASSWORD) as arkiv, harness(tmp_path / "h") as h:
        use_archive(
            h,
            f"""[archives.default]
adapter = "gi-arkiv"
url = "{arkiv.url}"
innsyn_url = "{arkiv.innsyn_url}"
username = "svarinn"
password_file = "{secret}"
arkivdel = "SAK"
timeout = "1s"
""",
        )
        for fault in _faults(rng, fault="SystemFault"):
            arkiv.inject(fault)
        good = h.sim.generate(5, 300_000) + h.sim.generate(2, 100_000, files_per_letter=3)

        def complete() -> set[str]:
            with arkiv.server.lock:
                return {
                    p.external[1]
                    for p in arkiv.journalposts
                    if p.external and len(p.documents) == 1 + int(p.attachments or 0)
                }

        killed = 0
        for n in range(KILLS):
            command = rng.choice(["run", "poll-once"])
            killed += h.kill_after(command, rng.uniform(0.2, FULL_IMPORT), tmp_path / f"{n}.log")
            early = set(h.sim.state().acknowledged) - complete()
            for p in arkiv.journalposts:
                if p.external and p.external[1] in early:
                    print("EARLY", p.external, p.attachments, [d.filnavn for d in p.documents])
            assert not early, f"acknowledged too early: {early}"
        print(f"{killed} of {KILLS} runs killed mid-way")
        assert killed > 0
        h.finish(10)
        state = h.sim.state()
        posts = Counter(p.external[1] for p in arkiv.journalposts if p.external)
        assert posts == Counter({x.id: 1 for x in good}), "a letter registered twice, or not"
        by_key = {p.external[1]: p for p in arkiv.journalposts if p.external}
        for letter in good:
            post = by_key[letter.id]
            stored = Counter(hashlib.sha256(d.content).hexdigest() for d in post.documents)
            assert stored == Counter(f.sha256 for f in letter.files)
            assert [d.role for d in post.documents] == ["H"] + ["V"] * (len(letter.files) - 1)
            assert state.acknowledged.get(letter.id, 0) >= 1
            assert not [r for r in state.reports_for(letter.id) if r.permanent]
        assert len({p.case.system_id for p in arkiv.journalposts}) == 1, "one collection case"
        assert len(arkiv.cases) == 1
        assert state.pending == ()


def test_sigkill_with_the_p360_adapter(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    secret = tmp_path / "authkey"
    secret.write_text(PASSWORD)
    operations = (
        "DocumentService.CreateDocument",
        "DocumentService.GetDocuments",
        "CaseService.GetCases",
        "CaseService.CreateCase",
    )
    with LocalP360(authkey=PASSWORD) as p360, harness(tmp_path / "h") as h:
        use_archive(
            h,
            f"""[archives.default]
adapter = "p360"
url = "{p360.url}"
authkey_file = "{secret}"
external_key_field = "SvarUtForsendelseId"
timeout = "1s"
""",
        )
        for fault in _faults(rng, operations):
            p360.inject(fault)
        good = h.sim.generate(5, 300_000) + h.sim.generate(2, 100_000, files_per_letter=3)

        def registered() -> set[str]:
            with p360.server.lock:
                return {d.custom["SvarUtForsendelseId"] for d in p360.documents}

        killed = 0
        for n in range(KILLS):
            command = rng.choice(["run", "poll-once"])
            killed += h.kill_after(command, rng.uniform(0.2, FULL_IMPORT), tmp_path / f"{n}.log")
            early = set(h.sim.state().acknowledged) - registered()
            assert not early, f"acknowledged before 360 had it: {early}"
        print(f"{killed} of {KILLS} runs killed mid-way")
        assert killed > 0
        h.finish(10)
        state = h.sim.state()
        documents = Counter(d.custom["SvarUtForsendelseId"] for d in p360.documents)
        assert documents == Counter({x.id: 1 for x in good}), "a letter registered twice, or not"
        by_key = {d.custom["SvarUtForsendelseId"]: d for d in p360.documents}
        for letter in good:
            files = by_key[letter.id].files
            stored = Counter(hashlib.sha256(data).hexdigest() for _t, _f, data, _r in files)
            assert stored == Counter(f.sha256 for f in letter.files)
            assert [r for *_, r in files] == ["H"] + ["V"] * (len(letter.files) - 1)
            assert state.acknowledged.get(letter.id, 0) >= 1
            assert not [r for r in state.reports_for(letter.id) if r.permanent]
        assert len(p360.cases) == 1, "one collection case"
        assert state.pending == ()


def test_sigkill_with_the_noark5_adapter(tmp_path: Path) -> None:
    rng = random.Random(SEED + 2)
    secret = tmp_path / "token"
    secret.write_text(PASSWORD)
    operations = (
        "sakarkiv/ny-journalpost",
        "arkivstruktur/ny-dokumentbeskrivelse",
        "arkivstruktur/ny-dokumentobjekt",
        "arkivstruktur/fil",
        "sakarkiv/journalpost",
    )
    with LocalNoark5(token=PASSWORD) as n5, harness(tmp_path / "h") as h:
        use_archive(
            h,
            f"""[archives.default]
adapter = "noark5"
url = "{n5.url}"
token_file = "{secret}"
arkivdel = "Sakarkiv"
timeout = "1s"
""",
        )
        for fault in _faults(rng, operations):
            n5.inject(fault)
        good = h.sim.generate(5, 300_000) + h.sim.generate(2, 100_000, files_per_letter=3)

        def key(post: Any) -> str:
            return str(post.fields["virksomhetsspesifikkeMetadata"]["svarinn:forsendelseId"])

        def files(post: Any) -> list[tuple[str, bytes | None]]:
            return [
                (d.fields["tilknyttetRegistreringSom"]["kode"], o.content)
                for d in post.children
                if d.kind == "dokumentbeskrivelse"
                for o in d.children
            ]

        def complete() -> set[str]:
            return {
                key(p)
                for p in n5.all("journalpost")
                if len(files(p))
                == p.fields["virksomhetsspesifikkeMetadata"]["svarinn:antallDokumenter"]
                and all(content is not None for _, content in files(p))
            }

        killed = 0
        for n in range(KILLS):
            command = rng.choice(["run", "poll-once"])
            killed += h.kill_after(command, rng.uniform(0.2, FULL_IMPORT), tmp_path / f"{n}.log")
            early = set(h.sim.state().acknowledged) - complete()
            assert not early, f"acknowledged before its journalpost was complete: {early}"
        print(f"{killed} of {KILLS} runs killed mid-way")
        assert killed > 0
        h.finish(10)
        state = h.sim.state()
        posts = n5.all("journalpost")
        assert Counter(key(p) for p in posts) == Counter({x.id: 1 for x in good})
        by_key = {key(p): p for p in posts}
        for letter in good:
            stored = files(by_key[letter.id])
            assert Counter(hashlib.sha256(c or b"").hexdigest() for _, c in stored) == Counter(
                f.sha256 for f in letter.files
            )
            assert [r for r, _ in stored] == ["H"] + ["V"] * (len(letter.files) - 1)
            assert state.acknowledged.get(letter.id, 0) >= 1
            assert not [r for r in state.reports_for(letter.id) if r.permanent]
        assert len(n5.all("saksmappe")) == 1, "one collection case"
        assert state.pending == ()
