"""``svarinn-daemon demo``: the whole daemon against a local simulator, in one command."""

from __future__ import annotations

import argparse
import contextlib
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svarinn_daemon.cli.commands import summary
from svarinn_daemon.cli.progress import REDRAW_EVERY, Progress
from svarinn_daemon.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from svarinn_daemon.cli import Context
    from svarinn_daemon.simulator import SimLetter, Simulator

MAX_ROUNDS = 20


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help=summary("demo"),
        description="Start the SvarInn simulator on loopback with generated letters (single "
        "PDFs and zips of several PDFs, encrypted exactly as SvarUt does), write a config with "
        "a SQLite ledger and a filesystem archive, run the daemon until every letter is "
        "imported and acknowledged, print a summary and stop. Needs no configuration file. On a "
        "terminal, standard error shows a progress line and the log goes to DIR/demo.log.",
    )
    parser.add_argument("--letters", type=int, default=20, help="how many letters (default 20)")
    parser.add_argument("--size", default="200KiB", help="size of each document (default 200KiB)")
    parser.add_argument(
        "--archive",
        choices=("filesystem", "gi-arkiv", "p360", "noark5"),
        default="filesystem",
        help="where letters go: a directory (default), a local GI-Arkiv 1.1 archive (the "
        "gi-arkiv adapter; every request validated against the standard's schema), a local "
        "Public 360 SIF (p360) or a local Noark 5 tjenestegrensesnitt (noark5)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to put the ledger, archive and config (default: a new temporary directory)",
    )
    parser.set_defaults(func=run, logs_to_stderr=True)


