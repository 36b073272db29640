"""Letters as zips for the verify tests: written entry by entry (duplicates and odd names
on purpose), then opened the way the pipeline opens them."""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

from svarinn_daemon.letter.verify import ExpectedFile, open_letter
from tests.support.cmshelpers import sha256_file


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(path: Path, entries: Sequence[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def documents(path: Path, expected: Sequence[ExpectedFile], work: Path, **kw: object):  # type: ignore[no-untyped-def]
    digest, size = sha256_file(path)
    letter = open_letter(path, sha256=digest, size=size, expected=expected, work_dir=work, **kw)  # type: ignore[arg-type]
    with letter:
        docs = [(d, d.path.read_bytes()) for d in letter.documents()]
    return letter.result, docs
