"""A fixed pool of worker threads that can never hold the process hostage.

:class:`concurrent.futures.ThreadPoolExecutor` joins its workers when the interpreter exits,
so one worker wedged in an adapter call would keep ``poll-once`` (or a stopping ``run``)
alive forever. Here the workers are daemon threads: once the daemon has decided to stop and
has released what it could, a worker that is still stuck dies with the process, as it would
under SIGKILL, which the ledger's leases are made for.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["WorkerPool"]

T = TypeVar("T")
_Item = tuple[Future[Any], Callable[[], Any]]


class WorkerPool:
    def __init__(self, size: int, *, name: str):
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(size)
        ]
        self._closed = False
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        future: Future[T] = Future()
        self._queue.put((future, fn))
        return future

    def shutdown(self) -> None:
        """Cancel what has not started; the workers end when their current work does."""
        self._closed = True
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:  # the future carries it to whoever waits
                future.set_exception(exc)
            else:
                future.set_result(result)
