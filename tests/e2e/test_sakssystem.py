"""The daemon end to end into a sakssystem: the command adapter running a real program, the
http adapter posting to a real HTTP server, both misbehaving; simulator -> poll-once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from svarinn_daemon.config import load_config
from svarinn_daemon.ledger import Ledger, State, open_ledger
from svarinn_daemon.simulator.letters import SimLetter
from tests.support.daemon_harness import Harness, harness, until_done
from tests.support.fakes.sakssystem import SakServer
from tests.support.programs import command_table, use_archive, write_import_program


@contextmanager
def ledger_of(h: Harness) -> Iterator[Ledger]:
    ledger = open_ledger(load_config(h.config_path, environ={}).ledger)
    try:
        yield ledger
    finally:
        ledger.close()


def assert_stored(directory: Path, letter: SimLetter) -> None:
    meta = json.loads((directory / "forsendelse.json").read_text())
    assert meta["forsendelse_id"] == letter.id
    stored = {d["name"]: d["file"] for d in meta["documents"]}
    for info in letter.files:
        data = (directory / stored[info.filnavn]).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (info.sha256, info.size)


def test_command_adapter_imports_retries_and_refuses(tmp_path: Path) -> None:
    program = write_import_program(tmp_path / "bin")
    store, script = tmp_path / "sak", tmp_path / "script"
    script.mkdir()
    with harness(tmp_path / "h") as h:
        use_archive(h, command_table(program, store, script))
        temp, hang, killed, refused = h.sim.generate(4, 50_000)
        (zipped,) = h.sim.generate(1, 20_000, files_per_letter=3)
        (script / temp.id).write_text("tempfail\n")
        (script / hang.id).write_text("hang\n")
        (script / killed.id).write_text("kill-self\n")
        (script / refused.id).write_text("refuse\n")
        logged = until_done(h)
        state = h.sim.state()
        good = [temp, hang, killed, zipped]
        assert {p.name for p in store.iterdir() if not p.name.startswith(".")} == {
            x.id for x in good
        }
        with ledger_of(h) as ledger:
            for letter in good:
                assert_stored(store / letter.id, letter)
                assert state.acknowledged[letter.id] == 1
                assert not state.reports_for(letter.id)
                (row,) = ledger.find(letter.id)
                assert (row.state, row.archive_ref) == (State.ACKNOWLEDGED, f"sak:{letter.id}")
            (row,) = ledger.find(refused.id)
            assert row.state is State.REPORTED
        # the program's words are for the operator (the log); the sender hears a fixed text
        assert "Elements refused the letter: case 2026/17 is closed" in logged
        assert refused.id not in state.acknowledged
        (report,) = state.reports_for(refused.id)
        assert report.permanent
        observed = json.loads((store / f".observed-{zipped.id}.json").read_text())
        assert observed["env"]["SVARINN_ACCOUNT"] == "simulator"  # the harness's account
        assert observed["env"]["SVARINN_API"] == "v1"
        assert "SVARINN_PASSWORD" not in observed["env"]
        work = h.root / "state" / "adapters" / "default"
        assert not any(work.iterdir()), "letter directories left in the work area"


def test_http_adapter_posts_every_letter_once_through_faults(tmp_path: Path) -> None:
    with SakServer() as server, harness(tmp_path / "h") as h:
        token = h.root / "sak-token"
        token.write_text("Bearer e2e-token-77\n")
        use_archive(
            h,
            f"""[archives.default]
adapter = "http"
url = "{server.url}"
status_url = "{server.url}/{{forsendelse_id}}"
authorization_file = "{token}"
timeout = "1s"
""",
        )
        letters = h.sim.generate(4, 60_000)
        (zipped,) = h.sim.generate(1, 20_000, files_per_letter=3)
        (refused,) = h.sim.generate(1, 10_000)
        faults = ["503", "429:0", "reset", "slow:2"]
        for letter, fault in zip(letters, faults, strict=True):
            server.state.faults_by_key[letter.id] = [fault]
        server.state.refused.add(refused.id)
        logged = until_done(h)
        state = h.sim.state()
        good = [*letters, zipped]
        assert set(server.state.letters) == {x.id for x in good}
        assert server.state.errors == 0
        for letter in good:
            received = server.state.letters[letter.id]
            assert received.metadata["forsendelse_id"] == letter.id
            assert received.headers["Authorization"] == "Bearer e2e-token-77"
            files = {name: data for name, _type, data in received.files}
            for info in letter.files:
                data = files[info.filnavn]
                assert hashlib.sha256(data).hexdigest() == info.sha256
            assert state.acknowledged[letter.id] == 1
        assert refused.id not in state.acknowledged
        (report,) = state.reports_for(refused.id)
        assert report.permanent
        assert "HTTP 422" in logged
        assert "e2e-token-77" not in logged + report.feilmelding


def test_routes_send_letters_to_their_archive_and_show_says_which(tmp_path: Path) -> None:
    with harness(tmp_path / "h") as h:
        bedrift = h.root / "bedrift"
        text = h.config_path.read_text()
        start = text.index("[[accounts]]")
        h.config_path.write_text(
            text[:start]
            + f"""[archives.bedrift]
adapter = "filesystem"
root = "{bedrift}"

[[routes]]
archive = "bedrift"
account = ["simulator"]
avsender_navn = ["testbedrift *"]
mottaker_orgnr = ["999888777"]

"""
            + text[start:]
        )
        letters = h.sim.generate(6, 20_000)  # every third from a person, the others firms
        people = {x.id for x in letters if x.avsender.get("fnr")}
        firms = {x.id for x in letters} - people
        assert people
        assert firms
        assert h.until_done() == 0
        assert h.archived_ids() == people
        assert {p.name for p in bedrift.iterdir()} == firms
        assert set(h.sim.state().acknowledged) == people | firms
        firm = h.cli("show", sorted(firms)[0])
        assert "in archive bedrift by routes[0]" in firm.stdout, firm.stdout + firm.stderr
        person = h.cli("show", sorted(people)[0])
        assert "in archive default (the account's; no route matched)" in person.stdout
        checked = h.cli("check-config")
        assert "[[routes]]" in checked.stdout
