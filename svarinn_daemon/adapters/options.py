"""Reading an adapter's options table: the option reader, with errors that name
``archives.NAME.KEY`` (through ``AdapterContext.option_error``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from svarinn_daemon.adapters.base import AdapterContext
from svarinn_daemon.common import untrusted_directory
from svarinn_daemon.config.reader import MISSING, POSITIVE, ContextOptions

__all__ = ["AdapterOptions"]


class AdapterOptions(ContextOptions):
    """One ``[archives.NAME]`` table being read. Secrets' ``_env`` variants are read from the
    process environment, as the adapter runs in it."""

    context: AdapterContext

    def __init__(self, options: Mapping[str, Any], context: AdapterContext):
        super().__init__(options, context, os.environ)

    def duration(
        self, key: str, default: Any = MISSING, minimum: timedelta | None = POSITIVE
    ) -> timedelta:
        """An adapter's durations (timeouts) are all longer than zero."""
        return super().duration(key, default, minimum)

    def work_directory(self) -> Path:
        """``work_directory``: where the adapter gathers a letter (default under the state
        directory, by the archive's name); refused unless only the daemon's user can write
        it and its parents, since another user could swap a letter's files there."""
        context = self.context
        work = self.path(
            "work_directory", context.state_directory / "adapters" / context.archive_name
        )
        if why := untrusted_directory(work):
            raise context.option_error("work_directory", f"is not private: {why}")
        return work
