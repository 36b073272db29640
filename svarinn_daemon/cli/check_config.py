"""``svarinn-daemon check-config``: validate the file, load every key, print the result."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from svarinn_daemon.cli.commands import summary
from svarinn_daemon.errors import ConfigError, DaemonError

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context
    from svarinn_daemon.config import Config

EXPIRY_WARNING = timedelta(days=30)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check-config",
        help=summary("check-config"),
        description="Validate the configuration file, load every private key and certificate, "
        "check every notifier's and archive adapter's options, and print the effective "
        "configuration with secrets masked. Warns when a private key "
        "file is readable by group or others, and when a certificate expires within 30 days.",
    )
    parser.add_argument(
        "--strict-permissions",
        action="store_true",
        help="fail (exit 2) instead of warning when a private key file is group/other readable",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print only problems")
    parser.add_argument(
        "--online",
        action="store_true",
        help="also call the listing once per account to prove its credentials (reads the "
        "list only; nothing is downloaded or acknowledged), probe every archive that can "
        "be probed (filesystem: write and remove a file; command: check_command, http: "
        "status_url, each about a made-up id that must be 'not archived'; gi-arkiv, p360, "
        "noark5: a look-up in the archive and its arkivdel or field; fiks-arkiv: the archive "
        "account's certificate from Fiks IO's catalogue), and connect to the "
        "ledger: which PostgreSQL host answered (of a multi-host URL) and whether it takes "
        "writes (not a standby in recovery, not read-only); a SQLite file is only looked at",
    )
    parser.set_defaults(func=run, logs_to_stderr=True)


def audit(config: Config, now: datetime) -> tuple[list[str], list[str]]:
    """Return (warnings, permission problems) for the loaded configuration."""
    from svarinn_daemon.keys import certificate_warnings

    warnings = list(config.warnings)
    permissions: list[str] = []
    for account in config.accounts:
        for key in account.keys:
            if key.key_mode is not None and key.key_mode & 0o077:
                permissions.append(
                    f"accounts.{account.name}: private key {key.key_path} has mode "
                    f"{key.key_mode:04o}; it should be readable by the daemon's user only "
                    f"(chmod 600)"
                )
            warnings += [
                f"accounts.{account.name}: {w}"
                for w in certificate_warnings(key.pair, now, within=EXPIRY_WARNING)
            ]
    return warnings, permissions


def check_notifiers(config: Config) -> None:
    """Create (and close) every notifier: its factory checks its options; nothing is sent."""
    from svarinn_daemon.alerts.notifiers.registry import NotifierRegistry

    registry = NotifierRegistry()
    for notifier_config in config.notifiers:
        registry.create(
            notifier_config, source=config.source, base_dir=config.source.parent
        ).close()


def check_archives(config: Config, probe: Callable[[str, Any], None] | None = None) -> list[str]:
    """Create (and close) every archive adapter: its factory checks its options; nothing is
    stored. Returns what the adapters warn of (``warnings()``, where an adapter has it);
    ``probe`` is called with each adapter (``--online``)."""
    from svarinn_daemon.adapters import AdapterRegistry
    from svarinn_daemon.adapters.base import AdvisingAdapter, timeout_past_lease

    registry = AdapterRegistry()
    warnings: list[str] = []
    for archive in config.archives.values():
        adapter = registry.create(
            archive,
            state_directory=config.state_directory,
            base_dir=config.source.parent,
            source=config.source,
            worker_id=config.daemon.worker_id,
        )
        try:
            if isinstance(adapter, AdvisingAdapter):
                warnings += [f"archives.{archive.name}: {w}" for w in adapter.warnings()]
            if why := timeout_past_lease(adapter, config.daemon.lease):
                raise ConfigError(
                    why, source=str(config.source), key=f"archives.{archive.name}.timeout"
                )
            if probe is not None:
                probe(archive.name, adapter)
        finally:
            adapter.close()
    return warnings


def _probe_archive(name: str, adapter: Any, ctx: Context) -> bool:
    """``--online``: the adapter's probe (a made-up id must be "not archived"); False when
    the archive does not answer as it should."""
    from svarinn_daemon.adapters import probe_archive

    try:
        answered = probe_archive(adapter)
    except DaemonError as exc:
        print(f"archive {name}: {exc.kind}: {exc}", file=ctx.stderr)
        return False
    if answered:
        print(f"archive {name}: answers (its probe passed: nothing stored)", file=ctx.stderr)
    else:
        print(f"archive {name}: cannot be asked without a letter (no probe)", file=ctx.stderr)
    return True


def run(ctx: Context) -> int:
    from svarinn_daemon.config import render_config

    config = ctx.config()
    check_notifiers(config)
    archive_warnings = check_archives(config)
    warnings, permissions = audit(config, datetime.now(UTC))
    warnings += archive_warnings
    for line in warnings + permissions:
        print(f"warning: {line}", file=ctx.stderr)
    if permissions and ctx.args.strict_permissions:
        print(
            "svarinn-daemon: refusing: --strict-permissions and a private key is readable "
            "by others",
            file=ctx.stderr,
        )
        return 2
    if not ctx.args.quiet:
        ctx.stdout.write(render_config(config))
    print(
        f"configuration {config.source} is valid ({len(config.accounts)} account(s))",
        file=ctx.stderr,
    )
    if ctx.args.online:
        failed: list[str] = []

        def probe(name: str, adapter: Any) -> None:
            if not _probe_archive(name, adapter, ctx):
                failed.append(name)

        check_archives(config, probe)
        ledger_ok = check_ledger(config, ctx)
        return max(check_online(config, ctx), 1 if failed or not ledger_ok else 0)
    return 0


def check_ledger(config: Config, ctx: Context) -> bool:
    """``--online``: the ledger's server answers and takes writes; False when not."""
    from svarinn_daemon.ledger.server import ask_server

    try:
        answer = ask_server(config.ledger)
    except DaemonError as exc:
        print(f"ledger: {exc.kind}: {exc}", file=ctx.stderr)
        return False
    if answer.in_recovery is None:
        state = "exists" if answer.exists else "not there yet: the first run creates it"
        print(f"ledger: SQLite file {answer.where} ({state})", file=ctx.stderr)
        return True
    if answer.writable:
        print(f"ledger: {answer.where} answered and takes writes (a primary)", file=ctx.stderr)
        return True
    why = "a standby in recovery" if answer.in_recovery else "its sessions are read-only"
    print(
        f"ledger: {answer.where} answered but takes no writes ({why}): give every host in "
        "the URL with target_session_attrs=read-write, or point it at the primary",
        file=ctx.stderr,
    )
    return False


