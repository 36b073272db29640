"""The daemon end to end over loopback: simulator -> poll-once -> filesystem archive."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from svarinn_daemon.simulator.faults import Fault
from tests.support.daemon_harness import harness, v1_requests
from tests.support.ledger_support import record_seen

# These run against both SvarInn APIs (tests/e2e/test_daemon_v2.py has what only V2 does).
BOTH_APIS = pytest.mark.parametrize("api", ["v1", "v2"])


def _letter_dir_ok(root: Path, letter_id: str, expected: dict[str, bytes]) -> None:
    directory = root / letter_id
    meta = json.loads((directory / "forsendelse.json").read_text())
    assert meta["forsendelse_id"] == letter_id
    assert meta["verification"]["verified"] is True
    stored = {
        d["original_name"] if "original_name" in d else d["name"]: d for d in meta["documents"]
    }
    assert len(stored) == len(expected)
    for name, data in expected.items():
        path = next(p for p in directory.iterdir() if p.name == name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


@BOTH_APIS
def test_single_file_and_zip_letters_are_archived_once_and_acknowledged(
    tmp_path: Path, api: str
) -> None:
    with harness(tmp_path, api=api) as h:
        singles = h.sim.generate(3, 30_000)
        zips = h.sim.generate(2, 20_000, files_per_letter=3)
        code, lines = h.poll_once()
        assert code == 0, lines[-3:]
        state = h.sim.state()
        every = [letter.id for letter in singles + zips]
        assert state.pending == ()
        assert dict(state.acknowledged) == dict.fromkeys(every, 1)
        assert state.reports == ()
        assert h.archived_ids() == set(every)
        for letter in zips:
            files = {f.filnavn: f for f in letter.files}
            stored = {p.name for p in (h.archive / letter.id).iterdir()}
            assert set(files) <= stored
            for name in files:
                data = (h.archive / letter.id / name).read_bytes()
                assert hashlib.sha256(data).hexdigest() == files[name].sha256
        events = {line["event"] for line in lines}
        assert {"poll.finished", "forsendelse.archived", "forsendelse.acknowledged"} <= events


# Over plain HTTP on both APIs; over TLS (verification on), a TCP reset or a close without
# close_notify mid-body, and a stalled body, are temporary failures just the same.
DOWNLOAD_FAULTS = [
    *(
        pytest.param(kind, api, False, 200_000, id=f"{api}-{kind}")
        for api in ("v1", "v2")
        for kind in ("http_500", "http_503", "reset", "truncate", "slow")
    ),
    *(
        pytest.param(kind, "v1", True, 400_000, id=f"tls-{kind}")
        for kind in ("reset", "truncate", "stall")
    ),
    # Past svarinn/rawbody.py's 8 MiB: the body's rest is read from the connection, not h11.
    *(
        pytest.param(kind, api, tls, 10_000_000, id=f"large-{'tls-' if tls else ''}{api}-{kind}")
        for api, tls in (("v1", False), ("v2", False), ("v1", True))
        for kind in ("reset", "truncate", "stall")
    ),
]


@pytest.mark.parametrize(("kind", "api", "tls", "size"), DOWNLOAD_FAULTS)
def test_temporary_download_faults_are_retried_until_imported(
    tmp_path: Path, kind: str, api: str, tls: bool, size: int
) -> None:
    with harness(tmp_path, api=api, tls=tls) as h:
        (letter,) = h.sim.generate(1, size)
        h.sim.add_fault(Fault(kind, ids=frozenset({letter.id}), times=1, delay=0.2))
        assert h.until_done() == 0
        state = h.sim.state()
        assert state.faults_fired.get(kind) == 1
        assert dict(state.acknowledged) == {letter.id: 1}
        assert not any(r.permanent for r in state.reports)
        assert h.archived_ids() == {letter.id}


@pytest.mark.parametrize("kind", ["corrupt", "wrong_sha256"])
@BOTH_APIS
def test_letters_still_corrupt_after_retries_are_reported_permanently(
    tmp_path: Path, kind: str, api: str
) -> None:
    with harness(tmp_path, api=api) as h:
        bad, good = h.sim.generate(2, 50_000)
        h.sim.add_fault(Fault(kind, ids=frozenset({bad.id})))
        assert h.until_done() == 0
        state = h.sim.state()
        assert dict(state.acknowledged) == {good.id: 1}
        (report,) = [r for r in state.reports_for(bad.id) if r.permanent]
        assert report.feilmelding
        assert state.downloads[bad.id] == 3  # retry.max_download_attempts
        assert h.archived_ids() == {good.id}
        if api == "v2":
            assert v1_requests(h) == []  # nothing but V2
        result = h.cli("show", bad.id, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["letter"]["state"] == "reported"


@BOTH_APIS
def test_a_duplicate_listing_is_imported_once(tmp_path: Path, api: str) -> None:
    with harness(tmp_path, api=api) as h:
        letters = h.sim.generate(3, 10_000)
        h.sim.add_fault(Fault("duplicate"))
        assert h.poll_once()[0] == 0
        assert dict(h.sim.state().acknowledged) == {x.id: 1 for x in letters}
        assert h.archived_ids() == {x.id for x in letters}


@BOTH_APIS
def test_unauthorized_stops_the_account_and_touches_no_letter(tmp_path: Path, api: str) -> None:
    with harness(tmp_path, api=api) as h:
        h.sim.generate(2, 10_000)
        h.sim.add_fault(Fault("unauthorized", times=1))
        code, lines = h.poll_once()
        assert code == 1
        failed = [line for line in lines if line["event"] == "poll.failed"]
        assert failed
        assert failed[0]["error_kind"] == "AuthenticationError"
        assert h.sim.state().reports == ()
        assert h.poll_once()[0] == 0  # credentials work again: everything comes in


@BOTH_APIS
def test_receipts_that_failed_are_sent_later_without_downloading_again(
    tmp_path: Path, api: str
) -> None:
    receipts = "v2_status" if api == "v2" else "acknowledge"
    with harness(tmp_path, api=api) as h:
        letters = h.sim.generate(2, 10_000)
        h.sim.add_fault(Fault("http_503", endpoints=frozenset({receipts})))  # type: ignore[arg-type]
        assert h.poll_once()[0] == 1
        assert h.archived_ids() == {x.id for x in letters}
        assert h.sim.state().acknowledged == {}
        h.sim.clear_faults()
        assert h.until_done() == 0
        state = h.sim.state()
        assert dict(state.acknowledged) == {x.id: 1 for x in letters}
        assert dict(state.downloads) == {x.id: 1 for x in letters}


@BOTH_APIS
def test_a_letter_listed_again_after_its_receipt_is_acknowledged_not_imported(
    tmp_path: Path,
    api: str,
) -> None:
    with harness(tmp_path, api=api) as h:
        (letter,) = h.sim.generate(1, 10_000)
        assert h.poll_once()[0] == 0
        h.sim.relist(letter.id)  # SvarUt lists it again, as if the receipt had been lost
        assert h.poll_once()[0] == 0
        state = h.sim.state()
        assert state.acknowledged[letter.id] == 2
        assert state.downloads[letter.id] == 1
        assert h.archived_ids() == {letter.id}


@pytest.mark.postgres
@BOTH_APIS
def test_the_daemon_on_a_postgresql_ledger(tmp_path: Path, postgres_url: str, api: str) -> None:
    with harness(tmp_path, ledger_url=postgres_url, api=api) as h:
        letters = h.sim.generate(4, 10_000, files_per_letter=2)
        assert h.poll_once()[0] == 0
        assert dict(h.sim.state().acknowledged) == {x.id: 1 for x in letters}
        if api == "v2":
            assert v1_requests(h) == []
        status = h.cli("status", "--json")
        assert status.returncode == 0, status.stderr


@BOTH_APIS
def test_zip_from_conformance_data_is_unpacked(
    tmp_path: Path, conformance_dir: Path, api: str
) -> None:
    data = (conformance_dir / "dokumenter.zip").read_bytes()
    with zipfile.ZipFile(conformance_dir / "dokumenter.zip") as z:
        names = z.namelist()
    with harness(tmp_path, api=api) as h:
        from svarinn_daemon.simulator import LetterFile

        letter = h.sim.add_letter(
            [
                LetterFile(
                    n,
                    "application/octet-stream",
                    data=zipfile.ZipFile(conformance_dir / "dokumenter.zip").read(n),
                )
                for n in names
            ]
        )
        assert h.poll_once()[0] == 0
        assert {p.name for p in (h.archive / letter.id).iterdir()} >= set(names)
    assert data


def test_check_config_online_proves_the_credentials(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        h.sim.generate(2, 1_000)
        ok = h.cli("check-config", "--quiet", "--online")
        assert ok.returncode == 0, ok.stderr
        assert "accepted the credentials; 2 letter(s) waiting" in ok.stderr
        (unreadable,) = h.sim.generate(1, 1_000)
        h.sim.add_fault(Fault("malformed", ids=frozenset({unreadable.id})))
        warned = h.cli("check-config", "--quiet", "--online")
        assert warned.returncode == 0, warned.stderr  # the credentials are fine
        assert "2 letter(s) waiting" in warned.stderr
        assert f"warning: hentNyeForsendelser[2] (id '{unreadable.id}')" in warned.stderr
        h.sim.add_fault(Fault("unauthorized"))
        bad = h.cli("check-config", "--quiet", "--online")
        assert bad.returncode == 1
        assert "AuthenticationError" in bad.stderr
        assert h.sim.password not in bad.stderr
        assert h.sim.state().acknowledged == {}


@BOTH_APIS
def test_interrupted_claims_do_not_count_as_corrupt_downloads(tmp_path: Path, api: str) -> None:
    """Two claims cut short (a kill, a shutdown) must not send a letter to paper early."""
    from datetime import timedelta

    from svarinn_daemon.config import load_config
    from svarinn_daemon.ledger import open_ledger

    with harness(tmp_path, api=api) as h:
        (bad,) = h.sim.generate(1, 20_000)
        h.sim.add_fault(Fault("corrupt", ids=frozenset({bad.id})))
        # the forsendelse exactly as hentNyeForsendelser, or V2's listing, lists it
        if api == "v2":
            (listed,) = h.sim.next_page(v2_base="/api")
            assert "nedlastingslenke" in listed
        else:
            (listed,) = h.sim.next_page()
        config = load_config(h.config_path, environ={})
        with open_ledger(config.ledger, migrate_schema=True) as ledger:
            record_seen(ledger, "simulator", bad.id, raw_json=json.dumps(listed))
            for _ in range(2):
                (claim,) = ledger.claim("killed-worker", timedelta(seconds=30))
                ledger.release(claim.id, "killed-worker", "worker restarted")
            assert ledger.get(claim.id).attempts == 2  # type: ignore[union-attr]
        assert h.until_done() == 0
        state = h.sim.state()
        assert state.downloads[bad.id] == 3
        assert [r.permanent for r in state.reports_for(bad.id)][-1] is True


def test_an_unreadable_listing_item_does_not_hold_back_the_others(tmp_path: Path) -> None:
    """One item without downloadUrl: the others are imported, the bad one is logged with
    its id at every poll, never recorded or reported, and poll-once exits 1 for cron."""
    with harness(tmp_path) as h:
        bad, *good = h.sim.generate(3, 10_000)
        h.sim.add_fault(Fault("malformed", ids=frozenset({bad.id})))
        for _ in range(2):
            code, lines = h.poll_once()
            assert code == 1
            (rejected,) = [line for line in lines if line["event"] == "poll.item_rejected"]
            assert rejected["forsendelse_id"] == bad.id
            assert "downloadUrl: missing" in rejected["error"]
            (finished,) = [line for line in lines if line["event"] == "poll.finished"]
            assert finished["rejected"] == 1
        state = h.sim.state()
        assert dict(state.acknowledged) == {x.id: 1 for x in good}
        assert state.reports == ()
        assert h.archived_ids() == {x.id for x in good}
        shown = h.cli("show", bad.id, "--json")
        assert shown.returncode != 0  # never entered the ledger
