"""Hostile letters and a careless neighbour on the host, end to end through poll-once.

Zip bombs of many small entries, and whatever someone left in the archive root: a symlink
where a letter's directory would go, ``.tmp-`` names that are not ours, file names with
line separators.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from svarinn_daemon.simulator.letters import LetterFile
from tests.support.daemon_harness import harness

ZEROS = bytes(2**20)


def _events(lines: list[dict[str, object]], event: str) -> list[dict[str, object]]:
    return [line for line in lines if line["event"] == event]


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_zip_of_many_small_zero_entries_is_refused_as_unsafe(tmp_path: Path, api: str) -> None:
    with harness(tmp_path, api=api) as h:
        (good,) = h.sim.generate(1, 20_000)
        bomb = h.sim.add_letter(
            [
                LetterFile(f"null-{n}.bin", "application/octet-stream", chunks=(ZEROS,))
                for n in range(200)
            ]
        )
        zipped = h.sim.letter(bomb.id).blob_size
        assert zipped < 400_000  # about 200 MiB of zeros in a few hundred KB
        code, lines = h.poll_once()
        assert code == 0
        state = h.sim.state()
        assert dict(state.acknowledged) == {good.id: 1}
        (report,) = state.reports_for(bomb.id)
        assert report.permanent
        assert "more than the limit of 200:1" in report.feilmelding
        if api == "v1":  # a zip in a file: its whole directory is read first
            assert "unpack to 209715200 bytes" in report.feilmelding
        else:  # V2 unpacked as it streams: refused once the ratio passes the limit
            assert "so far" in report.feilmelding
        (failed,) = _events(lines, "forsendelse.failed_permanently")
        assert failed["error_kind"] == "UnsafeArchiveError"
        assert failed["forsendelse_id"] == bomb.id
        assert h.archived_ids() == {good.id}
        assert list(h.spool.iterdir()) == []
        shown = json.loads(h.cli("show", bomb.id, "--json").stdout)
        assert shown["letter"]["state"] == "reported"


def test_a_symlink_at_the_letters_directory_is_neither_trusted_nor_fatal(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        good, blocked = h.sim.generate(2, 20_000)
        planted = h.archive / blocked.id
        planted.symlink_to(tmp_path / "nowhere")  # dangling
        code, lines = h.poll_once()
        assert code == 1  # one letter waits for a retry
        assert dict(h.sim.state().acknowledged) == {good.id: 1}
        assert not _events(lines, "forsendelse.already_archived")
        (retry,) = _events(lines, "forsendelse.retry_scheduled")
        assert retry["forsendelse_id"] == blocked.id
        assert "a symbolic link" in str(retry["error"])
        assert str(planted) in str(retry["error"])
        assert planted.is_symlink()
        # Temporary: SvarUt may hear "not yet", never "send it on paper".
        assert not any(r.permanent for r in h.sim.state().reports)
        planted.unlink()
        assert h.until_done() == 0
        assert h.archived_ids() == {good.id, blocked.id}
        assert (planted / "forsendelse.json").is_file()
        assert dict(h.sim.state().acknowledged) == {good.id: 1, blocked.id: 1}


def test_tmp_symlinks_in_the_archive_root_do_not_stop_start_up(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        (letter,) = h.sim.generate(1, 20_000)
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "precious.txt").write_text("keep")
        (h.archive / ".tmp-planted").symlink_to(outside)
        (h.archive / ".tmp-dangling").symlink_to(tmp_path / "nowhere")
        code, lines = h.poll_once()
        assert code == 0
        assert h.archived_ids() == {letter.id}
        assert (outside / "precious.txt").read_text() == "keep"
        assert (h.archive / ".tmp-planted").is_symlink()
        skipped = {
            Path(str(line["path"])).name for line in _events(lines, "archive.leftover_skipped")
        }
        assert {".tmp-planted", ".tmp-dangling"} <= skipped


def test_stored_file_names_lose_line_and_paragraph_separators(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        single = h.sim.add_bytes(b"%PDF-1.4 one", filnavn="Vedtak\u2028del\u20291.pdf")
        zipped = h.sim.add_letter(
            [
                LetterFile("Brev\u2029A.txt", "text/plain", data=b"a"),
                LetterFile("Brev\u2028B.txt", "text/plain", data=b"b"),
            ]
        )
        assert h.poll_once()[0] == 0
        names = {p.name for p in (h.archive / single.id).iterdir()}
        names |= {p.name for p in (h.archive / zipped.id).iterdir()}
        assert {"Vedtakdel1.pdf", "BrevA.txt", "BrevB.txt"} <= names
        assert not any(c in name for name in names for c in "\u2028\u2029")