def run(ctx: Context) -> int:
    from svarinn_daemon.config import parse_size

    args = ctx.args
    try:
        size = parse_size(args.size)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--size") from None
    if not 1 <= args.letters <= 100_000:
        raise ConfigError("must be from 1 to 100000", key="--letters")
    root: Path = args.dir or Path(tempfile.mkdtemp(prefix="svarinn-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    progress = Progress.for_stream(ctx.stderr)
    log_path = root / "demo.log"
    with contextlib.ExitStack() as stack:
        if progress.enabled:
            # A person at a terminal sees the progress line and the summary; the daemon's
            # log lines (JSON, as anywhere that is not a terminal) go to a file.
            ctx.setup_logging(stream=stack.enter_context(log_path.open("a", encoding="utf-8")))
        return _demo(ctx, args, root, size, progress, log_path if progress.enabled else None)


def _demo(
    ctx: Context,
    args: argparse.Namespace,
    root: Path,
    size: int,
    progress: Progress,
    log_path: Path | None,
) -> int:
    from svarinn_daemon.config import load_config
    from svarinn_daemon.service.daemon import Daemon
    from svarinn_daemon.service.runtime import build_runtime
    from svarinn_daemon.simulator import Simulator
    from svarinn_daemon.simulator.identity import generate_identity, write_operator_files

    out = ctx.stdout
    identity = generate_identity("svarinn-demo")
    with contextlib.ExitStack() as stack:
        sim = stack.enter_context(Simulator(identity.certificate, work_dir=root / "simulator"))
        arkiv, table = _archive(stack, args.archive, root)
        zips = args.letters // 4
        letters = sim.generate(args.letters - zips, size)
        letters += sim.generate(zips, size, files_per_letter=3)
        files = write_operator_files(
            root,
            base_url=sim.base_url,
            api="v2",
            username=sim.username,
            password=sim.password,
            identity=identity,
            account="demo",
            archive_table=table,
        )
        print(
            f"simulator: {sim.base_url} with {len(letters)} letters "
            f"({zips} of them zips of 3 documents)",
            file=out,
        )
        config = load_config(files.config, environ=ctx.environ)
        ctx.setup_logging(config)
        started = time.perf_counter()
        with _progress_of(sim, letters, progress), build_runtime(config) as runtime:
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
    if arkiv is None:
        print(
            f"archive:   {root / 'archive'}  (one directory per letter, with forsendelse.json)",
            file=out,
        )
    else:
        print(f"archive:   {_archive_summary(arkiv)}", file=out)
    print(f"ledger:    {root / 'state' / 'ledger.sqlite3'}", file=out)
    if log_path is not None:
        print(f"log:       {log_path}", file=out)
    print(f"config:    {files.config}", file=out)
    print(f"try:       svarinn-daemon --config {files.config} status", file=out)
    return 0 if report.ok and acknowledged == len(letters) else 1


def _archive(stack: contextlib.ExitStack, kind: str, root: Path) -> tuple[Any | None, str | None]:
    """The local archive ``--archive`` names, started, and its ``[archives.default]``."""
    if kind == "filesystem":
        return None, None
    password = secrets.token_urlsafe(16)
    secret = root / f"{kind}-secret"
    secret.write_text(password + "\n", encoding="utf-8")
    secret.chmod(0o600)
    if kind == "noark5":
        from svarinn_daemon.archives.noark5 import LocalNoark5

        n5 = stack.enter_context(LocalNoark5(token=password))
        return (
            n5,
            f"""[archives.default]
adapter = "noark5"
url = "{n5.url}"
token_file = "{secret}"
arkivdel = "Sakarkiv"
""",
        )
    if kind == "p360":
        from svarinn_daemon.archives.p360 import LocalP360

        p360 = stack.enter_context(LocalP360(authkey=password))
        return (
            p360,
            f"""[archives.default]
adapter = "p360"
url = "{p360.url}"
authkey_file = "{secret}"
external_key_field = "SvarUtForsendelseId"
""",
        )
    from svarinn_daemon.archives.giarkiv import LocalGiArkiv

    arkiv = stack.enter_context(LocalGiArkiv(username="svarinn-demo", password=password))
    return (
        arkiv,
        f"""[archives.default]
adapter = "gi-arkiv"
url = "{arkiv.url}"
innsyn_url = "{arkiv.innsyn_url}"
username = "svarinn-demo"
password_file = "{secret}"
arkivdel = "SAK"
""",
    )


def _archive_summary(arkiv: Any) -> str:
    """What the local archive holds, in its own words."""
    if hasattr(arkiv, "arkiv"):
        posts = arkiv.all("journalpost")
        cases = ", ".join(sorted({p.parent.fields["tittel"] for p in posts})) or "-"
        files = sum(1 for o in arkiv.all("dokumentobjekt") if o.content is not None)
        return (
            f"local Noark 5 at {arkiv.url}: {len(posts)} journalposts, {files} files, in "
            f"{cases} (it stopped with the demo)"
        )
    if hasattr(arkiv, "journalposts"):
        cases = ", ".join(sorted({p.case.tittel for p in arkiv.journalposts})) or "-"
        documents = sum(len(p.documents) for p in arkiv.journalposts)
        return (
            f"local GI-Arkiv at {arkiv.url}: {len(arkiv.journalposts)} journalposts, "
            f"{documents} documents, in {cases} (it stopped with the demo)"
        )
    cases = ", ".join(sorted({d.case.title for d in arkiv.documents})) or "-"
    files = sum(len(d.files) for d in arkiv.documents)
    return (
        f"local Public 360 at {arkiv.url}: {len(arkiv.documents)} documents, {files} files, "
        f"in {cases} (it stopped with the demo)"
    )


@contextlib.contextmanager
def _progress_of(sim: Simulator, letters: list[SimLetter], progress: Progress) -> Iterator[None]:
    """While the daemon works, redraw the progress line from what SvarInn (the simulator)
    has been told: a letter counts once it is acknowledged, with its plaintext bytes."""
    if not progress.enabled:
        yield
        return
    sizes = {letter.id: sum(f.size for f in letter.files) for letter in letters}
    progress.total_letters = len(sizes)
    progress.total_bytes = sum(sizes.values())
    progress.start()
    stop = threading.Event()

    def draw(force: bool = False) -> None:
        acknowledged = sim.state().acknowledged
        done = [size for letter_id, size in sizes.items() if acknowledged.get(letter_id)]
        progress.update(sum(done), len(done), force=force)

    def redraw() -> None:
        while not stop.wait(REDRAW_EVERY):
            draw()

    ticker = threading.Thread(target=redraw, name="demo-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        draw(force=True)
        progress.close()
