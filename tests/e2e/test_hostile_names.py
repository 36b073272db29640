"""A sender's document names never run code in the ``command`` adapter's program (issue #24,
item 1), through the real daemon against the simulator and a real shell script.

The letter carries ``import.sh`` (the name of the operator's script, given relatively in
``command`` as operators write it), ``json.py`` (which a Python one-liner run in the letter
directory would import), and a file named like a tar option next to the script that option
would run. The operator's script does what glue scripts do: ``cd`` into the letter, ``tar``
``*``, and a ``python3 -c`` with ``import json``. None of the sender's code may run.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from svarinn_daemon.simulator.letters import LetterFile
from tests.support.daemon_harness import harness, until_done
from tests.support.programs import use_archive

OPERATORS_SCRIPT = """#!/bin/sh
set -e
store="{store}"
part="$store/.$SVARINN_FORSENDELSE_ID.part"
mkdir -p "$part"
cd "$SVARINN_LETTER_DIR"
tar -cf "$part/letter.tar" *
python3 -c "import json, sys; json.load(sys.stdin)" < forsendelse.json
mv "$part" "$store/$SVARINN_FORSENDELSE_ID"
echo "sak:$SVARINN_FORSENDELSE_ID"
"""


def test_a_senders_file_names_never_run_as_the_operators_program(tmp_path: Path) -> None:
    with harness(tmp_path / "h") as h:
        pwned = h.root / "PWNED"
        store = h.root / "store"
        config_dir = h.config_path.parent
        (config_dir / "import.sh").write_text(OPERATORS_SCRIPT.format(store=store))
        use_archive(
            h,
            """[archives.default]
adapter = "command"
command = ["/bin/sh", "import.sh"]
timeout = "30s"
""",
        )
        evil = f"touch {pwned}-$(basename $0)\n".encode()
        letter = h.sim.add_letter(
            [
                LetterFile("import.sh", "text/x-sh", data=b"#!/bin/sh\n" + evil),
                LetterFile(
                    "json.py",
                    "text/x-python",
                    data=f"open({str(pwned) + '-json'!r}, 'w').close()\n".encode(),
                ),
                LetterFile("pwn.sh", "text/x-sh", data=evil),
                LetterFile("--checkpoint=1", "text/plain", data=b"x"),
                LetterFile("--checkpoint-action=exec=sh pwn.sh", "text/plain", data=b"x"),
                LetterFile("brev.pdf", "application/pdf", data=b"%PDF-1.4 brev\n"),
            ]
        )
        until_done(h)
        assert sorted(p.name for p in h.root.iterdir() if p.name.startswith("PWNED")) == []
        assert set(h.sim.state().acknowledged) == {letter.id}
        with tarfile.open(store / letter.id / "letter.tar") as tar:
            names = sorted(tar.getnames())
        assert "brev.pdf" in names
        assert "forsendelse.json" in names
        assert not [n for n in names if n.startswith("-")]  # never an option to tar


def test_a_relative_program_outside_the_configuration_directory_is_refused(
    tmp_path: Path,
) -> None:
    with harness(tmp_path / "h") as h:
        use_archive(
            h,
            """[archives.default]
adapter = "command"
command = ["./bin/import-letter"]
""",
        )
        checked = h.cli("check-config")
        assert checked.returncode == 2
        assert "archives.default.command" in checked.stderr
        assert "configuration file's directory" in checked.stderr


def test_a_hostile_title_reaches_no_terminal_raw(tmp_path: Path) -> None:
    """Issue #24, item 10: ``show`` printed a sender's title with terminal escapes (an OSC 52
    sequence writes the operator's clipboard) raw."""
    hostile = "Vedtak\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J\u202eFDP.exe"
    with harness(tmp_path / "h") as h:
        letter = h.sim.add_letter(
            LetterFile("brev.pdf", "application/pdf", data=b"%PDF-1.4 x\n"), tittel=hostile
        )
        until_done(h)
        for args in (("show", letter.id), ("list",), ("status",)):
            out = h.cli(*args).stdout
            assert "\x1b" not in out
            assert "\x07" not in out
            assert "\u202e" not in out
        shown = h.cli("show", letter.id).stdout
        assert "Vedtak\\x1b]52;c;cm0gLXJmIH4K\\x07\\x1b[2J\\u202eFDP.exe" in shown
