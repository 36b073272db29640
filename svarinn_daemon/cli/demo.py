"""``svarinn-daemon demo``: the whole daemon against a local simulator, in one command."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from svarinn_daemon.cli.commands import summary
from svarinn_daemon.errors import ConfigError

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context

MAX_ROUNDS = 20


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help=summary("demo"),
        description="Start the SvarInn simulator on loopback with generated letters (single "
        "PDFs and zips of several PDFs, encrypted exactly as SvarUt does), write a config with "
        "a SQLite ledger and a filesystem archive, run the daemon until every letter is "
        "imported and acknowledged, print a summary and stop. Needs no configuration file.",
    )
    parser.add_argument("--letters", type=int, default=20, help="how many letters (default 20)")
    parser.add_argument("--size", default="200KiB", help="size of each document (default 200KiB)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to put the ledger, archive and config (default: a new temporary directory)",
    )
    parser.set_defaults(func=run, logs_to_stderr=True)


def run(ctx: Context) -> int:
    from svarinn_daemon.config import load_config, parse_size
    from svarinn_daemon.daemon import Daemon
    from svarinn_daemon.runtime import build_runtime
    from svarinn_daemon.simulator import Simulator
    from svarinn_daemon.simulator.identity import generate_identity, write_operator_files

    args = ctx.args
    try:
        size = parse_size(args.size)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--size") from None
    if not 1 <= args.letters <= 100_000:
        raise ConfigError("must be from 1 to 100000", key="--letters")
    root: Path = args.dir or Path(tempfile.mkdtemp(prefix="svarinn-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    out = ctx.stdout
    identity = generate_identity("svarinn-demo")
    with Simulator(identity.certificate, work_dir=root / "simulator") as sim:
        zips = args.letters // 4
        letters = sim.generate(args.letters - zips, size)
        letters += sim.generate(zips, size, files_per_letter=3)
        files = write_operator_files(
            root,
            base_url=sim.base_url,
            username=sim.username,
            password=sim.password,
            identity=identity,
            account="demo",
        )
        print(
            f"simulator: {sim.base_url} with {len(letters)} letters "
            f"({zips} of them zips of 3 documents)",
            file=out,
        )
        config = load_config(files.config, environ=ctx.environ)
        ctx.setup_logging(config)
        started = time.perf_counter()
        with build_runtime(config) as runtime:
            daemon = Daemon(runtime)
            daemon.recover()
            report = daemon.run_once()
            rounds = 1
            while not report.ok and rounds < MAX_ROUNDS:
                time.sleep(0.5)  # letters waiting for a retry
                report = daemon.run_once()
                rounds += 1
            daemon.shutdown()
        elapsed = time.perf_counter() - started
        state = sim.state()
    plain_bytes = sum(f.size for letter in letters for f in letter.files)
    acknowledged = sum(1 for letter in letters if state.acknowledged.get(letter.id))
    print(
        f"imported:  {acknowledged} of {len(letters)} letters, {plain_bytes / 1e6:.1f} MB, in "
        f"{elapsed:.1f} s ({acknowledged / elapsed:.1f} letters/s, "
        f"{plain_bytes / 1e6 / elapsed:.1f} MB/s)",
        file=out,
    )
    print(
        f"archive:   {root / 'archive'}  (one directory per letter, with forsendelse.json)",
        file=out,
    )
    print(f"ledger:    {root / 'state' / 'ledger.sqlite3'}", file=out)
    print(f"config:    {files.config}", file=out)
    print(f"try:       svarinn-daemon --config {files.config} status", file=out)
    return 0 if report.ok and acknowledged == len(letters) else 1
