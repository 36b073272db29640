"""The central directory is counted before zipfile parses it (issue #24, item 3): a zip of a
million records is refused in constant memory, whatever its end record declares."""

from __future__ import annotations

import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from svarinn_daemon.errors import UnsafeArchiveError, VerificationError
from svarinn_daemon.letter.zipdir import check_central_directory
from svarinn_daemon.policies import ZipLimits


def write_records(path: Path, count: int, *, declared: int | None = None) -> None:
    """A zip of ``count`` empty stored entries written directly (zipfile's writer would keep
    a million ZipInfos itself), with zip64 end records; ``declared`` lies in them."""
    with open(path, "wb") as f:
        offsets = []
        for n in range(count):
            name = b"e%07d" % n
            offsets.append(f.tell())
            f.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0))
            f.write(name)
        cd_start = f.tell()
        for n, offset in enumerate(offsets):
            name = b"e%07d" % n
            f.write(
                struct.pack(
                    "<4s4s4H3L5H2L",
                    b"PK\x01\x02",
                    b"\x14\x00\x14\x00",
                    0, 0, 0, 0, 0, 0, 0,
                    len(name), 0, 0, 0, 0, 0,
                    min(offset, 0xFFFFFFFF),
                )
            )  # fmt: skip
            f.write(name)
        cd_size = f.tell() - cd_start
        entries = count if declared is None else declared
        eocd64 = f.tell()
        f.write(struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                            cd_size, cd_start))  # fmt: skip
        f.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd64, 1))
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                            0xFFFFFFFF, 0))  # fmt: skip


def test_a_zip_within_the_limits_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "ok.zip"
    with zipfile.ZipFile(path, "w") as z:
        for n in range(5):
            z.writestr(f"dok-{n}.txt", b"x" * n, compress_type=zipfile.ZIP_DEFLATED)
    assert check_central_directory(path, ZipLimits(max_entries=5)) == 5
    with pytest.raises(UnsafeArchiveError, match="declares 5 entries"):
        check_central_directory(path, ZipLimits(max_entries=4))


def test_a_lying_end_record_is_caught_by_the_count(tmp_path: Path) -> None:
    path = tmp_path / "liar.zip"
    write_records(path, 50, declared=3)
    assert zipfile.ZipFile(path).testzip() is None  # a valid zip otherwise
    with pytest.raises(UnsafeArchiveError, match="holds more than 10 entries"):
        check_central_directory(path, ZipLimits(max_entries=10))


def _hide_behind_an_empty_plain_record(path: Path) -> None:
    """The plain end record rewritten to claim no entries and no directory; the zip64
    locator and record before it stay, and zipfile goes by those."""
    data = bytearray(path.read_bytes())
    data[-22:] = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0, 0, 0, 0, 0)
    path.write_bytes(bytes(data))


def test_an_empty_plain_end_record_does_not_hide_the_zip64_one(tmp_path: Path) -> None:
    """The check read the plain record (0 entries, nothing to walk) while zipfile read the
    zip64 one: a million records then passed the check and took 610 MiB in zipfile."""
    path = tmp_path / "hidden.zip"
    write_records(path, 50)
    _hide_behind_an_empty_plain_record(path)
    assert len(zipfile.ZipFile(path).infolist()) == 50  # what zipfile would build
    with pytest.raises(UnsafeArchiveError, match="declares 50 entries"):
        check_central_directory(path, ZipLimits(max_entries=10))
    assert check_central_directory(path, ZipLimits(max_entries=50)) == 50


def test_a_zip64_locator_pointing_elsewhere_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.zip"
    write_records(path, 5)
    data = bytearray(path.read_bytes())
    locator = len(data) - 22 - 20
    data[locator + 8 : locator + 16] = struct.pack("<Q", 0)  # the zip64 record "at 0"
    path.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="zip64 locator"):
        check_central_directory(path, ZipLimits())


def test_a_directory_too_large_for_its_count_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    write_records(path, 100, declared=1)  # 5.4 KB of directory: more than one record's worth
    with pytest.raises(UnsafeArchiveError, match="more than 1 entries can take"):
        check_central_directory(path, ZipLimits(max_entries=1))


@pytest.mark.parametrize("tail", [b"", b"PK\x05\x06" + b"\0" * 5, b"not a zip at all"])
def test_broken_end_records_are_corrupt_not_a_crash(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(tail)
    with pytest.raises(VerificationError, match="corrupt"):
        check_central_directory(path, ZipLimits())


@pytest.mark.parametrize("hidden", [False, True], ids=["plain", "behind-an-empty-end-record"])
def test_a_million_records_are_refused_in_constant_memory(tmp_path: Path, hidden: bool) -> None:
    path = tmp_path / "million.zip"
    write_records(path, 1_000_000)
    if hidden:
        _hide_behind_an_empty_plain_record(path)
    probe = (
        "import re, sys\n"
        "from pathlib import Path\n"
        "from svarinn_daemon.errors import UnsafeArchiveError\n"
        "from svarinn_daemon.letter.ziputil import ZipReader\n"
        "from svarinn_daemon.policies import ZipLimits\n"
        "try:\n"
        "    ZipReader(Path(sys.argv[1]), ZipLimits())\n"
        "except UnsafeArchiveError as exc:\n"
        "    print('refused:', exc)\n"
        # VmHWM: this process's own peak (ru_maxrss would carry the forking parent's).
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
    )
    refused, peak = done.stdout.strip().splitlines()
    print(f"\n1,000,000-record zip ({path.stat().st_size / 1e6:.0f} MB): peak RSS {peak} MiB")
    assert refused.startswith("refused: the zip declares 1000000 entries")
    assert int(peak) < 100  # zipfile's list of them took 500 MB and more
