"""A hostile SvarInn on loopback: poisoned listing items, huge listings, echoed credentials.

The simulator serves the exact JSON text a test gives it (``add_raw_item``,
``set_raw_listing``), so values no Python object serialises to (NaN, a 5,000-digit number,
nesting 5,000 deep) reach the daemon as they would from a broken or hostile server.
"""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from svarinn_daemon.simulator.faults import Fault
from tests.support.daemon_harness import FAST, Harness, harness


def _item(h: Harness, forsendelse_id: str, **fields: str) -> str:
    """A listing item as JSON text; ``fields`` values are inserted verbatim."""
    url = json.dumps(h.sim.download_url(forsendelse_id))
    extra = "".join(f',"{name}":{value}' for name, value in fields.items())
    return f'{{"id":"{forsendelse_id}","downloadUrl":{url}{extra}}}'


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


POISON = {
    "nan-date": {"date": "NaN"},
    "inf-date": {"date": "-Infinity"},
    "long-date": {"date": "1" + "0" * 400},
    "float-date": {"date": "1e999"},
    "huge-title": {"tittel": "9" * 5000},
    "nan-journaldato": {"metadataFraAvleverendeSystem": '{"journaldato":NaN}'},
    "long-dokumentetsdato": {"metadataForImport": '{"dokumentetsDato":' + "7" * 401 + "}"},
    "deep-900": {"eksternRef": _nested(900)},
    "deep-5000": {"eksternRef": _nested(5000)},
    "huge-size": {"filmetadata": '[{"filnavn":"a.pdf","size":' + "1" * 30 + "}]"},
}


def _ledger_ids(h: Harness) -> set[str]:
    path = h.root / "state" / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT forsendelse_id FROM forsendelser")}


def test_good_letter_beside_poisoned_items_is_imported(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        (good,) = h.sim.generate(1, 20_000)
        for forsendelse_id, fields in POISON.items():
            h.sim.add_raw_item(_item(h, forsendelse_id, **fields))
        code, lines = h.poll_once()
        assert code == 1  # items the daemon cannot read: cron must hear about it
        assert dict(h.sim.state().acknowledged) == {good.id: 1}
        assert h.archived_ids() == {good.id}
        assert _ledger_ids(h) == {good.id}  # nothing of the poisoned items was written down
        rejected = {
            line["forsendelse_id"]: line["error"]
            for line in lines
            if line["event"] == "poll.item_rejected"
        }
        assert set(rejected) == set(POISON)
        # Each says where: the item and the field.
        assert "date: NaN" in rejected["nan-date"]
        assert "date: a number of 401 digits" in rejected["long-date"]
        assert "tittel: a number of 5000 digits" in rejected["huge-title"]
        assert "metadataFraAvleverendeSystem.journaldato: NaN" in rejected["nan-journaldato"]
        assert "metadataForImport.dokumentetsDato" in rejected["long-dokumentetsdato"]
        assert "nested" in rejected["deep-900"]
        assert "nested" in rejected["deep-5000"]
        assert "filmetadata[0].size" in rejected["huge-size"]
        (finished,) = [line for line in lines if line["event"] == "poll.finished"]
        assert finished["rejected"] == len(POISON)
        assert finished["new"] == 1
        # A second poll lists them again: still no exception, still the same answer.
        code, lines = h.poll_once()
        assert code == 1
        assert sum(line["event"] == "poll.item_rejected" for line in lines) == len(POISON)


V2_POISON = {
    "v2-nan-dato": {"dato": "NaN"},
    "v2-long-dato": {"dato": "1" + "0" * 400},
    "v2-huge-title": {"tittel": "9" * 5000},
    "v2-nan-journaldato": {"metadataFraAvleverendeSystem": '{"journaldato":NaN}'},
    "v2-deep-mappeid": {"metadataForImport": '{"mappeId":' + _nested(900) + "}"},
    "v2-huge-storrelse": {"filer": '[{"filnavn":"a.pdf","storrelse":' + "1" * 30 + "}]"},
    "v2-negative-storrelse": {"filer": '[{"filnavn":"a.pdf","storrelse":-1}]'},
    "v2-short-hash": {"filer": '[{"filnavn":"a.pdf","hash":"abc"}]'},
    "v2-filer-object": {"filer": '{"filnavn":"a.pdf"}'},
}


def test_good_v2_letter_beside_poisoned_v2_items_is_imported(tmp_path: Path) -> None:
    """The same over SvarInn V2: each bad item is set aside naming its id and field."""
    with harness(tmp_path, api="v2") as h:
        (good,) = h.sim.generate(1, 20_000)
        for forsendelse_id, fields in V2_POISON.items():
            link = json.dumps(h.sim.v2_download_url(forsendelse_id))
            extra = "".join(f',"{name}":{value}' for name, value in fields.items())
            h.sim.add_raw_item(f'{{"id":"{forsendelse_id}","nedlastingslenke":{link}{extra}}}')
        h.sim.add_raw_item('{"nedlastingslenke":"https://x.no/y"}')  # no id at all
        code, lines = h.poll_once()
        assert code == 1
        assert dict(h.sim.state().acknowledged) == {good.id: 1}
        assert h.archived_ids() == {good.id}
        assert _ledger_ids(h) == {good.id}
        rejected = {
            line["forsendelse_id"]: line["error"]
            for line in lines
            if line["event"] == "poll.item_rejected"
        }
        assert set(rejected) == {*V2_POISON, None}
        assert "dato: NaN" in rejected["v2-nan-dato"]
        assert "dato: a number of 401 digits" in rejected["v2-long-dato"]
        assert "metadataFraAvleverendeSystem.journaldato: NaN" in rejected["v2-nan-journaldato"]
        assert "nested" in rejected["v2-deep-mappeid"]
        assert "filer[0].storrelse" in rejected["v2-huge-storrelse"]
        assert "filer[0].storrelse: -1" in rejected["v2-negative-storrelse"]
        assert "filer[0].hash" in rejected["v2-short-hash"]
        assert "filer: expected a list" in rejected["v2-filer-object"]
        assert "svarinn/v2/forsendelser[" in rejected[None]
        assert ".id: missing" in rejected[None]


def test_rejected_item_log_lines_and_ids_are_bounded(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        (good,) = h.sim.generate(1, 20_000)
        long_id = "x" * 5_000_000  # a 5 MB id must not make a 5 MB log line at every poll
        h.sim.add_raw_item(json.dumps({"id": long_id, "downloadUrl": "http://127.0.0.1/x"}))
        for _ in range(150):  # one page: fewer than SvarInn's 200
            h.sim.add_raw_item("0")
        code, lines = h.poll_once()
        assert code == 1
        assert dict(h.sim.state().acknowledged) == {good.id: 1}
        rejected = [line for line in lines if line["event"] == "poll.item_rejected"]
        assert len(rejected) == 20
        assert rejected[0]["forsendelse_id"].startswith("x" * 100)
        assert "(5000000 characters)" in rejected[0]["forsendelse_id"]
        assert max(len(json.dumps(line)) for line in lines) < 4000
        (more,) = [line for line in lines if line["event"] == "poll.items_rejected_not_logged"]
        assert more["count"] == 151 - 20


# Peak RSS from the kernel (wait4). A child's ru_maxrss starts at its parent's RSS at fork,
# so the daemon is started by this small wrapper, not by the (much larger) test process.
_MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:], stdout=open(sys.argv[1], "a"), stderr=subprocess.STDOUT)
_pid, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _million_zeros() -> bytes:
    return b"[" + b",".join([b"0"] * 1_000_000) + b"]"


