"""An archive that fills up, pauses and recovers while other letters fail for reasons of
their own (issue: "A paused archive never resumes while other letters fail").

The operator's scene at the suite's scale: good letters among letters that fail before the
archive stage (a download link on a foreign host, a key we do not hold, a corrupt download,
a sha256 that does not match), network faults, and a filesystem archive on a tmpfs that
fills up and is then grown. The daemon runs through its CLI against the simulator over
loopback; the breaker's timing comes from the configuration.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from svarinn_daemon.simulator import Fault
from svarinn_daemon.simulator.identity import generate_identity
from svarinn_daemon.simulator.letters import SimLetter
from tests.support.daemon_harness import Harness, harness
from tests.support.fakes.sakssystem import SakServer
from tests.support.fault_support import log_events, small_tmpfs, wait_for, when
from tests.support.loopback import free_port
from tests.support.programs import use_archive

PROBE_DELAY = 2.0
PROBE_MAX_DELAY = 4.0
GOOD = 60
BAD_EACH = 3
SIZE = 150_000


def _config() -> str:
    return f"""
[daemon]
worker_id = "test-worker"
concurrency = 3
lease = "30s"
shutdown_grace = "5s"
poll_interval = "1s"
poll_jitter = "0s"

[retry]
base_delay = "300ms"
max_delay = "2s"
archive_pause_after = 3
archive_probe_delay = "{PROBE_DELAY:g}s"
archive_probe_max_delay = "{PROBE_MAX_DELAY:g}s"

