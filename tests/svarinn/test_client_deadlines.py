"""Whole-response budgets against a simulator that stalls or trickles (over loopback).

Each test would end only after the fault's long pause if the budget were not enforced, and
then without the error: the assertions are on what happens, not on how fast the machine is.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta

import pytest

from svarinn_daemon.config.model import AccountConfig
from svarinn_daemon.errors import ProtocolError, ServiceUnavailableError
from svarinn_daemon.service.runtime import connect
from svarinn_daemon.simulator import Fault, Simulator
from svarinn_daemon.svarinn import Download
from tests.support.simhelpers import list_new

Account = Callable[..., AccountConfig]
PAUSE = 30.0  # far longer than any budget below


def _read_all(download: Download) -> None:
    for _chunk in download.iter_chunks():
        pass


def test_a_stalled_download_is_stopped_by_its_budget(
    simulator: Simulator, account: Account
) -> None:
    simulator.generate(1, size=100_000)
    simulator.add_fault(Fault("stall", delay=PAUSE))
    fast_enough = account(
        download_deadline_base=timedelta(milliseconds=300),
        download_min_rate=2**30,  # budget: 0.3 s plus almost nothing for the size
        read_timeout=timedelta(seconds=PAUSE * 2),  # the read timeout would not stop it
    )
    with connect(fast_enough) as client:
        (listed,) = list_new(client)
        with (
            pytest.raises(ServiceUnavailableError, match="too slow") as info,
            client.download(listed) as download,
        ):
            _read_all(download)
        assert 0 < download.bytes_received < 100_000  # half came, then the pause was cut short
        assert info.value.temporary


def test_a_trickling_download_falls_below_the_minimum_rate(
    simulator: Simulator, account: Account
) -> None:
    simulator.generate(1, size=100_000)
    simulator.add_fault(Fault("trickle", delay=0.01))
    with connect(
        account(download_deadline_base=timedelta(milliseconds=200), download_min_rate=1024)
    ) as client:
        (listed,) = list_new(client)
        with (
            pytest.raises(ServiceUnavailableError, match="download_min_rate"),
            client.download(listed) as download,
        ):
            _read_all(download)
        assert download.bytes_received < 1000  # a byte at a time, stopped long before the end


def test_a_listing_that_does_not_answer_is_stopped_by_its_deadline(
    simulator: Simulator, account: Account
) -> None:
    simulator.generate(1, size=1000)
    simulator.add_fault(Fault("slow", delay=PAUSE, endpoints=frozenset({"list"})))
    with (
        connect(
            account(
                listing_deadline=timedelta(milliseconds=300),
                read_timeout=timedelta(seconds=PAUSE * 2),
            )
        ) as client,
        pytest.raises(ServiceUnavailableError, match="timed out"),
    ):
        client.listing()


def test_an_echoed_credential_is_scrubbed_from_the_error(
    simulator: Simulator, account: Account
) -> None:
    simulator.add_fault(Fault("echo_auth", endpoints=frozenset({"list"})))
    token = base64.b64encode(f"{simulator.username}:{simulator.password}".encode()).decode()
    with connect(account()) as client, pytest.raises(ServiceUnavailableError) as info:
        client.listing()
    assert token not in str(info.value)
    assert token not in info.value.body_start
    assert "credentials ***" in info.value.body_start


def test_a_redirect_without_a_host_is_a_protocol_error(
    simulator: Simulator, account: Account
) -> None:
    simulator.generate(1, size=1000)
    simulator.add_fault(Fault("redirect", location=f"http:127.0.0.1:{simulator.port}"))
    with connect(account()) as client:
        (listed,) = list_new(client)
        with pytest.raises(ProtocolError, match="redirect Location"), client.download(listed):
            pass
