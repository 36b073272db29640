"""The log redactor: secrets never reach the output, however they are passed."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
import structlog

from svarinn_daemon.logs import Redactor, configure_logging, get_logger

SECRET = "hunter2-Pa55word"


@pytest.fixture
def json_log() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=stream, secrets=[SECRET])
    yield stream
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_stable_event_names(json_log: io.StringIO) -> None:
    get_logger("svarinn_daemon.test").info("poll.finished", account="kommune", letters=3)
    (line,) = _lines(json_log)
    assert line["event"] == "poll.finished"
    assert line["account"] == "kommune"
    assert line["letters"] == 3
    assert line["level"] == "info"
    assert "timestamp" in line


def test_level_filters(json_log: io.StringIO) -> None:
    stream = io.StringIO()
    configure_logging(level="warning", fmt="json", stream=stream)
    log = get_logger("x")
    log.info("quiet")
    log.warning("loud")
    assert [line["event"] for line in _lines(stream)] == ["loud"]


@pytest.mark.parametrize(
    "fields",
    [
        {"password": "anything-at-all"},
        {"IntegrasjonPassord": "anything-at-all"},
        {"nested": {"x" * 70 + "_password": "anything-at-all"}},  # past the remembered keys
        {"nested": {"api_token": "anything-at-all"}},
        {"headers": {"Authorization": "Basic dXNlcjpodW50ZXIy"}},
        {"message": f"login failed with {SECRET}"},
        {"items": ["x", f"y{SECRET}z"]},
        {"url": "postgresql://svarinn:anything-at-all@db/ledger"},
        {"text": "sent Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.abc.def"},
        {
            "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEanything-at-all\n"
            "-----END RSA PRIVATE KEY-----"
        },
        {"raw": SECRET.encode()},
    ],
)
def test_secrets_are_redacted(json_log: io.StringIO, fields: dict[str, object]) -> None:
    get_logger("x").info("something.happened", **fields)
    output = json_log.getvalue()
    assert SECRET not in output
    assert "anything-at-all" not in output
    assert "dXNlcjpodW50ZXIy" not in output
    assert "eyJhbGciOiJSUzI1NiJ9" not in output
    assert "***" in output


def test_exception_text_is_redacted(json_log: io.StringIO) -> None:
    try:
        raise RuntimeError(f"connect failed for user:{SECRET}@host")
    except RuntimeError:
        get_logger("x").exception("ledger.failed")
    output = json_log.getvalue()
    assert SECRET not in output
    assert "ledger.failed" in output
    assert "RuntimeError" in output


def test_exception_object_as_value_is_redacted(json_log: io.StringIO) -> None:
    get_logger("x").error("x.failed", error=ValueError(f"bad {SECRET}"))
    assert SECRET not in json_log.getvalue()


def test_redactor_keeps_harmless_values() -> None:
    out = Redactor(["abcd1234"])(None, "info", {"event": "e", "count": 3, "ok": True, "n": None})
    assert out == {"event": "e", "count": 3, "ok": True, "n": None}


def test_longest_secret_masked_whole() -> None:
    redactor = Redactor(["abcd", "abcdefgh"])
    assert redactor.scrub("x abcdefgh y") == "x *** y"


def test_loggers_made_before_configuration_follow_it() -> None:
    early = get_logger("made.at.import")
    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    early.debug("too.detailed")
    early.info("shown")
    assert [line["event"] for line in _lines(stream)] == ["shown"]
    assert _lines(stream)[0]["logger"] == "made.at.import"


def test_settings_made_before_structlog_is_imported_survive_capture_logs() -> None:
    """structlog is imported by the first line logged; if that line is inside
    structlog.testing.capture_logs(), it is captured, and the settings (redaction included)
    apply from the first line after it. A fresh interpreter: here structlog is imported."""
    code = """
import io, json, sys
from svarinn_daemon.logs import configure_logging, get_logger
out = io.StringIO()
configure_logging(fmt="json", stream=out, secrets=["hunter2"])
assert "structlog" not in sys.modules
from structlog.testing import capture_logs
with capture_logs() as captured:
    get_logger("t").info("inside", note="a")
get_logger("t").info("after", note="hunter2")
print(json.dumps([[c["event"] for c in captured], out.getvalue()]))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    captured, written = json.loads(done.stdout)
    assert captured == ["inside"]
    (line,) = [json.loads(text) for text in written.splitlines()]
    assert (line["event"], line["note"]) == ("after", "***")


def test_library_warnings_are_lines_of_ours_redacted_and_whole(json_log: io.StringIO) -> None:
    """APScheduler's "skipped: maximum number of running instances" and the like come out
    as JSON lines of the same stream, secrets masked; each line is written whole."""
    import logging

    logging.getLogger("apscheduler.executors.default").warning(
        "Run time of job %r was missed; token %s", "poll", SECRET
    )
    logging.getLogger("httpx").info("HTTP Request: GET https://svarut.ks.no/ 200")  # below
    (line,) = [json.loads(text) for text in json_log.getvalue().splitlines()]
    assert line["event"] == "Run time of job 'poll' was missed; token ***"
    assert (line["level"], line["logger"]) == ("warning", "apscheduler.executors.default")
    assert SECRET not in json_log.getvalue()


def test_a_huge_value_is_clipped_not_logged_whole() -> None:
    """Issue #24, item 16: a 900 KB file name made a 900 KB log line."""
    from svarinn_daemon.logs import MAX_FIELD, Redactor

    cleaned = Redactor(["hunter2"])(None, "info", {"name": "x" * 900_000, "p": "hunter2"})
    assert len(cleaned["name"]) < MAX_FIELD + 100
    assert cleaned["name"].endswith("(896000 more characters)")
    assert "hunter2" not in cleaned["p"]
