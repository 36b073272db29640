"""The daemon end to end over SvarInn V2: simulator (V2 endpoints) -> poll-once -> archive,
and one account switched from v1 to v2 between two runs with letters in every state.
(What both versions must do alike runs for each in tests/e2e/test_daemon.py.)"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from svarinn_daemon.simulator.faults import Fault
from tests.support.daemon_harness import V2_ENDPOINTS, Harness, harness, v1_requests


@pytest.mark.parametrize("base", ["/api", "/tjenester"])
def test_letters_are_imported_over_v2_and_acknowledged_with_a_patch(
    tmp_path: Path, base: str
) -> None:
    with harness(tmp_path, api="v2") as h:
        if base != "/api":
            text = h.config_path.read_text()
            h.config_path.write_text(text.replace(h.sim.v2_base_url(), h.sim.v2_base_url(base)))
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
        assert v1_requests(h) == []  # nothing but V2
        assert {r.path.split("/svarinn/")[0] for r in h.sim.request_log()} == {base}
        for letter in singles + zips:
            files = {f.filnavn: f for f in letter.files}
            for name, info in files.items():
                data = (h.archive / letter.id / name).read_bytes()
                assert hashlib.sha256(data).hexdigest() == info.sha256
            meta = json.loads((h.archive / letter.id / "forsendelse.json").read_text())
            assert meta["verification"]["verified"] is True
            assert meta["verification"]["file_type"] == "zip"  # V2 always sends a ZIP
            # Unpacked as it streamed: the ZIP itself is not hashed, each document is.
            assert meta["verification"]["sha256"] is None
            assert [d["sha256"] for d in meta["documents"]] == [f.sha256 for f in letter.files]
            forsendelse = meta["forsendelse"]  # the normalised shape, the item in raw
            assert (forsendelse["api"], forsendelse["id"]) == ("v2", letter.id)
            assert [f["hash"] for f in forsendelse["filer"]] == [f.sha256 for f in letter.files]
            assert forsendelse["raw"]["id"] == letter.id
            assert "nedlastingslenke" in forsendelse["raw"]
        shown = h.cli("show", singles[0].id, "--json")
        assert shown.returncode == 0, shown.stderr
        letter_json = json.loads(shown.stdout)["letter"]
        assert letter_json["api"] == "v2"
        assert letter_json["state"] == "acknowledged"
        assert letter_json["actual_sha256"] == [f.sha256 for f in singles[0].files]


def test_temporary_faults_on_v2_endpoints_are_retried(tmp_path: Path) -> None:
    with harness(tmp_path, api="v2") as h:
        a, b = h.sim.generate(2, 200_000)
        h.sim.add_fault(Fault("reset", ids=frozenset({a.id}), times=1))
        h.sim.add_fault(Fault("http_503", endpoints=frozenset({"v2_list"}), times=1))
        assert h.until_done() == 0
        state = h.sim.state()
        assert state.faults_fired == {"reset": 1, "http_503": 1}
        assert dict(state.acknowledged) == {a.id: 1, b.id: 1}
        assert state.downloads == {a.id: 2, b.id: 1}


def _switch_to_v2(h: Harness) -> None:
    text = h.config_path.read_text()
    switched = re.sub(
        r'api = "v1"\nbase_url = "[^"]*"',
        f'api = "v2"\nbase_url = "{h.sim.v2_base_url()}"',
        text,
    )
    assert switched != text
    h.config_path.write_text(switched)


def test_switching_an_account_from_v1_to_v2_with_letters_in_every_state(tmp_path: Path) -> None:
    """Run 1 on v1 leaves: one letter imported and acknowledged, one archived whose receipt
    failed, one waiting for a retry after a failed download, one failed permanently and
    reported; run 2 on v2 finishes them all (and a new one) without importing any twice.

    A letter keeps what the version that first listed it said (the ledger holds that item
    as received): the one listed under v1 and not yet downloaded is fetched from its v1
    link and checked against its v1 filmetadata; listing and receipts all go through V2."""
    with harness(tmp_path, api="v1") as h:
        done, unreceipted, retrying, broken = h.sim.generate(4, 20_000)
        h.sim.add_fault(
            Fault("http_503", ids=frozenset({unreceipted.id}), endpoints=frozenset({"acknowledge"}))
        )
        h.sim.add_fault(
            Fault("http_503", ids=frozenset({retrying.id}), endpoints=frozenset({"download"}))
        )
        h.sim.add_fault(Fault("corrupt", ids=frozenset({broken.id})))
        for _ in range(4):  # the corrupt one: three downloads, then reported
            h.poll_once()
        state = h.sim.state()
        assert dict(state.acknowledged) == {done.id: 1}
        assert [r.permanent for r in state.reports_for(broken.id)][-1] is True
        assert h.archived_ids() == {done.id, unreceipted.id}
        assert retrying.id in state.pending
        states = {
            x.id: json.loads(h.cli("show", x.id, "--json").stdout)["letter"]
            for x in (done, unreceipted, retrying, broken)
        }
        assert {k: (v["state"], v["api"]) for k, v in states.items()} == {
            done.id: ("acknowledged", "v1"),
            unreceipted.id: ("archived", "v1"),
            retrying.id: ("retry_scheduled", "v1"),
            broken.id: ("reported", "v1"),
        }

        _switch_to_v2(h)
        h.sim.clear_faults()
        (new,) = h.sim.generate(1, 20_000)
        before = len(h.sim.request_log())
        assert h.until_done() == 0
        after = h.sim.request_log()[before:]
        assert {r.endpoint for r in after if r.forsendelse_id != retrying.id} <= V2_ENDPOINTS
        assert {r.endpoint for r in after if r.forsendelse_id == retrying.id} == {
            "download",  # its v1 downloadUrl, as listed
            "v2_status",
        }
        state = h.sim.state()
        assert dict(state.acknowledged) == {
            done.id: 1,
            unreceipted.id: 1,  # its receipt came through the V2 PATCH
            retrying.id: 1,
            new.id: 1,
        }
        assert state.downloads[done.id] == 1  # nothing imported twice
        assert state.downloads[unreceipted.id] == 1
        assert state.downloads[new.id] == 1
        assert h.archived_ids() == {done.id, unreceipted.id, retrying.id, new.id}
        assert json.loads(h.cli("show", new.id, "--json").stdout)["letter"]["api"] == "v2"
        # An adapter sees one shape whichever version listed the letter.
        old, fresh = (
            json.loads((h.archive / x.id / "forsendelse.json").read_text())["forsendelse"]
            for x in (done, new)
        )
        assert (old["api"], fresh["api"]) == ("v1", "v2")
        assert list(old) == list(fresh)
        assert "downloadUrl" in old["raw"]
        assert "nedlastingslenke" in fresh["raw"]


def test_check_config_online_names_the_other_v2_base_after_a_404(tmp_path: Path) -> None:
    with harness(tmp_path, api="v2") as h:
        h.sim.generate(1, 1_000)
        ok = h.cli("check-config", "--quiet", "--online")
        assert ok.returncode == 0, ok.stderr
        assert "accepted the credentials; 1 letter(s) waiting" in ok.stderr
        assert "deprecated" not in ok.stderr
        wrong = f"{h.sim.base_url}/feil/api"
        h.config_path.write_text(h.config_path.read_text().replace(h.sim.v2_base_url(), wrong))
        bad = h.cli("check-config", "--quiet", "--online")
        assert bad.returncode == 1
        assert "404" in bad.stderr
        assert f'try base_url = "{h.sim.base_url}/feil/tjenester"' in bad.stderr


def test_a_v2_zip_entry_filer_does_not_list_is_never_acknowledged(tmp_path: Path) -> None:
    """Issue #24, item 15, through the daemon: SvarInn serves a ZIP of two files but its
    listing's filer[] names one; the extra file was imported unverified and the letter
    acknowledged. Now the letter fails permanently, nothing reaches the archive."""
    with harness(tmp_path, api="v2") as h:
        (letter,) = h.sim.generate(1, 10_000, files_per_letter=2)
        item = letter.to_json_v2(h.sim.v2_download_url(letter.id))
        planted = item["filer"].pop()["filnavn"]
        h.sim.set_raw_listing(json.dumps([item]).encode())
        assert h.poll_once()[0] == 0  # finished: failed for good, nothing left to retry
        state = h.sim.state()
        assert state.acknowledged == {}
        (report,) = state.reports_for(letter.id)
        assert report.permanent
        assert f"filer[] does not list: {planted!r}" in report.feilmelding
        assert h.archived_ids() == set()
        shown = json.loads(h.cli("show", letter.id, "--json").stdout)["letter"]
        assert shown["state"] == "reported"  # mottakFeilet sent, never acknowledged


def test_a_v2_letter_is_unpacked_as_it_downloads_or_else_spooled_whole(tmp_path: Path) -> None:
    """A V2 ZIP is checked and unpacked while it streams; one whose stored entry ends
    where only its data descriptor says, and whose filer[] gives no size (SvarInn's 0),
    cannot be: it is downloaded again into the spool and read from there, archived once."""
    with harness(tmp_path, api="v2") as h:
        streamed, spooled = h.sim.generate(2, 30_000)
        h.sim.add_fault(Fault("unknown_size", ids=frozenset({spooled.id})))
        code, lines = h.poll_once()
        assert code == 0
        said = [line for line in lines if line.get("event") == "download.spooled"]
        assert [line["forsendelse_id"] for line in said] == [spooled.id]
        state = h.sim.state()
        assert dict(state.downloads) == {streamed.id: 1, spooled.id: 2}
        assert dict(state.acknowledged) == {streamed.id: 1, spooled.id: 1}
        assert h.archived_ids() == {streamed.id, spooled.id}
        assert list(h.spool.iterdir()) == []
