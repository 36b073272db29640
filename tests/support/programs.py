"""Real programs for the ``command`` adapter's tests, written to disk by the tests.

``write_import_program(directory)`` writes ``import-letter``, a small sakssystem importer:
it copies the letter directory it is given into its own store (``<store>/<id>/``, through a
partial directory and a rename, so a kill mid-copy leaves no letter), idempotent on
``SVARINN_FORSENDELSE_ID``, and prints ``sak:<id>`` as the reference. ``--status`` is its
check command. ``--mode`` makes it misbehave the ways a real one does; ``--script DIR``
does so per letter: ``DIR/<id>`` lists one behaviour a line, each run uses up the first.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.daemon_harness import Harness

PROGRAM = r"""
import fcntl, json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.daemon_harness import Harness

args = sys.argv[1:]
store = Path(args[args.index("--store") + 1])
mode = args[args.index("--mode") + 1] if "--mode" in args else "ok"
fid = os.environ["SVARINN_FORSENDELSE_ID"]
if "--script" in args and "--status" not in args:
    # <script>/<id>: one behaviour a line, the first used (and removed) by each run
    script = Path(args[args.index("--script") + 1]) / fid
    if script.exists():
        steps = script.read_text().split()
        if steps:
            mode = steps[0]
            script.write_text("\n".join(steps[1:]))
target = store / fid
store.mkdir(parents=True, exist_ok=True)

if "--status" in args:
    if mode == "status-broken":
        print("status service is down", file=sys.stderr)
        sys.exit(3)
    if target.is_dir():
        print(f"sak:{fid}")
        sys.exit(0)
    sys.exit(1)

if mode == "record" or "--record" in args:
    observed = {
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "stdin": sys.stdin.read(),
        "files": sorted(os.listdir(".")),
    }
    (store / f".observed-{fid}.json").write_text(json.dumps(observed))
if mode == "tempfail":
    print("the sakssystem is in maintenance until 06:00", file=sys.stderr)
    sys.exit(75)
if mode == "refuse":
    print("x" * 2000, file=sys.stderr)
    print("Elements refused the letter: case 2026/17 is closed", file=sys.stderr)
    sys.exit(65)
if mode == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    (store / f".child-{fid}").write_text(str(child.pid))
    time.sleep(3600)
if mode == "chatty":
    chunk = ("noise " * 100 + "\n").encode()
    for _ in range(20000):
        sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
if mode == "long-ref":
    print("r" * 800)
    sys.exit(0)

# Idempotent on the forsendelse id, also against a run left over from a killed daemon.
lock = open(store / f".lock-{fid}", "w")
fcntl.flock(lock, fcntl.LOCK_EX)
if target.is_dir():
    print(f"sak:{fid}")
    sys.exit(0)
partial = store / f".partial-{fid}-{os.getpid()}"
partial.mkdir()
for name in sorted(os.listdir(os.environ["SVARINN_LETTER_DIR"])):
    shutil.copyfile(Path(os.environ["SVARINN_LETTER_DIR"]) / name, partial / name)
    if mode == "kill-self":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "slow":
        time.sleep(0.4)
os.rename(partial, target)
with open(store / ".imports.log", "a") as imports:  # one line per letter really imported
    imports.write(fid + "\n")
print("importing ...")
print(f"sak:{fid}")
print("")
"""


def write_import_program(directory: Path) -> Path:
    """Write ``import-letter`` into ``directory``, executable, run by this Python."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "import-letter"
    path.write_text(f"#!{sys.executable}\n{PROGRAM}", encoding="utf-8")
    path.chmod(0o755)
    return path


def use_archive(h: Harness, table: str) -> None:
    """Replace the harness's filesystem archive with ``table``."""
    text = h.config_path.read_text()
    start = text.index("[archives.default]")
    end = text.index("[[accounts]]")
    h.config_path.write_text(text[:start] + table + "\n" + text[end:])


def command_table(program: Path, store: Path, script: Path, *, timeout: str = "2s") -> str:
    return f"""[archives.default]
adapter = "command"
command = ["{program}", "--store", "{store}", "--script", "{script}", "--record"]
check_command = ["{program}", "--store", "{store}", "--status"]
timeout = "{timeout}"
"""


def http_archive(base: str, *extra: str, timeout: str = "5s") -> str:
    """An [archives.default] table for the http adapter at ``base``, with its status URL."""
    lines = [
        "[archives.default]",
        'adapter = "http"',
        f'url = "{base}"',
        f'status_url = "{base}/{{forsendelse_id}}"',
        f'timeout = "{timeout}"',
        *extra,
    ]
    return "\n".join(lines) + "\n"
