"""systemd's notify protocol (READY=1, STATUS=, WATCHDOG=1, STOPPING=1) without a library.

A no-op when $NOTIFY_SOCKET is unset, so the same code runs under systemd, in a container
and in tests. The socket path is read from the environment mapping passed in at start.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from datetime import timedelta


class Notifier:
    def __init__(self, environ: Mapping[str, str]):
        address = environ.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with a leading "@" and addressed with a NUL byte.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        self.watchdog_interval: timedelta | None = (
            timedelta(microseconds=int(usec) // 2) if usec.isdigit() and int(usec) > 0 else None
        )

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines; False when not under systemd or the send failed."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(lines).encode("utf-8"))
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")
