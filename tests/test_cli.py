"""check-config's output, warnings and exit codes through the real CLI entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

from cfg_helpers import PASSWORD, make_config_dir, run_cli
from keygen import cert_pem, certificate, rsa_key


def test_help_lists_commands_and_exit_codes() -> None:
    code, out, _ = run_cli("--help")
    assert code == 0
    assert "check-config" in out
    assert "exit codes: 0 ok, 1 runtime failure, 2 configuration or usage error" in out


def test_check_config_prints_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    code, out, err = run_cli("--config", str(cfg.path), "check-config")
    assert code == 0, err
    assert PASSWORD not in out + err
    assert 'password = "*** from file:' in out
    assert 'read_timeout = "5m"' in out
    assert "BEGIN" not in out
    assert "is valid (1 account(s))" in err


def test_inline_password_warns_and_is_masked(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    cfg.write(
        cfg.path.read_text().replace('password_file = "password"', f'password = "{PASSWORD}"')
    )
    code, out, err = run_cli("--config", str(cfg.path), "check-config")
    assert code == 0
    assert "written inline" in err
    assert PASSWORD not in out + err


def test_group_readable_key_warns_and_strict_refuses(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    (tmp_path / "key.pem").chmod(0o644)
    code, _, err = run_cli("--config", str(cfg.path), "check-config")
    assert code == 0
    assert "mode 0644" in err
    code, _, err = run_cli("--config", str(cfg.path), "check-config", "--strict-permissions")
    assert code == 2
    assert "--strict-permissions" in err


def test_private_key_mode_600_gives_no_warning(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    code, _, err = run_cli("--config", str(cfg.path), "check-config", "--strict-permissions")
    assert code == 0
    assert "warning" not in err


def test_certificate_expiring_soon_warns(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    cfg = make_config_dir(tmp_path)
    soon = datetime.now(UTC) + timedelta(days=10)
    (tmp_path / "cert.pem").write_bytes(cert_pem(certificate(rsa_key(0), not_after=soon)))
    code, _, err = run_cli("--config", str(cfg.path), "check-config")
    assert code == 0
    assert "expires on" in err
    assert "in 9 days" in err or "in 10 days" in err


def test_expired_conformance_certificate_warns_but_loads(
    tmp_path: Path, conformance_dir: Path
) -> None:
    cfg = make_config_dir(tmp_path)
    shutil.copy(conformance_dir / "privatekey.pem", tmp_path / "key.pem")
    (tmp_path / "key.pem").chmod(0o600)
    shutil.copy(conformance_dir / "certificate.pem", tmp_path / "cert.pem")
    code, out, err = run_cli("--config", str(cfg.path), "check-config")
    assert code == 0, err
    assert "expired on 2023-08-14" in err
    assert "serial=FBCAEA76FC34BC6A" in out


def test_usage_error_exits_2(tmp_path: Path) -> None:
    code, _, err = run_cli("no-such-command")
    assert code == 2
    assert "invalid choice" in err


def test_config_path_from_configuration_directory(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    code, _, err = run_cli("check-config", "-q", environ={"CONFIGURATION_DIRECTORY": str(tmp_path)})
    assert code == 0, err
    assert str(cfg.path) in err
