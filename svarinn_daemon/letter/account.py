"""One account as the pipeline sees it: its client, keys, archives and routes, built once
at start, and narrowed to one letter's route by :meth:`AccountRuntime.for_letter`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from svarinn_daemon.adapters import ArchiveAdapter, LetterOrigin
from svarinn_daemon.config.model import RouteConfig
from svarinn_daemon.keys import KeyPair
from svarinn_daemon.letter.routing import choose_archive
from svarinn_daemon.svarinn import Forsendelse
from svarinn_daemon.svarinn.api import SvarInnApi

__all__ = ["AccountRuntime"]


@dataclass(frozen=True)
class AccountRuntime:
    """What the pipeline needs per account, built once at start."""

    name: str
    client: SvarInnApi  # SvarInn V2 or MottakService v1 over HTTP, or any implementation
    adapter: ArchiveAdapter
    keys: tuple[KeyPair, ...]
    archive: str  # the [archives.NAME] its letters go to
    api: str = "v1"  # the SvarInn API version its client speaks (told to adapters)
    # [[routes]] and every archive they may name; empty: all letters go to ``archive``
    routes: tuple[RouteConfig, ...] = ()
    archives: Mapping[str, ArchiveAdapter] = field(default_factory=lambda: MappingProxyType({}))
    destination: str = ""  # for one letter: where it goes and why (see for_letter)
    receipts: bool = True  # False: shadow mode, receipts are withheld (see pipeline)

    @property
    def origin(self) -> LetterOrigin:
        return LetterOrigin(self.name, self.api)

    def for_letter(self, forsendelse: Forsendelse) -> AccountRuntime:
        """This account as one letter sees it: ``adapter`` and ``archive`` are the ones its
        route chose, ``destination`` says which route (the ledger records it), ``api`` the
        version that listed the letter (after a switch from v1 to v2, v1's letters stay v1)."""
        account = self if forsendelse.api == self.api else replace(self, api=forsendelse.api)
        if not account.routes:
            return account
        chosen = choose_archive(account.routes, account.name, account.archive, forsendelse)
        adapter = (
            account.adapter
            if chosen.archive == account.archive
            else account.archives[chosen.archive]
        )
        return replace(
            account, adapter=adapter, archive=chosen.archive, destination=chosen.describe()
        )
