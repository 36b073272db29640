"""SvarInn through an HTTP proxy: a real CONNECT proxy on loopback that records the tunnels.

The simulator serves HTTPS (as SvarInn does), so the account's Basic credentials travel
inside the TLS tunnel: the proxy sees only CONNECT, its own Proxy-Authorization, and
ciphertext.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from svarinn_daemon.config import load_config
from svarinn_daemon.config.model import AccountConfig
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import ConfigError, SvarInnError
from svarinn_daemon.service.runtime import connect
from svarinn_daemon.simulator import Simulator, generate_identity
from svarinn_daemon.simulator.tls import make_server_tls
from svarinn_daemon.svarinn import SvarInnClient
from tests.support.cfg_helpers import make_config_dir, run_cli
from tests.support.daemon_harness import harness
from tests.support.proxy_support import ConnectProxy
from tests.support.simhelpers import list_new, make_account

PROXY_USER = "kommune-proxy"
PROXY_PASSWORD = "Pr0xy-s3cret!"


@pytest.fixture
def tls_sim(tmp_path: Path) -> Iterator[tuple[Simulator, Path]]:
    tls = make_server_tls(tmp_path / "tls")
    with Simulator(
        generate_identity().certificate, password="s3cret-Passord", tls=tls.server_context()
    ) as sim:
        sim.generate(2, 100_000)
        yield sim, tls.ca_certificate


def _account(sim: Simulator, ca: Path, **http: object) -> AccountConfig:
    return make_account(
        sim.base_url, username=sim.username, password=sim.password, ca_bundle=ca, **http
    )


def _secret(text: str) -> Secret:
    return Secret(source="inline", _value=text.encode())


def _import_all(client: SvarInnClient) -> int:
    letters = list_new(client)
    for letter in letters:
        with client.download(letter) as download:
            assert sum(len(chunk) for chunk in download) > 0
        client.acknowledge(letter.id)
    return len(letters)


def test_svarinn_through_a_proxy_with_credentials(tls_sim: tuple[Simulator, Path]) -> None:
    sim, ca = tls_sim
    with ConnectProxy(credentials=(PROXY_USER, PROXY_PASSWORD)) as proxy:
        account = _account(
            sim,
            ca,
            proxy=proxy.url,
            proxy_username=PROXY_USER,
            proxy_password=_secret(PROXY_PASSWORD),
        )
        with connect(account) as client:
            assert _import_all(client) == 2
        assert proxy.tunnels, "nothing went through the proxy"
        expected = "Basic " + base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
        for tunnel in proxy.tunnels:
            assert (tunnel.method, tunnel.target, tunnel.status) == (
                "CONNECT",
                f"127.0.0.1:{sim.port}",
                200,
            )
            assert tunnel.proxy_authorization == expected
            # Inside the tunnel only TLS: no HTTP request line, no Authorization in clear.
            assert tunnel.upstream[:1] == b"\x16"  # a TLS handshake record
            assert b"Authorization" not in tunnel.upstream
            assert sim.password.encode() not in tunnel.upstream
        assert sum(t.downstream_bytes for t in proxy.tunnels) > 200_000  # the downloads
    state = sim.state()
    assert len(state.acknowledged) == 2
    # The account's credentials reached SvarInn; the proxy's did not.
    assert all(r.authenticated for r in sim.request_log())


def test_wrong_proxy_credentials_are_a_typed_error_without_secrets(
    tls_sim: tuple[Simulator, Path],
) -> None:
    sim, ca = tls_sim
    with ConnectProxy(credentials=(PROXY_USER, "another")) as proxy:
        account = _account(
            sim,
            ca,
            proxy=proxy.url,
            proxy_username=PROXY_USER,
            proxy_password=_secret(PROXY_PASSWORD),
        )
        with connect(account) as client, pytest.raises(SvarInnError) as caught:
            list_new(client)
        text = str(caught.value)
        assert "account testkommune" in text
        assert "407" in text
        assert PROXY_PASSWORD not in text
        assert sim.password not in text
        assert [t.status for t in proxy.tunnels] == [407]
    assert sim.request_log() == ()


def test_trust_env_takes_https_proxy_and_no_proxy(
    tls_sim: tuple[Simulator, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, ca = tls_sim
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with connect(_account(sim, ca)) as client:  # trust_env = false by default
            assert len(list_new(client)) == 2
        assert proxy.tunnels == []
        with connect(_account(sim, ca, trust_env=True)) as client:
            assert len(list_new(client)) == 2
        assert [t.target for t in proxy.tunnels] == [f"127.0.0.1:{sim.port}"]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with connect(_account(sim, ca, trust_env=True)) as client:
            assert len(list_new(client)) == 2
        assert len(proxy.tunnels) == 1  # NO_PROXY: straight to the server


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_the_daemon_through_a_proxy(tmp_path: Path, api: str) -> None:
    """poll-once with [accounts.http] proxy and a proxy password file: every letter archived,
    every connection a CONNECT tunnel, no secret in the log."""
    with (
        harness(tmp_path, tls=True, api=api) as h,
        ConnectProxy(credentials=(PROXY_USER, PROXY_PASSWORD)) as proxy,
    ):
        letters = h.sim.generate(3, 50_000)
        (tmp_path / "proxy-password").write_text(PROXY_PASSWORD + "\n")
        text = h.config_path.read_text()
        text = re.sub(
            r"(ca_bundle = .*\n)",
            lambda m: (
                m.group(1)
                + f'proxy = "{proxy.url}"\nproxy_username = "{PROXY_USER}"\n'
                + 'proxy_password_file = "proxy-password"\n'
            ),
            text,
        )
        h.config_path.write_text(text)
        code, lines = h.poll_once()
        assert code == 0, lines[-3:]
        assert h.archived_ids() == {letter.id for letter in letters}
        assert proxy.tunnels
        assert {t.status for t in proxy.tunnels} == {200}
        assert PROXY_PASSWORD not in str(lines)
        code, out, err = run_cli("--config", str(h.config_path), "check-config")
        assert code == 0, err
        assert f'proxy = "{proxy.url}"' in out
        assert 'proxy_password = "*** from file:' in out
        assert PROXY_PASSWORD not in out + err


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            'proxy = "http://user:pw@proxy.kommune.no:3128"',
            "must not contain a user name or password",
        ),
        ('proxy = "socks://proxy.kommune.no:1080"', "must be an http://host:port proxy URL"),
        ('proxy = "http://proxy.kommune.no:3128/path"', "scheme://host:port only"),
        ('proxy_username = "u"', "go together"),
    ],
)
def test_proxy_config_errors(tmp_path: Path, lines: str, message: str) -> None:
    cfg = make_config_dir(tmp_path, extra_account=f"[accounts.http]\n{lines}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(cfg.path, environ={})


def test_proxy_config_loads(tmp_path: Path) -> None:
    (tmp_path / "proxy-password").write_text(PROXY_PASSWORD)
    cfg = make_config_dir(
        tmp_path,
        extra_account=(
            '[accounts.http]\nproxy = "http://proxy.kommune.no:3128/"\n'
            'proxy_username = "u"\nproxy_password_file = "proxy-password"\ntrust_env = true\n'
        ),
    )
    config = load_config(cfg.path, environ={})
    http = config.accounts[0].http
    assert http.proxy == "http://proxy.kommune.no:3128"
    assert http.proxy_username == "u"
    assert http.proxy_password is not None
    assert http.proxy_password.reveal() == PROXY_PASSWORD
    assert http.trust_env is True
    assert PROXY_PASSWORD in config.secret_values()


# --- the notifiers: webhook, and Fiks SMS with its Maskinporten token ---------------------


def test_webhook_through_a_proxy(tmp_path: Path) -> None:
    from svarinn_daemon.alerts.notifiers import NotifierRegistry
    from svarinn_daemon.config import NotifierConfig
    from tests.support.fakes.webhook import WebhookServer, WebhookState
    from tests.support.notifier_support import ALERT

    with (
        WebhookServer(WebhookState()) as hook,
        ConnectProxy(credentials=(PROXY_USER, PROXY_PASSWORD)) as proxy,
    ):
        config = NotifierConfig(
            name="teams",
            type="webhook",
            options={"proxy": proxy.url, "proxy_username": PROXY_USER},
            secrets={"url": _secret(hook.url), "proxy_password": _secret(PROXY_PASSWORD)},
        )
        notifier = NotifierRegistry().create(config)
        notifier.send(ALERT)
        notifier.close()
        (tunnel,) = proxy.tunnels
        assert (tunnel.method, tunnel.target, tunnel.status) == ("POST", hook.url, 200)
        assert tunnel.proxy_authorization is not None
        ((path, headers, _body),) = hook.state.received
        assert hook.url.endswith(path)
        assert not any(name.lower().startswith("proxy-") for name in headers)


def test_fiks_sms_and_maskinporten_through_a_proxy(tmp_path: Path) -> None:
    from tests.support.notifier_support import alert, fiks_setup

    (tmp_path / "proxy-password").write_text(PROXY_PASSWORD)
    with (
        fiks_setup(tmp_path) as setup,
        ConnectProxy(credentials=(PROXY_USER, PROXY_PASSWORD)) as proxy,
    ):
        notifier = setup.notifier(
            proxy=proxy.url, proxy_username=PROXY_USER, proxy_password_file="proxy-password"
        )
        notifier.send(alert())
        notifier.close()
        targets = [t.target for t in proxy.tunnels]
        assert {t.status for t in proxy.tunnels} == {200}
    assert any(t.endswith("/maskinporten/token") for t in targets), targets
    assert any("/varsling/api/v2/sms/" in t for t in targets), targets
