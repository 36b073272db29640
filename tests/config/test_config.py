"""Loading the configuration: valid files, every kind of bad input, secrets and keys."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from svarinn_daemon.config import load_config
from svarinn_daemon.errors import ConfigError
from tests.support.cfg_helpers import PASSWORD, make_config_dir, run_cli
from tests.support.keygen import cert_pem, certificate, key_pem, rsa_key

REPO = Path(__file__).resolve().parents[2]


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    config = load_config(cfg.path, environ={})
    account = config.account("kommune")
    assert account.base_url == "https://svarut.ks.no"
    assert account.password.reveal() == PASSWORD
    assert account.archive == "default"
    assert config.archives["default"].adapter == "filesystem"
    assert account.http.read_timeout == timedelta(minutes=5)
    assert account.keys[0].pair.certificate is not None
    assert config.ledger.url == f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite3'}"
    assert PASSWORD not in repr(config)
    assert config.daemon.worker_id  # the host name by default
    assert config.daemon.concurrency == 4
    assert config.metrics.listen is None
    assert config.ledger.migrate_on_start is True


def test_an_account_without_api_speaks_v1_and_check_config_says_it_is_deprecated(
    tmp_path: Path,
) -> None:
    cfg = make_config_dir(tmp_path)
    config = load_config(cfg.path, environ={})
    assert config.account("kommune").api == "v1"
    assert config.account("kommune").base_url == "https://svarut.ks.no"
    code, out, err = run_cli("--config", str(cfg.path), "check-config")
    assert code == 0
    assert "accounts[0].api is not set, so it means v1" in err
    assert "deprecated" in err
    assert 'api = "v1"' in out


def test_api_v2_has_its_own_default_base_url_and_no_deprecation_warning(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path, extra_account='api = "v2"')
    config = load_config(cfg.path, environ={})
    account = config.account("kommune")
    assert (account.api, account.base_url) == ("v2", "https://svarut.ks.no/api")
    assert not any("deprecated" in w for w in config.warnings)
    text = cfg.path.read_text().replace(
        'api = "v2"', 'api = "v2"\nbase_url = "https://x.no/tjenester/"'
    )
    cfg.write(text)
    assert load_config(cfg.path, environ={}).account("kommune").base_url == (
        "https://x.no/tjenester"
    )
    cfg.write(cfg.path.read_text().replace('api = "v2"', 'api = "v1"'))
    assert any("api is v1" in w for w in load_config(cfg.path, environ={}).warnings)


def test_an_unknown_api_version_is_refused(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path, extra_account='api = "v3"')
    code, _, err = run_cli("--config", str(cfg.path), "check-config")
    assert code == 2
    assert "accounts[0].api" in err
    assert "must be one of v1, v2" in err


def test_state_directory_defaults_to_systemd_state_directory(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    text = cfg.path.read_text().replace(f'state_directory = "{tmp_path / "state"}"', "")
    cfg.write(text)
    config = load_config(cfg.path, environ={"STATE_DIRECTORY": "/srv/svarinn:/other"})
    assert config.state_directory == Path("/srv/svarinn")
    assert load_config(cfg.path, environ={}).state_directory == Path("/var/lib/svarinn-daemon")


def test_secrets_from_env_and_credentials(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "svarinn-key").write_bytes((tmp_path / "key.pem").read_bytes())
    text = cfg.path.read_text()
    text = text.replace('password_file = "password"', 'password_env = "SVARINN_PASSWORD"')
    text = text.replace('private_key_file = "key.pem"', 'private_key_credential = "svarinn-key"')
    cfg.write(text)
    env = {"SVARINN_PASSWORD": "from-env", "CREDENTIALS_DIRECTORY": str(creds)}
    config = load_config(cfg.path, environ=env)
    assert config.accounts[0].password.reveal() == "from-env"
    assert config.accounts[0].keys[0].pair.label == "credential:svarinn-key"


def test_example_config_is_valid(tmp_path: Path) -> None:
    """config.example.toml loads once its /etc paths point at real files."""
    text = (REPO / "config.example.toml").read_text()
    etc = tmp_path / "etc"
    etc.mkdir()
    key = rsa_key(0)
    (etc / "private-key.pem").write_bytes(key_pem(key))
    (etc / "certificate.pem").write_bytes(cert_pem(certificate(key)))
    (etc / "svarinn-password").write_text("pw\n")
    text = text.replace("/etc/svarinn-daemon/", f"{etc}/")
    path = tmp_path / "config.toml"
    path.write_text(text)
    config = load_config(path, environ={})
    assert config.accounts[0].name == "kommune"
    assert config.state_directory == Path("/var/lib/svarinn-daemon")


def test_example_config_documents_every_key() -> None:
    """Every key the loader reads appears in config.example.toml (maybe commented out)."""
    example = (REPO / "config.example.toml").read_text()
    loader = "\n".join(p.read_text() for p in (REPO / "svarinn_daemon" / "config").glob("*.py"))
    asked = set(
        re.findall(
            r"\.(?:string|boolean|integer|duration|size|path_value|string_list"
            r'|table|tables|secret)\(\s*"([a-z_]+)"',
            loader,
        )
    )
    assert asked, "the pattern found no keys"
    missing = sorted(k for k in asked if not re.search(rf"\b{k}(_file)?\b", example))
    assert missing == []


# --- bad input: one clear line naming file and key, exit code 2, no traceback ----------


def _bad(tmp_path: Path, old: str, new: str) -> tuple[int, str]:
    cfg = make_config_dir(tmp_path)
    text = cfg.path.read_text()
    assert old in text, old
    cfg.write(text.replace(old, new))
    code, _out, err = run_cli("--config", str(cfg.path), "check-config")
    return code, err


def _assert_one_clear_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_missing_file(tmp_path: Path) -> None:
    code, _, err = run_cli("--config", str(tmp_path / "nope.toml"), "check-config")
    _assert_one_clear_line(code, err, "nope.toml", "does not exist")


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli("--config", str(tmp_path / "file" / "config.toml"), "check-config")
    _assert_one_clear_line(code, err, "config.toml", "cannot read")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    code, _, err = run_cli("--config", str(tmp_path), "check-config")
    _assert_one_clear_line(code, err, str(tmp_path), "directory")


def test_invalid_toml(tmp_path: Path) -> None:
    code, err = _bad(tmp_path, 'name = "kommune"', 'name = "kommune')
    _assert_one_clear_line(code, err, "config.toml", "invalid TOML", "line")


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_bytes(b'name = "\xff"\n')
    code, _, err = run_cli("--config", str(tmp_path / "config.toml"), "check-config")
    _assert_one_clear_line(code, err, "config.toml", "UTF-8")


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    code, err = _bad(tmp_path, 'username = "mottaker-1"', 'usernme = "mottaker-1"')
    _assert_one_clear_line(code, err, "config.toml", "accounts[0].username", "'usernme': misspelt?")
    code, err = _bad(tmp_path, 'username = "mottaker-1"', 'username = "u"\nbase_ur = "x"')
    _assert_one_clear_line(code, err, "accounts[0].base_ur", "did you mean 'base_url'")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    code, err = _bad(tmp_path, "[[accounts]]", "statedir = 1\n[[accounts]]")
    _assert_one_clear_line(code, err, "statedir", "unknown key")


def test_wrong_type(tmp_path: Path) -> None:
    code, err = _bad(tmp_path, 'username = "mottaker-1"', "username = 42")
    _assert_one_clear_line(code, err, "accounts[0].username", "must be a string, not a number")


def test_bad_duration(tmp_path: Path) -> None:
    code, err = _bad(
        tmp_path, 'username = "mottaker-1"', 'username = "u"\nhttp = { read_timeout = "5 minutes" }'
    )
    _assert_one_clear_line(code, err, "accounts[0].http.read_timeout", "not a duration")


def test_bad_size(tmp_path: Path) -> None:
    code, err = _bad(
        tmp_path, 'username = "mottaker-1"', 'username = "u"\nhttp = { max_download_size = "lots" }'
    )
    _assert_one_clear_line(code, err, "accounts[0].http.max_download_size", "not a size")


def test_missing_secret_file(tmp_path: Path) -> None:
    code, err = _bad(tmp_path, 'password_file = "password"', 'password_file = "missing-pw"')
    _assert_one_clear_line(code, err, "accounts[0].password_file", "missing-pw", "does not exist")


def test_missing_secret_env(tmp_path: Path) -> None:
    code, err = _bad(tmp_path, 'password_file = "password"', 'password_env = "NOPE_PW"')
    _assert_one_clear_line(code, err, "accounts[0].password_env", "NOPE_PW is not set")


def test_credential_without_credentials_directory(tmp_path: Path) -> None:
    code, err = _bad(tmp_path, 'password_file = "password"', 'password_credential = "pw"')
    _assert_one_clear_line(code, err, "accounts[0].password_credential", "CREDENTIALS_DIRECTORY")


def test_two_sources_for_one_secret(tmp_path: Path) -> None:
    code, err = _bad(
        tmp_path, 'password_file = "password"', 'password_file = "password"\npassword_env = "X"'
    )
    _assert_one_clear_line(code, err, "accounts[0].password_env", "only one of")


def test_missing_password(tmp_path: Path) -> None:
    code, err = _bad(tmp_path, 'password_file = "password"', "")
    _assert_one_clear_line(code, err, "accounts[0].password", "is required")


def test_private_key_that_does_not_parse(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    code, _, err = run_cli("--config", str(cfg.path), "check-config")
    _assert_one_clear_line(
        code, err, "accounts[0].keys[0].private_key_file", "not a PEM private key"
    )


def test_encrypted_key_without_passphrase(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    (tmp_path / "key.pem").write_bytes(key_pem(rsa_key(0), passphrase=b"hemmelig"))
    code, _, err = run_cli("--config", str(cfg.path), "check-config")
    _assert_one_clear_line(code, err, "private_key_file", "encrypted", "passphrase")


def test_encrypted_key_with_wrong_passphrase(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    (tmp_path / "key.pem").write_bytes(key_pem(rsa_key(0), passphrase=b"hemmelig"))
    (tmp_path / "pp").write_text("feil")
    cfg.write(cfg.path.read_text() + 'passphrase_file = "pp"\n')
    code, _, err = run_cli("--config", str(cfg.path), "check-config")
    _assert_one_clear_line(code, err, "private_key_file", "passphrase does not open")
    assert "feil" not in err


def test_encrypted_key_with_right_passphrase(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    (tmp_path / "key.pem").write_bytes(key_pem(rsa_key(0), passphrase=b"hemmelig"))
    (tmp_path / "pp").write_text("hemmelig\n")
    cfg.write(cfg.path.read_text() + 'passphrase_file = "pp"\n')
    config = load_config(cfg.path, environ={})
    assert config.accounts[0].keys[0].pair.certificate is not None


def test_certificate_that_does_not_match_key(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    (tmp_path / "cert.pem").write_bytes(cert_pem(certificate(rsa_key(1), serial=0xBEEF)))
    code, _, err = run_cli("--config", str(cfg.path), "check-config")
    _assert_one_clear_line(
        code, err, "accounts[0].keys[0].certificate_file", "does not belong", "BEEF"
    )


def test_certificate_that_does_not_parse(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    (tmp_path / "cert.pem").write_text("garbage")
    code, _, err = run_cli("--config", str(cfg.path), "check-config")
    _assert_one_clear_line(code, err, "certificate_file", "not a PEM X.509 certificate")


@pytest.mark.parametrize(
    ("old", "new", "fragments"),
    [
        ('name = "kommune"', 'name = "kom mune"', ("accounts[0].name", "letters, digits")),
        (
            'username = "mottaker-1"',
            'username = "u"\nbase_url = "http://svarut.ks.no"',
            ("base_url", "plain http"),
        ),
        ('username = "mottaker-1"', 'username = "u"\narchive = "arkiv"', ("archive", "arkiv")),
        ("[[accounts]]", '[ledger]\nurl = "mysql://x/y"\n[[accounts]]', ("ledger.url", "mysql")),
        ("[[accounts]]", '[logging]\nlevel = "loud"\n[[accounts]]', ("logging.level", "one of")),
    ],
)
def test_invalid_values(tmp_path: Path, old: str, new: str, fragments: tuple[str, ...]) -> None:
    code, err = _bad(tmp_path, old, new)
    _assert_one_clear_line(code, err, "config.toml", *fragments)


def test_no_accounts(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('state_directory = "/tmp/x"\n')
    with pytest.raises(ConfigError, match=r"accounts: at least one \[\[accounts\]\]"):
        load_config(tmp_path / "config.toml", environ={})


def test_duplicate_account_names(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    text = cfg.path.read_text()
    account = text[text.index("[[accounts]]") :]
    cfg.write(text + "\n" + account)
    with pytest.raises(ConfigError, match=r"accounts\[1\].name: duplicate account name"):
        load_config(cfg.path, environ={})


def test_console_script_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "svarinn_daemon",
            "--config",
            str(tmp_path / "x.toml"),
            "check-config",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "x.toml" in result.stderr


def test_receipts_false_is_shadow_mode_and_check_config_says_so(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path)
    assert load_config(cfg.path, environ={}).account("kommune").receipts is True
    cfg = make_config_dir(tmp_path, extra_account="receipts = false")
    config = load_config(cfg.path, environ={})
    assert config.account("kommune").receipts is False
    assert any("accounts[0].receipts is false: shadow mode" in w for w in config.warnings)
    code, out, err = run_cli("--config", str(cfg.path), "check-config")
    assert code == 0, err
    assert "shadow mode" in err + out
    assert "receipts = false" in out
    code, err = _bad(tmp_path, 'username = "mottaker-1"', 'username = "u"\nreceipts = "no"')
    _assert_one_clear_line(code, err, "accounts[0].receipts", "must be true or false")


def test_proxy_credentials_are_secrets_in_every_form(tmp_path: Path) -> None:
    """Issue #24, item 13: base64(user:password) of the proxy, and a trust_env proxy's
    userinfo, were not masked."""
    import base64

    from tests.support.cfg_helpers import make_config_dir

    cfg = make_config_dir(tmp_path)
    (tmp_path / "proxy-password").write_text("pr0xy-pass\n")
    text = cfg.path.read_text().replace(
        "[[accounts.keys]]",
        f'[accounts.http]\nproxy = "http://proxy.kommune.no:3128"\nproxy_username = "svc"\n'
        f'proxy_password_file = "{tmp_path / "proxy-password"}"\n\n[[accounts.keys]]',
        1,
    )
    cfg.path.write_text(text)
    config = load_config(cfg.path, environ={})
    values = config.secret_values()
    assert "pr0xy-pass" in values
    assert base64.b64encode(b"svc:pr0xy-pass").decode() in values

    cfg.path.write_text(
        text.replace(
            'proxy = "http://proxy.kommune.no:3128"\nproxy_username = "svc"\n', ""
        ).replace(f'proxy_password_file = "{tmp_path / "proxy-password"}"\n', "trust_env = true\n")
    )
    environ = {"HTTPS_PROXY": "http://envuser:env%40secret@proxy:3128"}
    values = load_config(cfg.path, environ=environ).secret_values()
    assert "env@secret" in values
    assert base64.b64encode(b"envuser:env@secret").decode() in values
