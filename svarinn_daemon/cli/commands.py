"""The table of commands: name, the module that implements it and its one-line summary.

``svarinn-daemon --help`` needs only this table, so the parser imports a command's module (and
with it the ledger, the daemon, the simulator ...) only for the command that runs; start-up
stays fast (benchmarks/bench_startup.py). The order here is the order in ``--help``.
"""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "check-config": (
        "check_config",
        "validate the configuration and print it with secrets masked",
    ),
    "run": ("run", "run the daemon: poll every account on a schedule and import what arrives"),
    "poll-once": (
        "run",
        "one full cycle: poll, import everything due, send receipts, then exit",
    ),
    "demo": (
        "demo",
        "import generated letters from a local SvarInn simulator, then print a summary",
    ),
    "decrypt": ("decrypt", "decrypt a SvarUt CMS file with one or more private keys"),
    "migrate": ("migrate", "create or upgrade the ledger's tables"),
    "status": (
        "status",
        "count letters per account and state; age of the oldest unfinished letter",
    ),
    "list": ("list_letters", "list letters (filter by --state, --account, --since)"),
    "show": ("show", "show one letter and its event history"),
    "retry": ("retry", "send a failed or retry-scheduled letter back to pending"),
    "simulator": (
        "simulator",
        "run a local SvarInn (MottakService v1) with test letters and fault injection",
    ),
    "alerts": ("alerts", "list the active alerts; send a test message through a notifier"),
}

# Global options that take a value: the word after them is never the command.
VALUE_OPTIONS = ("--config", "--log-level", "--log-format")


def summary(name: str) -> str:
    return COMMANDS[name][1]


def command_in(argv: list[str]) -> str | None:
    """The command named in ``argv``: the first word that is not an option or an option's
    value. None when there is none (``--help``, ``--version``, a usage error)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--":
            return None
        if word.startswith("-"):
            # "-c PATH", "--config PATH" or an abbreviation ("--conf PATH"); "-cPATH" and
            # "--config=PATH" carry their value.
            skip = word == "-c" or (
                word.startswith("--")
                and "=" not in word
                and len(word) > 2
                and any(option.startswith(word) for option in VALUE_OPTIONS)
            )
            continue
        return word if word in COMMANDS else None
    return None
