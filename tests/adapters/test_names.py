"""Document names from senders become safe, unique file names."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from svarinn_daemon.adapters.names import MAX_NAME_BYTES, NameAllocator, sanitise_file_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("brev.pdf", "brev.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/vedtak.pdf", "vedtak.pdf"),
        ("C:\\Users\\x\\søknad.docx", "søknad.docx"),
        ("vedlegg/", "vedlegg"),
        ("\x00\x1fbad\x7f.pdf", "bad.pdf"),
        (".hidden.pdf", "hidden.pdf"),
        ("...", "dokument"),
        ("", "dokument"),
        ("  spaced .pdf  ", "spaced .pdf"),
        ("trailing.", "trailing"),
        ('a:b?c*"d<e>f|g.pdf', "a_b_c__d_e_f_g.pdf"),
        ("CON.txt", "_CON.txt"),
        ("nul", "_nul"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # right-to-left override is removed
        ("A\u030a.pdf", "\u00c5.pdf"),  # NFC
    ],
)
def test_sanitise(name: str, expected: str) -> None:
    assert sanitise_file_name(name) == expected


def test_long_names_keep_their_extension() -> None:
    name = sanitise_file_name("ø" * 300 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES


def test_allocator_deduplicates_ignoring_case_and_reserved_names() -> None:
    names = NameAllocator(reserved=("forsendelse.json",))
    got = [
        names.allocate(n)
        for n in ("a.pdf", "A.pdf", "dir/a.pdf", "forsendelse.json", "a (2).pdf", "b")
    ]
    assert got == ["a.pdf", "A (2).pdf", "a (3).pdf", "forsendelse (2).json", "a (2) (2).pdf", "b"]


@given(st.lists(st.text(max_size=300), min_size=1, max_size=8))
def test_any_names_become_safe_and_unique(raw: list[str]) -> None:
    names = NameAllocator(reserved=("forsendelse.json",))
    out = [names.allocate(n) for n in raw]
    assert len({n.casefold() for n in out}) == len(out)
    for name in out:
        assert name
        assert "/" not in name
        assert "\\" not in name
        assert not name.startswith(".")
        assert name not in (".", "..")
        assert name.casefold() != "forsendelse.json"
        assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
        assert not any(unicodedata.category(c).startswith("C") for c in name)
        assert "\u2028" not in name
        assert "\u2029" not in name
