"""The stages of one letter, in the order :mod:`.pipeline` puts them:

    poll ─▶ ledger.record_seen ─▶ ledger.claim
                                      │
    stages.download:  client.download (stream) ─▶ decode (cms + sha256) ─▶ spool (0600)
                                      │
    stages.archive:   verify (filmetadata, zip entries) ─▶ adapter transaction ─▶ commit
                                      │
    ledger.mark_archived ─▶ client.acknowledge (kvitterMottak) ─▶ ledger.mark_acknowledged

    on failure: retry.decide (pure) ─▶ ledger.schedule_retry | mark_failed_permanently
                                        ─▶ client.report_failure (mottakFeilet)

Only :mod:`.pipeline` knows the order; the other modules do not call each other sideways.
:mod:`.inflight` stops letters in flight and watches that they move; :mod:`.work` holds the
records the pipeline and the service pass between them.
"""
