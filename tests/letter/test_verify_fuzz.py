"""Damaged zips only ever raise the daemon's own errors, and leave no files behind."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svarinn_daemon.errors import DaemonError
from svarinn_daemon.letter.verify import ExpectedFile, open_letter
from tests.support.cmshelpers import sha256_file


def _zip_bytes(method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        zf.writestr("a.pdf", b"%PDF-1.4 " + bytes(range(256)) * 20)
        zf.writestr("dir/b.txt", "tekst med æøå " * 50)
    return buffer.getvalue()


ZIPS = {
    m: _zip_bytes(m)
    for m in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(sorted(ZIPS)),
    flips=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=6
    ),
    cut=st.none() | st.integers(min_value=4),
)
def test_damaged_zips_raise_only_our_errors(
    tmp_path: Path, method: int, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(ZIPS[method])
    for pos, xor in flips:
        data[4 + pos % (len(data) - 4)] ^= xor  # keep the magic so it is treated as a zip
    if cut is not None:
        data = data[: max(4, cut % len(data))]
    path = tmp_path / "letter.zip"
    path.write_bytes(bytes(data))
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    digest, size = sha256_file(path)
    expected = [ExpectedFile("a.pdf"), ExpectedFile("b.txt")]
    try:
        with open_letter(
            path, sha256=digest, size=size, expected=expected, work_dir=work
        ) as letter:
            for _ in letter.documents():
                pass
    except DaemonError:
        pass
    assert list(work.iterdir()) == []
