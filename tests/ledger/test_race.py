"""Two OS processes on one PostgreSQL race over 500 letters: no letter is claimed twice."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest
import sqlalchemy as sa

from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.ledger import Sighting, State, open_ledger
from tests.support.ledger_support import race_worker

LETTERS = 500


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_two_processes_never_claim_the_same_letter(postgres_url: str) -> None:
    ledger = open_ledger(LedgerConfig(url=postgres_url), migrate_schema=True)
    for page in range(LETTERS // 200 + 1):
        ids = range(page * 200, min(LETTERS, (page + 1) * 200))
        ledger.record_seen_many("kommune", [Sighting(f"f-{i}") for i in ids])
    spawn = multiprocessing.get_context("spawn")
    ready, out, go = spawn.Queue(), spawn.Queue(), spawn.Event()
    procs = [
        spawn.Process(target=race_worker, args=(postgres_url, name, limit, ready, go, out))
        for name, limit in (("proc-a", 1), ("proc-b", 3))
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    go.set()
    results = dict(out.get(timeout=90) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    all_claims = results["proc-a"] + results["proc-b"]
    assert results["proc-a"]
    assert results["proc-b"], "the race did not happen: one process took every letter"
    doubles = [i for i, n in Counter(all_claims).items() if n > 1]
    assert doubles == []
    assert len(all_claims) == LETTERS
    backlog = ledger.backlog()
    assert backlog.total(State.ACKNOWLEDGED) == LETTERS
    with ledger.engine.connect() as conn:
        claim_events = conn.execute(
            sa.text("SELECT count(*) FROM forsendelse_events WHERE trigger = 'claim'")
        ).scalar_one()
    assert claim_events == LETTERS
    ledger.close()
