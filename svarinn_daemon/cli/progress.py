"""A progress line for a person at a terminal: letters, bytes, rate and time left.

Only when the stream is a terminal (``Progress.for_stream``); anywhere else (a pipe, a file,
the journal) nothing is written, so logs and output stay what scripts expect. The line is
redrawn in place (carriage return, erase to end of line) at most ten times a second and
erased by ``close()``, so what stays on the screen is the command's own summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

REDRAW_EVERY = 0.1  # seconds
ERASE = "\r\x1b[K"


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def human_seconds(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """``update(done_bytes, letters=...)`` redraws; ``close()`` erases. A disabled one
    (``enabled=False``) does nothing at all."""

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool,
        total_bytes: int | None = None,
        total_letters: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream
        self.enabled = enabled
        self.total_bytes = total_bytes
        self.total_letters = total_letters
        self._clock = clock
        self._started = clock()
        self._drawn = -REDRAW_EVERY
        self._shown = False

    @classmethod
    def for_stream(
        cls, stream: TextIO, *, total_bytes: int | None = None, total_letters: int | None = None
    ) -> Progress:
        """Enabled when ``stream`` is a terminal."""
        try:
            terminal = stream.isatty()
        except (AttributeError, ValueError):  # closed, or not a real stream
            terminal = False
        return cls(stream, enabled=terminal, total_bytes=total_bytes, total_letters=total_letters)

    def start(self) -> None:
        """Measure the rate from now (the work begins after some preparation)."""
        self._started = self._clock()

    def line(self, done_bytes: int, letters: int | None = None) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        rate = done_bytes / elapsed
        parts = []
        if letters is not None:
            of = f"/{self.total_letters}" if self.total_letters is not None else ""
            parts.append(f"{letters}{of} letters")
        size = human_bytes(done_bytes)
        if self.total_bytes:
            size += (
                f" of {human_bytes(self.total_bytes)} ({100 * done_bytes / self.total_bytes:.0f}%)"
            )
        parts.append(size)
        parts.append(f"{human_bytes(rate)}/s")
        if self.total_bytes and rate > 0 and done_bytes < self.total_bytes:
            parts.append(f"about {human_seconds((self.total_bytes - done_bytes) / rate)} left")
        return ", ".join(parts)

    def update(self, done_bytes: int, letters: int | None = None, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if not force and now - self._drawn < REDRAW_EVERY:
            return
        self._drawn = now
        self._shown = True
        self.stream.write(ERASE + self.line(done_bytes, letters))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._shown:
            self.stream.write(ERASE)
            self.stream.flush()
            self._shown = False
