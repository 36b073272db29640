"""check-config's rendering comes from the configuration's dataclasses: a new key shows
without touching render.py, and every key it writes is a key config.example.toml documents."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from pathlib import Path

from svarinn_daemon.config import AlertsConfig, load_config, render_config
from svarinn_daemon.config.render import rendered, toml_key
from tests.support.cfg_helpers import make_config_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
PLAIN_TABLES = ("logging", "ledger", "daemon", "metrics", "retry", "verify", "alerts")


def _documented_keys() -> dict[str, set[str]]:
    """Per table, every key config.example.toml shows, set or commented out."""
    keys: dict[str, set[str]] = {"": set()}
    table = ""
    for line in EXAMPLE.read_text("utf-8").splitlines():
        if header := re.fullmatch(r"#?\s*\[\[?([a-z_.]+)\]\]?\s*", line):
            table = header.group(1)
            keys.setdefault(table, set())
        elif key := re.match(r"#?\s*([a-z_]+)\s*=", line):
            # A secret is documented by its source (password_file): written, it is password.
            name = key.group(1)
            keys[table] |= {name, re.sub(r"_(file|env|credential)$", "", name)}
    return keys


def test_every_key_written_is_a_documented_key(tmp_path: Path) -> None:
    config = load_config(make_config_dir(tmp_path).path, environ={})
    written = tomllib.loads(render_config(config))
    documented = _documented_keys()
    for table in PLAIN_TABLES:
        assert set(written[table]) <= documented[table], table
    assert set(written["accounts"][0]) - {"keys", "http"} <= documented["accounts"]
    assert set(written["accounts"][0]["http"]) <= documented["accounts.http"]


def test_a_field_added_to_the_configuration_is_written_without_touching_render(
    tmp_path: Path,
) -> None:
    @dataclass(frozen=True)
    class Grown(AlertsConfig):
        letters_stuck_after: timedelta = timedelta(minutes=42)

    config = load_config(make_config_dir(tmp_path).path, environ={})
    grown = replace(config, alerts=Grown())
    written = tomllib.loads(render_config(grown))["alerts"]
    assert written["letters_stuck_after"] == "42m"
    for field in fields(AlertsConfig):
        assert written[toml_key(field)] is not None if rendered(field) else True