[alerts]
archive_unavailable_after = "0s"
"""


def _bad_letters(h: Harness) -> dict[str, list[SimLetter]]:
    """Letters that fail before the archive stage, each kind for its own reason."""
    sim = h.sim
    foreign = [
        sim.add_bytes(b"%PDF-1.4 foreign\n", download_url=f"http://127.0.0.2:9/letter-{k}")
        for k in range(BAD_EACH)
    ]
    own = sim.certificate
    sim.certificate = generate_identity("someone-else").certificate
    try:
        wrong_key = [sim.add_bytes(b"%PDF-1.4 not for us\n") for _ in range(BAD_EACH)]
    finally:
        sim.certificate = own
    corrupt = [sim.add_bytes(b"%PDF-1.4 corrupt\n" * 1000) for _ in range(BAD_EACH)]
    mismatch = [sim.add_bytes(b"%PDF-1.4 mismatch\n" * 1000) for _ in range(BAD_EACH)]
    sim.add_fault(Fault("corrupt", ids=frozenset(x.id for x in corrupt)))
    sim.add_fault(Fault("wrong_sha256", ids=frozenset(x.id for x in mismatch)))
    return {"foreign": foreign, "wrong_key": wrong_key, "corrupt": corrupt, "mismatch": mismatch}


def _events(log: Path, name: str) -> list[dict[str, object]]:
    return [e for e in log_events(log) if e["event"] == name]


def _wait_for_the_outcome(h: Harness, good: list[SimLetter], permanent: set[str]) -> None:
    wait_for(
        lambda: (
            set(h.sim.state().acknowledged) >= {x.id for x in good}
            and {r.forsendelse_id for r in h.sim.state().reports} >= permanent
        ),
        120,
        "every good letter's receipt and every permanent report",
    )


def _check_the_outcome(
    h: Harness, good: list[SimLetter], permanent: set[str], archived: set[str]
) -> None:
    """Every good letter archived once and acknowledged once; the letters that can never be
    imported reported permanent (once, after max_download_attempts); nothing temporary."""
    state = h.sim.state()
    assert dict(state.acknowledged) == {x.id: 1 for x in good}
    assert archived == {x.id for x in good}
    assert all(r.permanent for r in state.reports), "a temporary report reached SvarUt"
    assert {r.forsendelse_id for r in state.reports} == permanent
    for letter_id in permanent:
        assert len(state.reports_for(letter_id)) == 1
        assert state.downloads[letter_id] == 3  # max_download_attempts, then paper


def _imported_after(log: Path, since: datetime) -> list[float]:
    """Seconds from ``since`` to each import after it."""
    return sorted(
        (when(e) - since).total_seconds()
        for e in _events(log, "forsendelse.archived")
        if when(e) > since
    )


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_full_archive_resumes_within_a_probe_delay_whatever_else_fails(
    tmp_path: Path, api: str
) -> None:
    with harness(tmp_path, api=api, extra_config=_config()) as h, small_tmpfs(h.archive, "4m"):
        bad = _bad_letters(h)
        good = h.sim.generate(GOOD, SIZE)
        # The usual network faults, on the good letters (a bad letter's downloads are counted).
        ids = frozenset(x.id for x in good)
        downloads = frozenset({"download", "v2_download"})
        h.sim.add_fault(Fault("reset", ids=ids, rate=0.05, times=4, endpoints=downloads))
        h.sim.add_fault(Fault("truncate", ids=ids, rate=0.05, times=2, endpoints=downloads))
        h.sim.add_fault(Fault("http_503", ids=ids, rate=0.05, times=4, endpoints=downloads))
        h.sim.add_fault(Fault("http_503", rate=0.2, times=3, endpoints=frozenset({"list"})))
        log = tmp_path / "daemon.log"
        process = h.spawn("run", output=log)
        try:
            wait_for(lambda: bool(_events(log, "archive.unavailable")), 90, "the breaker")
            # Full for a while: the probes fail, the letters that fail on their own keep
            # failing (and keep being claimed, each after its backoff).
            time.sleep(3 * PROBE_MAX_DELAY)
            full_imports = len(_events(log, "forsendelse.archived"))
            grown = subprocess.run(
                ["mount", "-o", "remount,size=1g", str(h.archive)], capture_output=True
            )
            assert grown.returncode == 0, grown.stderr
            freed = datetime.now(UTC)
            permanent = {x.id for x in bad["corrupt"] + bad["mismatch"]}
            _wait_for_the_outcome(h, good, permanent)
            wait_for(
                lambda: any(
                    e.get("condition") == "archive_unavailable"
                    for e in _events(log, "alert.resolved")
                ),
                30,
                "the archive_unavailable alert to resolve",
            )
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, log.read_text()[-3000:]

        _check_the_outcome(h, good, permanent, h.archived_ids())
        after = _imported_after(log, freed)
        first = after[0]
        print(
            f"\n[{api}] imported before the disk filled: {full_imports}; freed -> first import"
            f" {first:.2f} s, -> last {after[-1]:.2f} s; imported after: {len(after)}; reports:"
            f" {len(permanent)} permanent, 0 temporary"
        )
        # Within one probe delay (at most the maximum) plus a poll of slack.
        assert first <= PROBE_MAX_DELAY + 1.5
        available = _events(log, "archive.available")
        assert available
        assert when(available[-1]) > freed


def _metric(port: int, archive: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    line = next(
        x
        for x in text.splitlines()
        if x.startswith(f'svarinn_archive_available{{archive="{archive}"}}')
    )
    return line.split()[-1]


def test_routes_and_breaker_agree_one_archive_down_the_other_imports(tmp_path: Path) -> None:
    """Two archives, letters routed to both; the account's own archive is full. Its failures
    count for it alone: the other archive's letters are all imported meanwhile, and its
    breaker never opens. Once the full one is freed, its letters follow."""
    port = free_port()
    extra = _config().replace("archive_pause_after = 3", "archive_pause_after = 2") + (
        f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
    )
    with harness(tmp_path, extra_config=extra) as h, small_tmpfs(h.archive, "1m"):
        people_root = h.root / "people"
        text = h.config_path.read_text()
        start = text.index("[[accounts]]")
        h.config_path.write_text(
            text[:start]
            + f"""[archives.people]
adapter = "filesystem"
root = "{people_root}"

[[routes]]
archive = "people"
avsender_navn = ["kari nordmann *"]

"""
            + text[start:]
        )
        letters = h.sim.generate(18, 200_000)  # every third from a person
        people = {x.id for x in letters if x.avsender.get("fnr")}
        firms = {x.id for x in letters} - people
        log = tmp_path / "daemon.log"
        process = h.spawn("run", output=log)
        try:
            wait_for(
                lambda: set(h.sim.state().acknowledged) >= people,
                90,
                "the people archive's letters",
            )
            unavailable = _events(log, "archive.unavailable")
            assert unavailable
            assert {e["archive"] for e in unavailable} == {"default"}
            assert _metric(port, "default") == "0.0"
            assert _metric(port, "people") == "1.0"
            subprocess.run(["mount", "-o", "remount,size=1g", str(h.archive)], check=True)
            wait_for(lambda: set(h.sim.state().acknowledged) >= people | firms, 90, "every letter")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
        assert {p.name for p in people_root.iterdir() if not p.name.startswith(".")} == people
        assert h.archived_ids() == firms
        assert dict(h.sim.state().acknowledged) == dict.fromkeys(people | firms, 1)
        assert h.sim.state().reports == ()
        assert not any(e.get("archive") == "people" for e in _events(log, "archive.unavailable"))


PROGRAM = """
import os, shutil, sys
from pathlib import Path

