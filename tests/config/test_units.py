from datetime import timedelta

import pytest

from svarinn_daemon.config import format_duration, format_size, parse_duration, parse_size
from svarinn_daemon.config.units import parse_host_port


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        (" 10s ", 10),
        ("0s", 0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "10 minutes", "5x", "1h-5m", "-5s", "1h 30", "m5"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["1m30s", "5m", "2h", "1h30m", "250ms", "1d2h3m4s", "45s"])
def test_format_duration_round_trips(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(
    ("text", "size"),
    [("1024", 1024), ("500MB", 500_000_000), ("4GiB", 4 * 2**30), ("1.5 KiB", 1536), ("7b", 7)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GiB", "4 gigabytes", "-1MB", "1e9"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_format_size() -> None:
    assert format_size(20 * 2**30) == "20GiB"
    assert format_size(1000) == "1000B"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:80", ("::1", 80)), ("h:1", ("h", 1))],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["9464", "host:", ":9464", "h:99999", "h:x"])
def test_parse_host_port_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="must be HOST:PORT"):
        parse_host_port(text)
