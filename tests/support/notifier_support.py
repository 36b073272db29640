"""The notifier tests' alert messages, and a strict local Fiks SMS with its Maskinporten
(real HTTP on loopback) set up for a fiks-sms notifier: the webhook, Fiks SMS and proxy tests
share them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from svarinn_daemon.alerts import AlertMessage, AlertStatus, Condition
from svarinn_daemon.alerts.notifiers import NotifierRegistry
from svarinn_daemon.alerts.notifiers.fiks_sms import FiksSmsNotifier
from svarinn_daemon.config import Config, load_config
from tests.support.cfg_helpers import make_config_dir
from tests.support.fakes.fiks import FakeFiksServer, FiksState
from tests.support.keygen import cert_pem, certificate, key_pem, rsa_key

T0 = datetime(2024, 5, 1, 8, 5, tzinfo=UTC)
ALERT = AlertMessage(
    condition=Condition.AUTH_FAILING,
    subject="kommune",
    status=AlertStatus.FIRING,
    account="kommune",
    host="arkiv01",
    first_seen=T0,
    sent_at=T0,
)


PASSORD = "Integrasjon-Passord-42"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    server: FakeFiksServer
    state: FiksState
    clock: Clock
    tmp: Path
    sleeps: list[float]

    def config(self, **options: object) -> Config:
        cfg = make_config_dir(self.tmp)
        values: dict[str, object] = {
            "name": "vakt",
            "type": "fiks-sms",
            "environment": "test",
            "base_url": self.server.base_url,
            "maskinporten_issuer": self.state.issuer,
            "konto_id": self.state.konto_id,
            "integrasjon_id": self.state.integrasjon_id,
            "integrasjon_passord_file": "fiks-passord",
            "client_id": self.state.client_id,
            "private_key_file": "mp-key.pem",
            "certificate_file": "mp-cert.pem",
            "recipients": ["+4799999999"],
            "backoff": "1s",
        }
        values.update(options)
        lines = ["", "[[notifiers]]"]
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, int):
                lines.append(f"{key} = {value}")
            elif isinstance(value, list):
                lines.append(f"{key} = [{', '.join(repr(v) for v in value)}]")
            else:
                lines.append(f'{key} = "{value}"')
        cfg.write(cfg.path.read_text() + "\n".join(lines) + "\n")
        return load_config(cfg.path, environ={})

    def notifier(self, **options: object) -> FiksSmsNotifier:
        config = self.config(**options)
        notifier = NotifierRegistry().create(
            config.notifiers[0],
            source=config.source,
            base_dir=config.source.parent,
            clock=self.clock,
            sleep=self.sleeps.append,
        )
        assert isinstance(notifier, FiksSmsNotifier)
        return notifier


def alert(account: str = "kommune", status: AlertStatus = AlertStatus.FIRING) -> AlertMessage:
    return AlertMessage(
        condition=Condition.PENDING_TOO_LONG,
        subject=account,
        status=status,
        account=account,
        host="arkiv01",
        first_seen=T0,
        sent_at=T0,
        counts={"letters": 2},
    )


@contextmanager
def fiks_setup(tmp_path: Path) -> Iterator[Setup]:
    """A strict local Maskinporten and Fiks SMS, and the key, certificate and password files
    a fiks-sms notifier in ``tmp_path`` reads."""
    key = rsa_key(1)
    cert = certificate(key, cn="Test Kommune virksomhetssertifikat")
    (tmp_path / "mp-key.pem").write_bytes(key_pem(key))
    (tmp_path / "mp-cert.pem").write_bytes(cert_pem(cert))
    (tmp_path / "fiks-passord").write_text(PASSORD + "\n")
    clock = Clock()
    state = FiksState(certificate=cert, integrasjon_passord=PASSORD, clock=clock)
    with FakeFiksServer(state) as server:
        yield Setup(server, state, clock, tmp_path, [])
