"""fiks-sms against a strict local Maskinporten and Fiks SMS API (real HTTP on loopback)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from svarinn_daemon.alerts.gsm7 import is_gsm7
from svarinn_daemon.alerts.notifiers import Notifier
from svarinn_daemon.errors import ConfigError, NotifierError
from svarinn_daemon.logs import configure_logging
from tests.support.keygen import cert_pem, certificate, key_pem, rsa_key
from tests.support.notifier_support import PASSORD, Setup, alert, fiks_setup


@pytest.fixture
def fiks(tmp_path: Path) -> Iterator[Setup]:
    with fiks_setup(tmp_path) as setup:
        yield setup


def test_one_token_serves_several_sms(fiks: Setup) -> None:
    notifier = fiks.notifier()
    assert isinstance(notifier, Notifier)
    for _ in range(3):
        notifier.send(alert())
    notifier.close()
    assert len(fiks.state.grants) == 1
    assert [s.operation for s in fiks.state.sms] == ["send"] * 3
    assert fiks.state.sms[0].body == {
        "tekst": alert().short_text(),
        "telefonnummer": "+4799999999",
    }
    assert len(notifier.sent_ids) == 3
    grant = fiks.state.grants[0]
    assert grant["aud"] == fiks.state.issuer
    assert grant["iss"] == "client-1"
    assert grant["scope"] == "ks:fiks"
    assert grant["exp"] - grant["iat"] <= 120
    assert "x5c" in fiks.state.grant_headers[0]


def test_token_is_renewed_before_it_expires(fiks: Setup) -> None:
    notifier = fiks.notifier()
    notifier.send(alert())
    fiks.clock.now += 85  # expires_in 120, renewed 30 s early: still good
    notifier.send(alert())
    assert len(fiks.state.grants) == 1
    fiks.clock.now += 10  # 95 s: inside the margin
    notifier.send(alert())
    notifier.close()
    assert len(fiks.state.grants) == 2
    assert len({g["jti"] for g in fiks.state.grants}) == 2
    assert len(fiks.state.sms) == 3


def test_several_recipients_go_in_one_batch(fiks: Setup) -> None:
    numbers = ["+4799999999", "4791111111", "004790000000"]
    notifier = fiks.notifier(recipients=numbers)
    notifier.send(alert())
    notifier.close()
    (sms,) = fiks.state.sms
    assert sms.operation == "sendBatch"
    assert sms.body == {"telefonnummere": numbers, "tekst": alert().short_text()}


def test_single_mode_sends_one_request_per_recipient(fiks: Setup) -> None:
    notifier = fiks.notifier(recipients=["+4799999999", "+4791111111"], mode="single")
    notifier.send(alert())
    notifier.close()
    assert [(s.operation, s.body["telefonnummer"]) for s in fiks.state.sms] == [
        ("send", "+4799999999"),
        ("send", "+4791111111"),
    ]


def test_kid_instead_of_x5c(fiks: Setup) -> None:
    fiks.state.kids["kommune-key-1"] = rsa_key(1).public_key()
    notifier = fiks.notifier(certificate_file=None, kid="kommune-key-1")
    notifier.send(alert())
    notifier.close()
    header = fiks.state.grant_headers[0]
    assert header["kid"] == "kommune-key-1"
    assert "x5c" not in header


def test_a_revoked_token_is_replaced_once(fiks: Setup) -> None:
    notifier = fiks.notifier()
    notifier.send(alert())
    fiks.state.tokens.clear()  # Fiks no longer accepts the cached token
    notifier.send(alert())
    notifier.close()
    assert len(fiks.state.grants) == 2
    assert len(fiks.state.sms) == 2


def test_401_with_error_id_is_surfaced(fiks: Setup) -> None:
    fiks.state.expires_in = 0  # every token is dead on arrival
    notifier = fiks.notifier()
    with pytest.raises(NotifierError) as info:
        notifier.send(alert())
    notifier.close()
    error = info.value
    assert error.status_code == 401
    assert not error.temporary
    assert error.error_id == fiks.state.errors[-1][1]
    assert f"errorId {error.error_id}" in str(error)
    assert len(fiks.state.grants) == 2  # one retry with a fresh token, then believed


def test_403_with_error_id_and_no_password_anywhere(fiks: Setup) -> None:
    fiks.state.integrasjon_passord = "another-password"
    config = fiks.config()
    out = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=out, secrets=config.secret_values())
    notifier = fiks.notifier()
    with pytest.raises(NotifierError) as info:
        notifier.send(alert())
    notifier.close()
    error = info.value
    assert (error.status_code, error.temporary) == (403, False)
    assert error.error_id == fiks.state.errors[-1][1]
    logged = out.getvalue()
    assert error.error_id in logged
    issued = list(fiks.state.tokens)
    for text in (str(error), repr(error), logged, repr(notifier), repr(notifier.tokens)):
        assert PASSORD not in text
        assert "PRIVATE KEY" not in text
        for token in issued:
            assert token not in text


def test_maskinporten_refusal_is_a_permanent_error(fiks: Setup) -> None:
    notifier = fiks.notifier(client_id="someone-else")
    with pytest.raises(NotifierError, match="HTTP 401: invalid_client") as info:
        notifier.send(alert())
    notifier.close()
    assert not info.value.temporary
    assert fiks.state.sms == []


def test_a_certificate_maskinporten_does_not_know_is_refused(fiks: Setup) -> None:
    other = rsa_key(2)
    (fiks.tmp / "other-key.pem").write_bytes(key_pem(other))
    (fiks.tmp / "other-cert.pem").write_bytes(cert_pem(certificate(other)))
    notifier = fiks.notifier(private_key_file="other-key.pem", certificate_file="other-cert.pem")
    with pytest.raises(NotifierError, match="invalid_grant"):
        notifier.send(alert())
    notifier.close()


def test_server_errors_are_retried_with_backoff(fiks: Setup) -> None:
    fiks.state.fail_sms = [503, 502]
    notifier = fiks.notifier()
    notifier.send(alert())
    notifier.close()
    assert fiks.sleeps == [1.0, 2.0]
    assert len(fiks.state.sms) == 1


def test_server_errors_that_persist_are_temporary(fiks: Setup) -> None:
    fiks.state.fail_sms = [503] * 5
    notifier = fiks.notifier(retries=1)
    with pytest.raises(NotifierError) as info:
        notifier.send(alert())
    notifier.close()
    assert info.value.temporary
    assert info.value.status_code == 503


def test_sms_text_is_gsm7_even_for_odd_names(fiks: Setup) -> None:
    notifier = fiks.notifier()
    notifier.send(alert(account="«Bærum» 🚨 " + "x" * 200))
    notifier.close()
    text = fiks.state.sms[0].body["tekst"]
    assert is_gsm7(text)
    assert len(text) <= 160
    assert text.startswith('svarinn ALERT pending_too_long "Bærum" ? xxx')


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"recipients": ["12"]}, "notifiers[0].recipients[0]", "phone number"),
        ({"kid": "k"}, "notifiers[0].certificate", "exactly one of"),
        ({"certificate_file": None}, "notifiers[0].certificate", "exactly one of"),
        ({"certificate_file": "fiks-passord"}, "notifiers[0].certificate", "not a PEM"),
        ({"mode": "fast"}, "notifiers[0].mode", "auto, single, batch"),
        ({"konto_id": None}, "notifiers[0].konto_id", "is required"),
        ({"base_url": "http://fiks.example.no"}, "notifiers[0].base_url", "plain http"),
        ({"recipeints": ["1"]}, "notifiers[0].recipeints", "did you mean 'recipients'"),
        ({"private_key_file": "mp-cert.pem"}, "notifiers[0].private_key_file", "not a PEM"),
    ],
)
def test_bad_options_name_the_key(
    fiks: Setup, options: dict[str, object], key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        fiks.notifier(**options)
    assert key in str(info.value)
    assert str(fiks.tmp / "config.toml") in str(info.value)
