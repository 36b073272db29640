"""The progress line of ``demo`` and ``decrypt``: drawn on a terminal (a real pseudo-terminal
here), absent anywhere else, and the demo's logs go to a file while a person watches."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading
from pathlib import Path

import pytest

from svarinn_daemon.cli.progress import ERASE, Progress
from svarinn_daemon.cms import encrypt_bytes
from svarinn_daemon.simulator.identity import generate_identity, write_operator_files
from tests.support.deploy_tools import installed_script as script

pytestmark = pytest.mark.timeout(180)


def run_on_terminal(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run with standard error on a new pseudo-terminal; (exit code, stdout, terminal text)."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
            timeout=150, check=False,
        )  # fmt: skip
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    return done.returncode, done.stdout.decode(), b"".join(chunks).decode()


def run_piped(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=150,
        check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def letter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """A key and a 3 MB SvarUt-encrypted file for it."""
    root = tmp_path_factory.mktemp("progress")
    identity = generate_identity("progress-test")
    files = write_operator_files(
        root, base_url="http://127.0.0.1:9/", username="u", password="p", identity=identity
    )
    plaintext = os.urandom(3_000_000)
    encrypted = root / "letter.cms"
    encrypted.write_bytes(encrypt_bytes(plaintext, identity.certificate))
    assert files.private_key is not None
    return files.private_key, encrypted, plaintext


def test_decrypt_draws_progress_on_a_terminal(
    letter: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    key, encrypted, plaintext = letter
    out = tmp_path / "plain.bin"
    argv = [str(script()), "decrypt", "--key", str(key), str(encrypted), "-o", str(out)]
    code, _, terminal = run_on_terminal(argv, tmp_path)
    assert code == 0, terminal
    assert out.read_bytes() == plaintext
    size = encrypted.stat().st_size
    drawn = [part for part in terminal.split(ERASE) if part]
    assert f"of {size / 1e6:.1f} MB (100%)" in drawn[-2], drawn
    assert "/s" in drawn[-2]
    # The line is erased before the summary, which is what stays on the screen.
    assert drawn[-1].startswith(f"decrypted {len(plaintext)} bytes, sha256 "), drawn[-1]


def test_decrypt_writes_nothing_extra_when_not_on_a_terminal(
    letter: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    key, encrypted, plaintext = letter
    out = tmp_path / "plain.bin"
    done = run_piped(
        [str(script()), "decrypt", "--key", str(key), str(encrypted), "-o", str(out)], tmp_path
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"decrypted {len(plaintext)} bytes")
    assert "\r" not in done.stderr
    assert "\x1b" not in done.stderr


def test_demo_shows_progress_and_logs_to_a_file_on_a_terminal(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    argv = [str(script()), "demo", "--letters", "8", "--size", "20KiB", "--dir", str(demo)]
    code, stdout, terminal = run_on_terminal(argv, tmp_path)
    assert code == 0, stdout + terminal
    drawn = [part.strip() for part in terminal.split(ERASE) if part.strip()]
    assert drawn, terminal
    assert drawn[-1].startswith("8/8 letters, "), drawn
    assert "{" not in terminal  # no JSON log line reached the person at the terminal
    assert f"log:       {demo / 'demo.log'}" in stdout
    assert "imported:  8 of 8 letters" in stdout
    lines = (demo / "demo.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]  # JSON, as off a terminal
    assert "poll_once.finished" in events or len(events) > 5, events


def test_demo_without_a_terminal_keeps_its_json_logs_on_stderr(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    done = run_piped(
        [str(script()), "demo", "--letters", "4", "--size", "10KiB", "--dir", str(demo)], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    assert all(json.loads(line) for line in done.stderr.splitlines())
    assert done.stderr.strip()
    assert not (demo / "demo.log").exists()
    assert "log:" not in done.stdout


def test_the_line_says_rate_and_time_left() -> None:
    now = [100.0]

    class Screen:
        text = ""

        def write(self, text: str) -> int:
            self.text += text
            return len(text)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return True

    screen = Screen()
    progress = Progress(
        screen,  # type: ignore[arg-type]
        enabled=True,
        total_bytes=10_000_000,
        total_letters=10,
        clock=lambda: now[0],
    )
    now[0] = 102.0
    progress.update(4_000_000, 4)
    assert screen.text == ERASE + (
        "4/10 letters, 4.0 MB of 10.0 MB (40%), 2.0 MB/s, about 3 s left"
    )
    progress.update(5_000_000, 5)  # within 0.1 s of the last: not redrawn
    assert "5/10" not in screen.text
    progress.close()
    assert screen.text.endswith(ERASE)
    with open(os.devnull, "w") as devnull:
        assert Progress.for_stream(devnull).enabled is False
