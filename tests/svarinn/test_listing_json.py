"""The listing decoder and the item parser against values no real SvarInn sends."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from svarinn_daemon.errors import ProtocolError
from svarinn_daemon.svarinn.listing_json import (
    MAX_ITEM_CHARS,
    NotAList,
    TooManyItems,
    iter_items,
)
from svarinn_daemon.svarinn.parsing import parse_date
from svarinn_daemon.svarinn.records import Forsendelse, RejectedItem
from svarinn_daemon.svarinn.v1 import parse_forsendelse, parse_item, parse_listing

URL = "https://svarut.ks.no/tjenester/svarinn/forsendelse/a"


def test_items_are_decoded_one_by_one_and_bad_values_named() -> None:
    text = '[ {"id":"a","date":NaN} , {"id":"b","x":{"y":[1, 1e999]}}, 7, {"id":"c"} ]'
    items = list(iter_items(text, max_items=10))
    assert [i.index for i in items] == [0, 1, 2, 3]
    assert items[0].problem == "date: NaN (not JSON)"
    assert items[1].problem == "x.y[1]: 1e999 (out of range)"
    assert items[2].problem is None
    assert items[2].value == 7
    assert items[3].value == {"id": "c"}
    assert items[3].problem is None


def test_an_item_too_deep_for_the_stack_is_skipped_with_its_id() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    text = f'[{{"id":"deep","x":{deep},"s":"]]"}}, {{"id":"next"}}]'
    first, second = iter_items(text, max_items=10)
    assert first.problem == "nested too deeply to read"
    assert first.value == {"id": "deep"}
    assert second.value == {"id": "next"}


def test_an_oversized_item_is_measured_not_decoded() -> None:
    wide = ",".join(f'"k{n}":0' for n in range(150_000))  # about 1.3 MB
    text = f'[{{"id":"wide",{wide}}}, {{"id":"next"}}]'
    first, second = iter_items(text, max_items=10)
    assert first.problem is not None
    assert "characters long, more than 1048576" in first.problem
    assert first.value == {"id": "wide"}
    assert second.value == {"id": "next"}


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_the_size_limit_holds_for_the_last_item_too(extra: int) -> None:
    """Only text too short to hold an oversized item goes unmeasured: the last item, whose
    text ends the page, is measured or not by its own length, never let through longer."""
    padding = MAX_ITEM_CHARS + extra - len('{"id":"last","p":""}')
    text = f'[{{"id":"first"}},{{"id":"last","p":"{"x" * padding}"}}]'
    first, last = iter_items(text, max_items=10)
    assert first.value == {"id": "first"}
    if extra > 0:
        assert last.problem is not None
        assert last.problem.startswith(f"{MAX_ITEM_CHARS + extra} characters long")
        assert last.value == {"id": "last"}
    else:
        assert last.problem is None
        assert len(last.value["p"]) == padding


def test_limits_and_shapes() -> None:
    with pytest.raises(TooManyItems):
        list(iter_items("[" + ",".join(["0"] * 11) + "]", max_items=10))
    assert len(list(iter_items("[" + ",".join(["0"] * 10) + "]", max_items=10))) == 10
    with pytest.raises(NotAList, match="an object"):
        list(iter_items('{"a": 1}', max_items=10))
    for broken in ("", "[1,", "[1 2]", "[1]x", "<html>"):
        with pytest.raises(json.JSONDecodeError):
            list(iter_items(broken, max_items=10))
    assert list(iter_items(" [ ] ", max_items=10)) == []


@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), math.nan, math.inf, -math.inf, 1e300, "9" * 5000, "1" * 16],
)
def test_parse_date_never_raises(value: object) -> None:
    assert parse_date(value) is None or isinstance(parse_date(value), datetime)


def test_parse_date_still_reads_real_dates() -> None:
    assert parse_date(1_700_000_000_000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    "fields",
    [
        {"date": 10**400},
        {"date": math.nan},
        {"tittel": 10**1000},
        {"metadataFraAvleverendeSystem": {"journaldato": math.inf, "saksaar": 10**400}},
        {"metadataForImport": {"dokumentetsDato": -(10**400)}},
        {"avsender": {"navn": 10**400, "orgnr": 10**50}},
    ],
)
def test_odd_values_in_lenient_fields_are_tolerated(fields: dict[str, object]) -> None:
    letter = parse_item({"id": "a", "downloadUrl": URL, **fields}, index=0)
    assert isinstance(letter, Forsendelse)
    assert letter.date is None or letter.date.year < 3000


def _nested(levels: int, leaf: object) -> object:
    """``leaf`` as the only value on level ``levels`` (the item itself is level 1)."""
    value = leaf
    for level in range(levels - 1):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("leaf", [1, "x", None, [], {}])
@pytest.mark.parametrize(("levels", "refused"), [(31, False), (32, False), (33, True)])
def test_the_depth_limit_counts_every_value(leaf: object, levels: int, refused: bool) -> None:
    """Level 32 is the last a value may sit on, whatever it is: a scalar, or a container
    that is empty (a container with a value in it puts that value on the next level)."""
    item = {"id": "a", "downloadUrl": URL, "x": _nested(levels - 1, leaf)}
    if refused:
        with pytest.raises(ProtocolError, match="nested more than 32 levels"):
            parse_forsendelse(item)
    else:
        assert parse_forsendelse(item).id == "a"


def test_nesting_and_sizes_reject_the_item_only() -> None:
    nested: object = []
    for _ in range(5000):
        nested = [nested]
    items = [
        {"id": "deep", "downloadUrl": URL, "x": nested},
        {"id": "size", "downloadUrl": URL, "filmetadata": [{"size": 2**64}]},
        {"id": "ok", "downloadUrl": URL},
    ]
    listing = parse_listing(items)
    assert [f.id for f in listing.letters] == ["ok"]
    deep, size = listing.rejected
    assert isinstance(deep, RejectedItem)
    assert "nested more than 32 levels" in str(deep.error)
    assert "filmetadata[0].size" in str(size.error)
    with pytest.raises(ProtocolError, match="nested"):
        parse_forsendelse(items[0])


def test_a_long_rejected_id_is_truncated() -> None:
    rejected = parse_item({"id": "x" * 10_000}, index=3)
    assert isinstance(rejected, RejectedItem)
    assert rejected.forsendelse_id is not None
    assert len(rejected.forsendelse_id) < 150
    assert len(str(rejected.error)) < 500
