"""Reading an adapter's options table: the option reader, with errors that name
``archives.NAME.KEY`` (through ``AdapterContext.option_error``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from svarinn_daemon.adapters.base import AdapterContext
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
