"""The [retry] and [verify] tables: defaults, values, validation, rendering."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from svarinn_daemon.config import load_config, render_config
from svarinn_daemon.errors import ConfigError
from svarinn_daemon.policies import RetryPolicy, VerifyPolicy

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, conformance_dir: Path, extra: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'state_directory = "{tmp_path}"\n'
        f"{extra}\n"
        "[[accounts]]\n"
        'name = "k"\nusername = "u"\npassword = "p"\n'
        "[[accounts.keys]]\n"
        f'private_key_file = "{conformance_dir / "privatekey.pem"}"\n',
        encoding="utf-8",
    )
    return path


def test_defaults(tmp_path: Path, conformance_dir: Path) -> None:
    config = load_config(write(tmp_path, conformance_dir, ""), environ={})
    assert config.retry == RetryPolicy()
    assert config.verify == VerifyPolicy()


def test_values(tmp_path: Path, conformance_dir: Path) -> None:
    extra = (
        '[retry]\nbase_delay = "5s"\nmax_delay = "10m"\njitter = 0\n'
        'max_download_attempts = 5\ntemporary_report_interval = "1h"\n'
        'temporary_report_after = "20m"\n'
        "treat_key_errors_as_permanent = true\n"
        'archive_pause_after = 3\narchive_probe_delay = "10s"\narchive_probe_max_delay = "5m"\n'
        '[verify]\nmax_zip_entries = 10\nmax_unpacked_size = "1GiB"\n'
        'max_compression_ratio = 50\nmissing_documents = "import"\n'
    )
    config = load_config(write(tmp_path, conformance_dir, extra), environ={})
    assert config.retry == RetryPolicy(
        base_delay=timedelta(seconds=5),
        max_delay=timedelta(minutes=10),
        jitter=0.0,
        max_download_attempts=5,
        temporary_report_after=timedelta(minutes=20),
        temporary_report_interval=timedelta(hours=1),
        treat_key_errors_as_permanent=True,
        archive_pause_after=3,
        archive_probe_delay=timedelta(seconds=10),
        archive_probe_max_delay=timedelta(minutes=5),
    )
    limits = config.verify.limits
    assert (limits.max_entries, limits.max_total_size, limits.max_ratio) == (10, 2**30, 50.0)
    assert config.verify.allow_missing_documents
    rendered = tomllib.loads(render_config(config))
    assert rendered["retry"] == {
        "base_delay": "5s",
        "max_delay": "10m",
        "jitter": 0.0,
        "max_download_attempts": 5,
        "temporary_report_after": "20m",
        "temporary_report_interval": "1h",
        "treat_key_errors_as_permanent": True,
        "archive_pause_after": 3,
        "archive_probe_delay": "10s",
        "archive_probe_max_delay": "5m",
    }
    assert rendered["verify"] == {
        "max_zip_entries": 10,
        "max_unpacked_size": "1GiB",
        "max_compression_ratio": 50,
        "missing_documents": "import",
    }


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ("[retry]\njitter = 1.5", "retry.jitter", "from 0 to 1"),
        ("[retry]\njitter = true", "retry.jitter", "from 0 to 1"),
        ('[retry]\nbase_delay = "2h"', "retry.max_delay", "not be shorter than base_delay"),
        ("[retry]\nmax_download_attempts = 0", "retry.max_download_attempts", "at least 1"),
        ("[retry]\narchive_pause_after = 0", "retry.archive_pause_after", "at least 1"),
        (
            '[retry]\narchive_probe_delay = "1h"',
            "retry.archive_probe_max_delay",
            "not be shorter than archive_probe_delay",
        ),
        ('[retry]\nbase_delay = "soon"', "retry.base_delay", "not a duration"),
        ("[retry]\nbase_dealy = 1", "retry.base_dealy", "did you mean 'base_delay'"),
        ('[verify]\nmissing_documents = "skip"', "verify.missing_documents", "fail, import"),
        ("[verify]\nmax_compression_ratio = 0", "verify.max_compression_ratio", "at least 1"),
        ('[verify]\nmax_unpacked_size = "lots"', "verify.max_unpacked_size", "not a size"),
    ],
)
def test_invalid(tmp_path: Path, conformance_dir: Path, extra: str, key: str, message: str) -> None:
    path = write(tmp_path, conformance_dir, extra)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path, environ={})
    assert info.value.key == key
    assert info.value.source == str(path)


def test_example_file_documents_the_defaults() -> None:
    example = tomllib.loads((REPO / "config.example.toml").read_text("utf-8"))
    d = RetryPolicy()
    assert example["retry"] == {
        "base_delay": "30s",
        "max_delay": "1h",
        "jitter": d.jitter,
        "max_download_attempts": d.max_download_attempts,
        "temporary_report_after": "1h",
        "temporary_report_interval": "6h",
        "treat_key_errors_as_permanent": d.treat_key_errors_as_permanent,
        "archive_pause_after": d.archive_pause_after,
        "archive_probe_delay": "30s",
        "archive_probe_max_delay": "10m",
    }
    limits = VerifyPolicy().limits
    assert example["verify"] == {
        "max_zip_entries": limits.max_entries,
        "max_unpacked_size": "20GiB",
        "max_compression_ratio": int(limits.max_ratio),
        "missing_documents": "fail",
    }
