"""A throwaway PostgreSQL server for the tests and benchmarks, and its streaming standby.

initdb refuses to run as root, so as root the server runs as the ``postgres`` user through
``runuser``, in a temporary directory it owns, on 127.0.0.1 and a free port. ``standby()``
makes a second cluster on loopback from it with ``pg_basebackup -R`` (asynchronous streaming
replication), which ``promote()`` turns into a primary: a failover, for real.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.loopback import free_port

HOW_TO_ENABLE = (
    "PostgreSQL is not installed, so the PostgreSQL tests are skipped; "
    "install it with `apt-get install -y postgresql` to run them (CI does)"
)


def find_bindir() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (Debian layout first)."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    return None


class PostgresServer:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="svarinn-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.databases_created = 0

    def _run(self, *argv: str, check: bool = True) -> int:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 and check:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}\n{tail}")
        return result.returncode

    def _own_root(self) -> None:
        if self.as_root:
            shutil.chown(self.root, user="postgres", group="postgres")

    def start(self) -> None:
        self._own_root()
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.resume()

    def halt(self) -> None:
        """Stop the server the way a restart or failover does, keeping its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the server (again, after halt) on its port."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        log = str(self.root / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", "-o", options, "start"
        )

    def kill(self) -> None:
        """Stop at once, as a host that dies does (immediate: no checkpoint, nothing more
        sent to a standby); its data stays, as a dead host's disk does."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def standby(self) -> PostgresServer:
        """A streaming standby of this server (``pg_basebackup -R``: standby.signal and
        primary_conninfo written), started on a port of its own; ``stop()`` it as well."""
        standby = PostgresServer(self.bindir)
        standby._own_root()
        standby._run(
            "pg_basebackup",
            "-D",
            str(standby.data),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )
        standby.resume()
        return standby

    def promote(self) -> None:
        """End a standby's recovery: from now on it takes writes (waits until it does)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def query(self, sql: str, database: str = "postgres") -> object:
        """The first column of the first row, or None (autocommit, as postgres)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        ) as conn:
            cursor = conn.execute(sql)  # type: ignore[arg-type]  # the tests' own SQL
            row = cursor.fetchone() if cursor.description is not None else None
        return None if row is None else row[0]

    def wait_replayed_by(self, standby: PostgresServer, timeout: float = 60) -> None:
        """Until ``standby`` has replayed everything this primary wrote so far (the insert
        position: this server commits asynchronously, so the flushed one may lag a commit)."""
        target = self.query("SELECT pg_current_wal_insert_lsn()::text")
        deadline = time.monotonic() + timeout
        while not standby.query(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not replay up to {target}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop (if it runs, a killed or halted one may not) and remove everything."""
        try:
            if self._run("pg_ctl", "-D", str(self.data), "status", check=False) == 0:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def multi_host_url(self, database: str, *others: PostgresServer) -> str:
        """libpq's several hosts in one URL; the connection goes to the writable one."""
        hosts = "&".join(f"host=127.0.0.1:{s.port}" for s in (self, *others))
        return f"postgresql+psycopg://postgres@/{database}?{hosts}&target_session_attrs=read-write"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases_created += 1
        return self.url(name)


def throwaway_server() -> PostgresServer:
    """A started server of this test's own; skipped (failed under CI=true) without
    PostgreSQL."""
    import pytest

    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail(HOW_TO_ENABLE + " -- and CI=true forbids skipping them")
        pytest.skip(HOW_TO_ENABLE)
    server = PostgresServer(bindir)
    server.start()
    return server
