"""A ledger password written into the URL never reaches check-config's output or the log."""

from __future__ import annotations

from pathlib import Path

from svarinn_daemon.config.loader import load_config
from tests.support.daemon_harness import harness

PASSWORD = "hunter2-Ledger-Passord"
URL = f"postgresql+psycopg://svarinn:{PASSWORD}@127.0.0.1:1/svarinn"


def test_check_config_masks_the_password_in_the_ledger_url(tmp_path: Path) -> None:
    with harness(tmp_path, ledger_url=URL) as h:
        result = h.cli("check-config")
        assert result.returncode == 0, result.stderr
        output = result.stdout + result.stderr
        assert PASSWORD not in output
        assert 'url = "postgresql+psycopg://svarinn@127.0.0.1:1/svarinn"' in output
        assert 'password = "*** from inline"' in output
        assert "contains a password" in output  # the warning to move it out of the URL
        config = load_config(h.config_path, environ={})
        assert PASSWORD not in config.ledger.url
        assert config.ledger.password is not None
        assert config.ledger.password.reveal() == PASSWORD
