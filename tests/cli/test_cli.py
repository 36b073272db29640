"""check-config's output, warnings and exit codes through the real CLI entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.cfg_helpers import PASSWORD, make_config_dir, run_cli
from tests.support.keygen import cert_pem, certificate, rsa_key


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
    cfg = make_config_dir(tmp_path, extra_account='api = "v2"')
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


# --- global options before or after the command -------------------------------------------


def test_global_options_after_the_command_mean_the_same(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    before = run_cli("--config", str(cfg.path), "check-config")
    after = run_cli("check-config", "--config", str(cfg.path))
    short = run_cli("check-config", "-c", str(cfg.path))
    assert before[0] == after[0] == short[0] == 0, before[2]
    assert before[1] == after[1] == short[1]


def test_log_options_after_the_command_take_effect(tmp_path: Path) -> None:
    """The installed script, as operators type it: the options after the command are used."""
    import json
    import subprocess
    import sys

    script = Path(sys.executable).parent / "svarinn-daemon"

    def migrate(*options: str) -> subprocess.CompletedProcess[str]:
        """On a fresh ledger each time, so migrate logs ledger.migrated at level info."""
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        root.mkdir()
        command = [str(script), "migrate", "--config", str(make_config_dir(root).path), *options]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done

    first = migrate("--log-format", "json")
    assert "migrated from empty" in first.stdout
    (line,) = [json.loads(text) for text in first.stderr.splitlines() if text.strip()]
    assert line["event"] == "ledger.migrated"
    quiet = migrate("--log-level", "error", "--log-format", "json")
    assert "migrated from empty" in quiet.stdout
    assert quiet.stderr == ""


def test_every_command_accepts_and_documents_the_global_options(tmp_path: Path) -> None:
    from svarinn_daemon.cli import _subparsers, build_parser

    parser = build_parser()
    commands = _subparsers(parser)
    assert len(commands) >= 12  # every command, and alerts' list and test
    for command in commands:
        text = command.format_help()
        assert "global options (before or after the command)" in text, command.prog
        for option in ("--config PATH", "--log-level", "--log-format"):
            assert option in text, (command.prog, option)
    args = parser.parse_args(["--config", "a", "--log-level", "error", "run"])
    assert (args.config, args.log_level, args.log_format) == ("a", "error", None)
    args = parser.parse_args(["run", "--config", "b", "--log-format", "console"])
    assert (args.config, args.log_level, args.log_format) == ("b", None, "console")
    args = parser.parse_args(
        ["--log-level", "debug", "alerts", "test", "--notifier", "x", "-c", "c"]
    )
    assert (args.config, args.log_level, args.notifier) == ("c", "debug", "x")


def test_check_config_checks_archive_options_and_warns_of_a_command_without_check(
    tmp_path: Path,
) -> None:
    cfg = make_config_dir(tmp_path, extra_account='archive = "sak"')
    text = cfg.path.read_text()
    cfg.write(
        text.replace(
            "[[accounts]]",
            '[archives.sak]\nadapter = "command"\ncommand = ["/usr/local/bin/import-letter"]\n\n'
            '[archives.web]\nadapter = "http"\nurl = "https://sak.example.no/letters"\n'
            'status_url = "https://sak.example.no/letters/{forsendelse_id}"\n'
            'authorization = "Bearer inline-token-9f3"\n\n[[accounts]]',
            1,
        )
    )
    code, out, err = run_cli("--config", str(cfg.path), "check-config")
    assert code == 0, err
    assert "archives.sak: command has no check_command" in err
    assert "a restored ledger" in err  # what restoring a backup means for it
    assert "archives.web" not in err  # it has a status_url
    assert "inline-token-9f3" not in out + err
    program = "/usr/local/bin/import-letter"
    cfg.write(cfg.path.read_text().replace(f'["{program}"]', f'"{program}"'))
    code, _, err = run_cli("--config", str(cfg.path), "check-config")
    assert code == 2
    assert "archives.sak.command" in err
    assert "never run by a shell" in err
