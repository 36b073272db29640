"""Shadow mode end to end: an account with ``receipts = false`` imports every letter from the
simulator into its archive but never answers SvarUt; the old importer it runs beside keeps
them listed. Turned to ``receipts = true``, the daemon sends the receipts of letters still
listed, and a 404 ends a letter as acknowledged elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from svarinn_daemon.config import load_config
from svarinn_daemon.service.runtime import build_runtime
from svarinn_daemon.simulator.faults import Fault
from tests.support.daemon_harness import FAST, Harness, harness

ACCOUNT_LINE = 'archive = "default"\n'


def _receipts(h: Harness, on: bool) -> None:
    text = h.config_path.read_text()
    text = text.replace("receipts = false\n", "")
    assert text.count(ACCOUNT_LINE) == 1
    if not on:
        text = text.replace(ACCOUNT_LINE, ACCOUNT_LINE + "receipts = false\n")
    h.config_path.write_text(text)


def _show(h: Harness, forsendelse_id: str) -> dict[str, Any]:
    result = h.cli("show", forsendelse_id, "--json")
    assert result.returncode == 0, result.stderr
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def _metrics(h: Harness) -> str:
    config = load_config(h.config_path, environ={})
    with build_runtime(config) as runtime:
        return generate_latest(runtime.metrics.registry).decode()


def test_shadow_mode_imports_without_receipts_and_sends_them_when_turned_on(
    tmp_path: Path, ledger_url: str
) -> None:
    with harness(tmp_path, extra_config=FAST, ledger_url=ledger_url) as h:
        account = h.config_path.read_text().split("[[accounts]]")[1].split('"')[1]
        _receipts(h, on=False)
        good = h.sim.generate(3, 20_000)
        (bad,) = h.sim.generate(1, 20_000)
        h.sim.add_fault(Fault("corrupt", ids=frozenset({bad.id})))
        # poll-once succeeds once nothing is left but withheld receipts
        logged: list[dict[str, Any]] = []
        for _ in range(10):
            code, lines = h.poll_once()
            logged += lines
            if code == 0:
                break
        assert code == 0, logged[-3:]
        alerts = [x for x in logged if x["event"] == "alert.firing"]
        assert [x["condition"] for x in alerts] == ["permanent_failure"]  # none pending
        assert alerts[0]["counts"] == {"letters": 1, "reported": 0, "shadow_mode": 1}
        state = h.sim.state()
        assert h.archived_ids() == {x.id for x in good}
        assert dict(state.acknowledged) == {}
        assert state.reports == ()  # not even mottakFeilet(permanent=false)
        assert set(state.pending) == {x.id for x in [*good, bad]}  # the old importer's
        assert state.downloads[bad.id] == 3  # it failed permanently: its report is withheld

        shown = _show(h, good[0].id)["letter"]
        assert shown["state"] == "archived"
        assert shown["receipt_withheld_at"] is not None
        attempts = {x.id: _show(h, x.id)["letter"]["attempts"] for x in [*good, bad]}
        code, lines = h.poll_once()  # listed again: neither claimed nor downloaded again
        assert code == 0, lines[-3:]
        assert {x.id: _show(h, x.id)["letter"]["attempts"] for x in [*good, bad]} == attempts
        assert dict(h.sim.state().downloads) == {**{x.id: 1 for x in good}, bad.id: 3}
        assert h.sim.state().acknowledged == {}
        finished = next(x for x in lines if x["event"] == "poll_once.finished")
        assert finished["receipts_withheld"] == 4

        status = h.cli("status")
        assert status.returncode == 0, status.stderr
        assert f"{account}: 3 archived letter(s) with the receipt withheld (shadow mode)" in (
            status.stdout
        )
        assert "failed_permanently letter(s) with the receipt withheld" in status.stdout
        assert "no unfinished letters" in status.stdout
        shown_text = h.cli("show", good[1].id)
        assert "archived, receipt withheld (shadow mode)" in shown_text.stdout
        assert "kvitterMottak withheld (shadow mode: receipts = false)" in shown_text.stdout
        listed = h.cli("list")
        assert listed.stdout.count("archived, receipt withheld (shadow mode)") == 3
        status_json = json.loads(h.cli("status", "--json").stdout)
        assert status_json["receipts_withheld"] == {account: 4}

        metrics = _metrics(h)
        assert f'svarinn_account_shadow_mode{{account="{account}"}} 1.0' in metrics
        assert f'svarinn_receipts_withheld_letters{{account="{account}"}} 4.0' in metrics

        # The old importer acknowledges one letter; then receipts are turned on.
        h.sim.acknowledge_elsewhere(good[0].id)
        _receipts(h, on=True)
        code, lines = h.poll_once()
        assert code == 0, lines[-3:]
        state = h.sim.state()
        assert state.pending == ()
        assert dict(state.acknowledged) == {good[1].id: 1, good[2].id: 1}
        (report,) = state.reports
        assert (report.forsendelse_id, report.permanent) == (bad.id, True)
        assert dict(state.downloads) == {**{x.id: 1 for x in good}, bad.id: 3}
        elsewhere = _show(h, good[0].id)
        assert elsewhere["letter"]["state"] == "acknowledged"
        assert "acknowledged elsewhere" in elsewhere["events"][-1]["reason"]
        assert elsewhere["letter"]["receipt_withheld_at"] is None
        assert _show(h, bad.id)["letter"]["state"] == "reported"
        assert f'svarinn_account_shadow_mode{{account="{account}"}} 0.0' in _metrics(h)
