"""The long-running service around the letters: built once from the config, run for months.

runtime   config ─▶ ledger, clients, adapters, spool, pipeline (closed in order)
daemon    one scheduler job per account ─▶ pool ─▶ pipeline.process; recovery, shutdown,
          riding out ledger outages, liveness as progress
pool      worker threads that cannot hold the process hostage
breaker   a circuit breaker per archive (pure)
metrics   Prometheus metrics; health: /metrics, /healthz, /readyz; sdnotify: systemd
"""
