"""The per-letter capability checks of adapters/base.py answer what ``isinstance`` against
the runtime_checkable protocols answers, for every mix of members."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from svarinn_daemon.adapters.base import (
    AnswersLater,
    OriginBegin,
    OriginLookup,
    _begins_from_origin,
    _looks_up_origin,
    answers_later,
)

MEMBERS: dict[str, Any] = {
    "has_from": lambda self, origin, forsendelse_id: None,
    "begin_from": lambda self, origin, forsendelse_id, metadata: None,
    "listen": lambda self, on_reply, stopping, on_state: None,
    "reply_timeout": timedelta(minutes=5),
}
CHECKS = [
    (_looks_up_origin, OriginLookup),
    (_begins_from_origin, OriginBegin),
    (answers_later, AnswersLater),
]


def _kinds() -> list[type]:
    kinds = []
    for count in range(len(MEMBERS) + 1):
        for names in itertools.combinations(MEMBERS, count):
            kinds.append(type("_".join(names) or "bare", (), {n: MEMBERS[n] for n in names}))
    return kinds


@pytest.mark.parametrize("kind", _kinds(), ids=lambda k: k.__name__)
def test_each_check_is_isinstance(kind: type) -> None:
    adapter = kind()
    for check, protocol in CHECKS:
        assert check(adapter) == isinstance(adapter, protocol), (check.__name__, kind.__name__)


def test_a_member_set_on_the_instance_counts_and_none_does_not() -> None:
    class Plain:
        pass

    adapter = Plain()
    adapter.reply_timeout = timedelta(seconds=1)  # type: ignore[attr-defined]
    adapter.listen = MEMBERS["listen"].__get__(adapter)  # type: ignore[attr-defined]
    adapter.has_from = None  # type: ignore[attr-defined]
    for check, protocol in CHECKS:
        assert check(adapter) == isinstance(adapter, protocol), check.__name__
    assert answers_later(adapter)
    assert not _looks_up_origin(adapter)
