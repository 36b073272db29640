"""The letter tests' shared fixtures: the pipeline's world around the real ledger, and an
empty work directory for opening letters."""

from __future__ import annotations

from pathlib import Path

import pytest

from svarinn_daemon.ledger import Ledger
from svarinn_daemon.testing import FakeClock
from tests.support.pipeline_world import World, make_world


@pytest.fixture
def world(ledger: Ledger, clock: FakeClock, tmp_path: Path) -> World:
    return make_world(ledger, clock, tmp_path)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path
