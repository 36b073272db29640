"""SIGKILL at random instants with the gi-arkiv adapter against the local GI-Arkiv 1.1: every
good letter ends as exactly one journalpost holding all its documents, and SvarInn hears of
none before its journalpost is complete; the archive meanwhile answers 503s, SOAP faults,
slow answers and answers lost after the work was done."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

from svarinn_daemon.archives.giarkiv import LocalGiArkiv
from svarinn_daemon.archives.server import Injected
from tests.support.daemon_harness import harness
from tests.support.programs import use_archive

SEED = 20_261_205
KILLS = 6
FULL_IMPORT = 3.0
PASSWORD = "gi-chaos-passord"
OPERATIONS = ("NyJournalpost", "NyDokument", "FinnJournalposterGittNoekkel", "NySaksmappe")


def _faults(rng: random.Random) -> list[Injected]:
    out = []
    for _ in range(10):
        operation = rng.choice(OPERATIONS)
        skip = rng.randint(0, 8)
        out.append(
            rng.choice(
                [
                    Injected(operation, skip=skip, status=503),
                    Injected(operation, skip=skip, fault="SystemFault"),
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
        for fault in _faults(rng):
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