args = sys.argv[1:]
store = Path(args[args.index("--store") + 1])
down = Path(args[args.index("--down") + 1])
fid = os.environ["SVARINN_FORSENDELSE_ID"]
if down.exists():
    print("the sakssystem is down for maintenance", file=sys.stderr)
    sys.exit(75)
target = store / fid
if "--status" in args:
    if target.is_dir():
        print(f"sak:{fid}")
        sys.exit(0)
    sys.exit(1)
if not target.is_dir():
    part = store / f".part-{fid}"
    shutil.rmtree(part, ignore_errors=True)
    shutil.copytree(os.environ["SVARINN_LETTER_DIR"], part)
    os.rename(part, target)
print(f"sak:{fid}")
"""


class _Sakssystem:
    """A sakssystem behind the ``command`` or ``http`` adapter that is down, then back."""

    def __init__(self, kind: str, root: Path):
        self.kind = kind
        self.root = root
        self.switch = root / "down"
        self.store = root / "store"
        self.server: SakServer | None = None

    def table(self) -> str:
        if self.kind == "command":
            program = self.root / "import-letter"
            program.write_text(f"#!{sys.executable}\n{PROGRAM}")
            program.chmod(0o755)
            argv = f'"{program}", "--store", "{self.store}", "--down", "{self.switch}"'
            return f"""[archives.default]
adapter = "command"
command = [{argv}]
check_command = [{argv}, "--status"]
timeout = "5s"
"""
        assert self.server is not None
        return f"""[archives.default]
adapter = "http"
url = "{self.server.url}"
status_url = "{self.server.url}/{{forsendelse_id}}"
timeout = "5s"
"""

    def down(self) -> None:
        if self.server is None:
            self.switch.touch()
            return
        with self.server.state.lock:
            self.server.state.faults[:] = ["503"] * 100_000
            self.server.state.status_faults[:] = ["503"] * 100_000

    def up(self) -> None:
        if self.server is None:
            self.switch.unlink()
            return
        with self.server.state.lock:
            self.server.state.faults.clear()
            self.server.state.status_faults.clear()

    def archived(self) -> set[str]:
        if self.server is not None:
            return set(self.server.state.letters)
        if not self.store.is_dir():
            return set()
        return {p.name for p in self.store.iterdir() if not p.name.startswith(".")}


@pytest.mark.parametrize("kind", ["command", "http"])
def test_a_sakssystem_down_then_back_is_used_again_within_a_probe_delay(
    tmp_path: Path, kind: str
) -> None:
    """The same scene with the ``command`` adapter's program exiting 75 (EX_TEMPFAIL) and
    the ``http`` endpoint answering 503, its status check included: the probe asks the
    status check for a made-up id and learns that the sakssystem is back."""
    sak = _Sakssystem(kind, tmp_path / "sak")
    sak.root.mkdir()
    with contextlib.ExitStack() as stack:
        if kind == "http":
            sak.server = stack.enter_context(SakServer())
        h = stack.enter_context(harness(tmp_path / "h", extra_config=_config()))
        use_archive(h, sak.table())
        sak.down()
        bad = _bad_letters(h)
        good = h.sim.generate(30, 50_000)
        log = tmp_path / "daemon.log"
        process = h.spawn("run", output=log)
        try:
            wait_for(lambda: bool(_events(log, "archive.unavailable")), 90, "the breaker")
            time.sleep(3 * PROBE_MAX_DELAY)
            assert sak.archived() == set()
            sak.up()
            back = datetime.now(UTC)
            permanent = {x.id for x in bad["corrupt"] + bad["mismatch"]}
            _wait_for_the_outcome(h, good, permanent)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
        _check_the_outcome(h, good, permanent, sak.archived())
        after = _imported_after(log, back)
        print(f"\n[{kind}] back -> first import {after[0]:.2f} s; imported after: {len(after)}")
        assert after[0] <= PROBE_MAX_DELAY + 1.5
        probes = [e for e in _events(log, "archive.available") if e.get("by") == "probe"]
        assert probes, "the archive's own probe found it back"
