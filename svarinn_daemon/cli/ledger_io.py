"""What the ledger commands share: opening the ledger (exit 2 when it cannot be used) and
rendering letters and events as readable text or stable JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from svarinn_daemon.config.units import format_duration
from svarinn_daemon.errors import LedgerUnavailableError, SchemaMismatchError
from svarinn_daemon.ledger import Ledger, Letter, LetterEvent, State, open_ledger
from svarinn_daemon.ledger.records import ArchiveMessage

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context

EXIT_CANNOT_START = 2


def with_ledger(ctx: Context, body: Callable[[Ledger], int], *, migrate: bool = False) -> int:
    """Open the configured ledger and run ``body``; a database that cannot be reached, or
    whose schema is foreign, older or newer, is a clear message and exit code 2."""
    config = ctx.config(keys=False)
    try:
        ledger = open_ledger(config.ledger, migrate_schema=migrate)
    except (LedgerUnavailableError, SchemaMismatchError) as exc:
        print(f"svarinn-daemon: cannot use the ledger: {exc}", file=ctx.stderr)
        return EXIT_CANNOT_START
    with ledger:
        return body(ledger)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def human_time(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def human_age(value: timedelta) -> str:
    return format_duration(timedelta(seconds=int(value.total_seconds())))


WITHHELD = "receipt withheld (shadow mode)"


def state_text(letter: Letter) -> str:
    """The state as people read it: an archived letter of a shadow-mode account says that
    its receipt is withheld (SvarUt still lists it for the other importer)."""
    if letter.receipt_withheld:
        return f"{letter.state.value}, {WITHHELD}"
    if letter.state is State.SENT and letter.next_attempt_at is not None:
        return (
            f"sent, waiting for the archive's kvittering (sent again from "
            f"{human_time(letter.next_attempt_at)} if none comes)"
        )
    return letter.state.value


def letter_json(letter: Letter, *, raw: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": letter.id,
        "api": letter.api,  # the SvarInn version that listed it (a ledger column)
        "account": letter.account,
        "forsendelse_id": letter.forsendelse_id,
        "state": letter.state.value,
        "sender": letter.sender,
        "title": letter.title,
        "declared_size": letter.declared_size,
        "file_count": letter.file_count,
        "expected_sha256": list(letter.expected_sha256),
        "actual_sha256": list(letter.actual_sha256),
        "actual_size": letter.actual_size,
        "verified": letter.verified,
        "archive_ref": letter.archive_ref,
        "attempts": letter.attempts,
        "download_attempts": letter.download_attempts,  # downloads that came back corrupt
        "archive": letter.archive,  # the archive [[routes]] chose (None: not routed yet)
        "last_error_kind": letter.last_error_kind,
        "last_error_message": letter.last_error_message,
        "claimed_by": letter.claimed_by,
        "lease_expires_at": iso(letter.lease_expires_at),
        "next_attempt_at": iso(letter.next_attempt_at),
        "due_at": iso(letter.due_at),
        "seen_at": iso(letter.seen_at),
        "claimed_at": iso(letter.claimed_at),
        "archived_at": iso(letter.archived_at),
        "acknowledged_at": iso(letter.acknowledged_at),
        "failed_at": iso(letter.failed_at),
        "reported_at": iso(letter.reported_at),
        "sent_at": iso(letter.sent_at),  # last sent to an archive that answers later
        "updated_at": iso(letter.updated_at),
        "receipt_withheld_at": iso(letter.receipt_withheld_at),
    }
    if raw:
        out["raw"] = dict(letter.raw)
    return out


def message_json(message: ArchiveMessage) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "archive": message.archive,
        "sent_at": iso(message.sent_at),
        "reply": message.reply,
        "reply_at": iso(message.reply_at),
        "reference": message.reference,
        "detail": message.detail,
    }


def event_json(event: LetterEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": iso(event.at),
        "trigger": event.trigger.value,
        "from_state": event.from_state.value if event.from_state else None,
        "to_state": event.to_state.value,
        "worker_id": event.worker_id,
        "reason": event.reason,
    }


def dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def safe_text(value: object) -> str:
    """``value`` for a terminal: titles, senders, ids and references are strangers' words,
    so every control, format or separator character (an escape sequence that recolours the
    screen or writes the clipboard, OSC 52; a bidi override) is shown as its escape."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        for c in text
    )


def table(rows: list[list[str]]) -> str:
    """Left-aligned columns, the first row a header; every cell through :func:`safe_text`."""
    rows = [[safe_text(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )
