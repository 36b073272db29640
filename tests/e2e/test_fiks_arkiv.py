"""The daemon (a child process) with the fiks-arkiv adapter, end to end: the SvarInn
simulator, a local Fiks IO on a real RabbitMQ broker, a local archive that validates every
arkivmelding against KS's XSD. SvarInn is acknowledged only after the archive's kvittering;
then SIGKILL at random instants while Fiks IO loses and duplicates messages, the archive
fails, answers late, and the broker restarts: every good letter ends as exactly one
journalpost with all its files, acknowledged, none before its kvittering."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED, need_shared
from tests.support.daemon_harness import Harness, harness
from tests.support.fakes.fiksarkiv import LocalFiksArkiv
from tests.support.fakes.fiksio import LocalFiksIo
from tests.support.fiks_world import fiks_side
from tests.support.programs import use_archive

pytestmark = pytest.mark.rabbitmq
SPECS = SHARED / "specs" / "fiks-arkiv" / "V1"
SEED = 20_261_206
KILLS = 6
FULL_IMPORT = 4.0


@pytest.fixture
def archive(fiksio: LocalFiksIo) -> Iterator[LocalFiksArkiv]:
    with LocalFiksArkiv(fiksio, need_shared(SPECS, "Fiks Arkiv's XSDs")) as running:
        yield running


def _table(options: dict[str, Any]) -> str:
    lines = ["[archives.default]"] + [f"{k} = {json.dumps(v)}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


def _setup(h: Harness, fiksio: LocalFiksIo, archive: LocalFiksArkiv, tmp: Path) -> None:
    side = fiks_side(fiksio, archive, tmp / "etc", kvittering_timeout="4s", timeout="2s")
    use_archive(h, _table(side.options))


def _registered(archive: LocalFiksArkiv) -> dict[str, Any]:
    with archive.lock:
        return {post.key[1]: post for post in archive.journalposter.values()}


def _check(h: Harness, archive: LocalFiksArkiv, good: list[Any]) -> None:
    state = h.sim.state()
    posts = _registered(archive)
    assert sorted(posts) == sorted(x.id for x in good), "a letter registered twice, or not"
    for letter in good:
        post = posts[letter.id]
        stored = Counter(hashlib.sha256(content).hexdigest() for _, _, content in post.documents)
        assert stored == Counter(f.sha256 for f in letter.files)
        assert [role for role, _, _ in post.documents] == ["H"] + ["V"] * (len(letter.files) - 1)
        assert state.acknowledged.get(letter.id, 0) >= 1
        assert not [r for r in state.reports_for(letter.id) if r.permanent]
    assert archive.invalid == []
    assert state.pending == ()


def test_letters_are_acknowledged_after_the_archives_kvittering(
    fiksio: LocalFiksIo, archive: LocalFiksArkiv, tmp_path: Path
) -> None:
    with harness(tmp_path / "h") as h:
        _setup(h, fiksio, archive, tmp_path)
        good = h.sim.generate(2, 50_000) + h.sim.generate(1, 20_000, files_per_letter=3)
        archive.delay = 1.5  # the kvittering comes after the cycle that sent the letter
        first = h.cli("--log-format", "json", "poll-once")
        assert first.returncode != 0  # letters wait for their kvittering: not finished
        assert h.sim.state().acknowledged == {}  # nothing acknowledged before a kvittering
        status = json.loads(h.cli("status", "--json").stdout)
        assert status["totals"]["sent"] == 3
        archive.wait_for(3)
        h.finish(10)
        _check(h, archive, good)
        shown = json.loads(h.cli("show", good[0].id, "--json").stdout)
        [message, *_] = shown["archive_messages"]  # sent once, unless it waited too long
        assert message["reply"] == "registered"
        assert shown["letter"]["archive_ref"] == message["reference"]


def test_sigkill_with_the_fiks_arkiv_adapter(
    fiksio: LocalFiksIo, archive: LocalFiksArkiv, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    with harness(tmp_path / "h") as h:
        _setup(h, fiksio, archive, tmp_path)
        good = h.sim.generate(5, 200_000) + h.sim.generate(2, 100_000, files_per_letter=3)
        fiksio.lose, fiksio.duplicate = 1, 2
        archive.lose, archive.serverfeil, archive.delay = 1, 1, 0.7
        killed = 0
        for n in range(KILLS):
            if n == 3:
                assert fiksio.broker is not None
                fiksio.broker.restart()
            command = rng.choice(["run", "poll-once"])
            killed += h.kill_after(command, rng.uniform(0.3, FULL_IMPORT), tmp_path / f"{n}.log")
            early = set(h.sim.state().acknowledged) - set(_registered(archive))
            assert not early, f"acknowledged before the archive had it: {early}"
        print(f"{killed} of {KILLS} runs killed mid-way")
        assert killed > 0
        h.finish(20)
        _check(h, archive, good)


def test_run_replies_as_they_come_and_stops_cleanly_on_sigterm(
    fiksio: LocalFiksIo, archive: LocalFiksArkiv, tmp_path: Path
) -> None:
    with harness(tmp_path / "h") as h:
        _setup(h, fiksio, archive, tmp_path)
        good = h.sim.generate(2, 30_000)
        log = tmp_path / "run.log"
        process = h.spawn("--log-format", "json", "run", output=log)
        try:
            deadline = time.monotonic() + 60
            while set(h.sim.state().acknowledged) != {x.id for x in good}:
                assert process.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
        events = [json.loads(line)["event"] for line in log.read_text().splitlines() if line]
        assert "fiksio.connected" in events
        assert events[-1] == "daemon.stopped"
        _check(h, archive, good)