def _one_wide_object() -> bytes:  # just under the 16 MiB body limit
    return b'[{"id":"wide",' + b",".join(b'"k%d":0' % n for n in range(1_300_000)) + b"}]"


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
@pytest.mark.parametrize(
    ("body", "error"),
    [
        (_million_zeros, "more than 1000 items"),
        (_one_wide_object, None),
    ],
)
def test_a_hostile_page_is_read_in_bounded_memory(
    tmp_path: Path, body: Callable[[], bytes], error: str | None
) -> None:
    with harness(tmp_path) as h:
        h.sim.set_raw_listing(body())
        log = tmp_path / "poll-once.log"
        command = [sys.executable, "-m", "svarinn_daemon", "--config", str(h.config_path)]
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _MEASURE,
                str(log),
                *command,
                "--log-format",
                "json",
                "poll-once",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        maxrss_kib, cpu = result.stdout.split()
        peak_mb = int(maxrss_kib) / 1024
        print(f"{body.__name__}: peak RSS {peak_mb:.0f} MB, CPU {float(cpu):.2f}s")
        assert result.returncode == 1, log.read_text()[-2000:]
        assert peak_mb < 300
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        assert len(lines) < 50
        if error is not None:
            (failed,) = [line for line in lines if line["event"] == "poll.failed"]
            assert error in failed["error"]
            assert failed["error_kind"] == "ProtocolError"
        else:
            (rejected,) = [line for line in lines if line["event"] == "poll.item_rejected"]
            assert rejected["forsendelse_id"] == "wide"
            assert "characters long" in rejected["error"]


