"""SIGKILL at random instants with the command and the http adapter: the sakssystem gets every
good letter exactly once, nothing is acknowledged before it arrived, and refusals reach SvarUt
as permanent.

The daemon runs as a child process (``run`` or ``poll-once``) against the simulator; the
sakssystem is the import program of tests/support/programs.py (which sometimes exits 75,
hangs past the timeout, is killed mid-copy, or copies slowly) or the loopback HTTP server of
tests/support/fakes/sakssystem.py (503, 429 with Retry-After, resets, slow answers).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

from svarinn_daemon.simulator.letters import SimLetter
from tests.support.daemon_harness import harness
from tests.support.fakes.sakssystem import SakServer
from tests.support.programs import command_table, use_archive, write_import_program

SEED = 20_261_201
KILLS = 6
FULL_IMPORT = 3.0


def _check_files(letter: SimLetter, files: dict[str, bytes]) -> None:
    for info in letter.files:
        data = files[info.filnavn]
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (info.sha256, info.size)


def test_sigkill_with_the_command_adapter(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    program = write_import_program(tmp_path / "bin")
    store, script = tmp_path / "sak", tmp_path / "script"
    script.mkdir()
    with harness(tmp_path / "h") as h:
        use_archive(h, command_table(program, store, script, timeout="1s"))
        good = h.sim.generate(5, 400_000) + h.sim.generate(2, 100_000, files_per_letter=3)
        (refused,) = h.sim.generate(1, 50_000)
        behaviours = ["tempfail", "hang", "kill-self", "slow", "slow"]
        for letter in good:
            steps = rng.sample(behaviours, k=rng.randint(0, 2))
            (script / letter.id).write_text("\n".join(steps))
        (script / refused.id).write_text("refuse\n")

        def arrived() -> set[str]:
            # The program makes the store at its first import; a kill may come before it.
            if not store.exists():
                return set()
            return {p.name for p in store.iterdir() if not p.name.startswith(".")}

        killed = 0
        for n in range(KILLS):
            command = rng.choice(["run", "poll-once"])
            killed += h.kill_after(command, rng.uniform(0.2, FULL_IMPORT), tmp_path / f"{n}.log")
            # none acknowledged before it arrived
            assert set(h.sim.state().acknowledged) <= arrived()
        print(f"{killed} of {KILLS} runs killed mid-way")
        assert killed > 0
        h.finish(10)
        state = h.sim.state()
        assert arrived() == {x.id for x in good}
        imports = Counter((store / ".imports.log").read_text().split())
        assert imports == Counter({x.id: 1 for x in good}), "a letter was imported twice"
        for letter in good:
            directory = store / letter.id
            meta = json.loads((directory / "forsendelse.json").read_text())
            stored = {d["name"]: (directory / d["file"]).read_bytes() for d in meta["documents"]}
            _check_files(letter, stored)
            assert state.acknowledged.get(letter.id, 0) >= 1
            assert not [r for r in state.reports_for(letter.id) if r.permanent]
        assert refused.id not in state.acknowledged
        assert [r for r in state.reports_for(refused.id) if r.permanent]
        assert state.pending == ()


def test_sigkill_with_the_http_adapter(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    with SakServer() as server, harness(tmp_path / "h") as h:
        use_archive(
            h,
            f"""[archives.default]
adapter = "http"
url = "{server.url}"
status_url = "{server.url}/{{forsendelse_id}}"
timeout = "1s"
""",
        )
        good = h.sim.generate(5, 400_000) + h.sim.generate(2, 100_000, files_per_letter=3)
        (refused,) = h.sim.generate(1, 50_000)
        faults = ["503", "429:1", "reset", "slow:1.5", "slow:0.5"]
        for letter in good:
            server.state.faults_by_key[letter.id] = rng.sample(faults, k=rng.randint(0, 3))
        server.state.refused.add(refused.id)
        killed = 0
        for n in range(KILLS):
            command = rng.choice(["run", "poll-once"])
            killed += h.kill_after(command, rng.uniform(0.2, FULL_IMPORT), tmp_path / f"{n}.log")
            with server.state.lock:
                have = set(server.state.letters)
            assert set(h.sim.state().acknowledged) <= have
        print(f"{killed} of {KILLS} runs killed mid-way")
        assert killed > 0
        h.finish(10)
        state = h.sim.state()
        assert set(server.state.letters) == {x.id for x in good}
        assert server.state.errors == 0
        for letter in good:
            received = server.state.letters[letter.id]
            _check_files(letter, {name: data for name, _t, data in received.files})
            assert state.acknowledged.get(letter.id, 0) >= 1
            assert not [r for r in state.reports_for(letter.id) if r.permanent]
        assert refused.id not in state.acknowledged
        assert [r for r in state.reports_for(refused.id) if r.permanent]
        assert state.pending == ()