def _other_v2_base(base_url: str) -> str:
    """KS documents two bases for SvarInn V2; after a 404 on one, name the other."""
    head, _, tail = base_url.rpartition("/")
    other = {"api": "tjenester", "tjenester": "api"}.get(tail)
    if other is None:
        return (
            "SvarInn V2 has no listing under this base_url; KS documents two bases, "
            '"https://svarut.ks.no/api" and "https://svarut.ks.no/tjenester": try the other'
        )
    return (
        f"SvarInn V2 has no listing under {base_url}; KS also documents the base "
        f'"{head}/{other}": try base_url = "{head}/{other}"'
    )


def check_online(config: Config, ctx: Context) -> int:
    """One listing call per account (hentNyeForsendelser in v1, GET svarinn/v2/forsendelser
    in v2): proves base URL, TLS and credentials."""
    from svarinn_daemon.service.runtime import connect

    failed = 0
    for account in config.accounts:
        try:
            with connect(account) as client:
                listing = client.listing()
        except DaemonError as exc:
            failed += 1
            print(f"account {account.name}: {exc.kind}: {exc}", file=ctx.stderr)
            if account.api == "v2" and getattr(exc, "status_code", None) == 404:
                print(
                    f"account {account.name}: {_other_v2_base(account.base_url)}", file=ctx.stderr
                )
            continue
        print(
            f"account {account.name}: {account.base_url} accepted the credentials; "
            f"{len(listing.letters)} letter(s) waiting",
            file=ctx.stderr,
        )
        for item in listing.rejected:  # the daemon skips these; SvarUt will send them on
            print(f"account {account.name}: warning: {item.error}", file=ctx.stderr)
    return 1 if failed else 0