def test_echoed_base64_credentials_are_masked_in_logs_and_ledger(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        (letter,) = h.sim.generate(1, 20_000)
        h.sim.add_fault(Fault("echo_auth", endpoints=frozenset({"download"})))
        code, lines = h.poll_once()
        assert code == 1
        token = base64.b64encode(f"{h.sim.username}:{h.sim.password}".encode()).decode()
        retry = [line for line in lines if line["event"] == "forsendelse.retry_scheduled"]
        assert retry
        assert "credentials ***" in retry[0]["error"]
        assert token not in json.dumps(lines)
        path = h.root / "state" / "ledger.sqlite3"
        with sqlite3.connect(path) as db:
            rows = [str(r) for r in db.execute("SELECT * FROM forsendelser")]
            rows += [str(r) for r in db.execute("SELECT * FROM forsendelse_events")]
        assert letter.id in "".join(rows)
        assert token not in "".join(rows)
        assert h.sim.password not in "".join(rows)


TRICKLE = """
[accounts.http]
download_min_rate = "1KiB"
download_deadline_base = "1s"
"""


def test_a_trickling_download_ends_within_its_budget(tmp_path: Path) -> None:
    with harness(tmp_path, extra_config=TRICKLE + FAST) as h:
        slow, good = h.sim.generate(2, 20_000)
        h.sim.add_fault(Fault("trickle", ids=frozenset({slow.id}), delay=0.05))
        started = time.monotonic()
        code, lines = h.poll_once()
        elapsed = time.monotonic() - started
        print(f"trickling download: poll-once ended after {elapsed:.1f}s")
        assert code == 1
        assert dict(h.sim.state().acknowledged) == {good.id: 1}
        (retry,) = [line for line in lines if line["event"] == "forsendelse.retry_scheduled"]
        assert retry["forsendelse_id"] == slow.id
        assert "too slow" in retry["error"]
        assert "download_min_rate" in retry["error"]
        # Budget: 1 s plus the bytes at 1 KiB/s -- far from the 20 s a trickle would take.
        assert elapsed < 15


def test_poll_once_stops_a_trickling_download_on_sigterm(tmp_path: Path) -> None:
    config = FAST.replace('shutdown_grace = "5s"', 'shutdown_grace = "1s"')
    with harness(tmp_path, extra_config=config) as h:
        (letter,) = h.sim.generate(1, 200_000)
        h.sim.add_fault(Fault("trickle", ids=frozenset({letter.id}), delay=0.2))
        child = h.spawn("poll-once", output=tmp_path / "poll-once.log")
        try:
            deadline = time.monotonic() + 30
            while h.sim.state().downloads.get(letter.id, 0) == 0:
                assert time.monotonic() < deadline, "the download never started"
                time.sleep(0.05)
            time.sleep(0.5)
            signalled = time.monotonic()
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)
            took = time.monotonic() - signalled
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        print(f"poll-once exited {took:.2f}s after SIGTERM (grace 1s)")
        assert took < 6  # grace 1 s, then the download is interrupted at once
        shown = json.loads(h.cli("show", letter.id, "--json").stdout)
        assert shown["events"][-1]["trigger"] == "release"
        h.sim.clear_faults()
        assert h.until_done() == 0
        assert h.archived_ids() == {letter.id}


def test_redirect_to_a_url_without_host_is_a_protocol_error(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        (letter,) = h.sim.generate(1, 20_000)
        location = f"http:127.0.0.1:{h.sim.port}"
        h.sim.add_fault(Fault("redirect", ids=frozenset({letter.id}), location=location))
        code, lines = h.poll_once()
        assert code == 1
        (retry,) = [line for line in lines if line["event"] == "forsendelse.retry_scheduled"]
        assert retry["error_kind"] == "ProtocolError"
        assert "Location" in retry["error"]
        assert not [line for line in lines if line["event"] == "forsendelse.internal_error"]


@pytest.mark.parametrize("port", ["99999", "notaport"])
def test_a_link_with_a_bad_port_rejects_its_item_not_a_retry_loop(
    tmp_path: Path, port: str
) -> None:
    """Issue #24, item 16, through the daemon: a download link whose port is no port was
    claimed and ended as an InternalError retried forever; now its item is set aside."""
    with harness(tmp_path) as h:
        (good,) = h.sim.generate(1, 10_000)
        link = h.sim.download_url("bad-port").replace(f":{h.sim.port}/", f":{port}/")
        assert port in link
        h.sim.add_raw_item(json.dumps({"id": "bad-port", "downloadUrl": link}))
        code, lines = h.poll_once()
        assert code == 1
        assert dict(h.sim.state().acknowledged) == {good.id: 1}
        assert _ledger_ids(h) == {good.id}  # never claimed, so never retried
        (rejected,) = [line for line in lines if line["event"] == "poll.item_rejected"]
        assert rejected["forsendelse_id"] == "bad-port"
        assert "downloadUrl" in str(rejected["error"])
