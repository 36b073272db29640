"""A throwaway RabbitMQ broker for the tests, as Fiks IO runs one: Debian's ``rabbitmq-server``.

The broker runs as the ``rabbitmq`` user (through ``runuser`` when the tests run as root) in a
temporary directory, with its own node name, ports and epmd on loopback, so it never meets a
broker the machine runs. Who may connect and what each may read or write is asked of an HTTP
endpoint (RabbitMQ's ``rabbitmq_auth_backend_http`` plugin), the local Fiks IO's: that is how
a Maskinporten token inside the AMQP password is checked, as Fiks IO does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from svarinn_daemon.simulator.tls import ServerTls, make_server_tls
from tests.support.loopback import free_port

SBIN = Path("/usr/lib/rabbitmq/bin")
HOW_TO_ENABLE = (
    "RabbitMQ is not installed, so the Fiks IO tests are skipped; install it with "
    "`apt-get install -y rabbitmq-server` to run them (CI does)"
)


def find_server() -> Path | None:
    server = SBIN / "rabbitmq-server"
    return server if server.exists() else None


class RabbitBroker:
    """One broker node; ``auth_url`` is the HTTP auth backend's base URL (``…/user``,
    ``…/vhost``, ``…/resource``, ``…/topic`` are asked under it)."""

    def __init__(self, auth_url: str):
        self.root = Path(tempfile.mkdtemp(prefix="svarinn-rabbitmq-"))
        self.port = free_port()
        self.tls_port = free_port()
        self.tls: ServerTls | None = None
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"svarinn{uuid.uuid4().hex[:8]}@localhost"
        self.auth_url = auth_url.rstrip("/")
        self.as_root = os.geteuid() == 0
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """The AMQP URL without credentials (the client adds its own)."""
        return f"amqp://127.0.0.1:{self.port}/%2F"

    @property
    def tls_url(self) -> str:
        """The same broker over TLS (its certificate from a throwaway CA: ``tls``)."""
        return f"amqps://127.0.0.1:{self.tls_port}/%2F"

    def _env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.root / "pid"),
        }

    def _command(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "rabbitmq", "--", *argv] if self.as_root else list(argv)

    def start(self, timeout: float = 60.0) -> None:
        base = self.auth_url
        self.tls = make_server_tls(self.root / "tls", prefix="rabbitmq")
        (self.root / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = 127.0.0.1:{self.port}",
                    f"listeners.ssl.default = 127.0.0.1:{self.tls_port}",
                    f"ssl_options.cacertfile = {self.tls.ca_certificate}",
                    f"ssl_options.certfile = {self.tls.server_certificate}",
                    f"ssl_options.keyfile = {self.tls.server_key}",
                    "ssl_options.verify = verify_none",
                    "ssl_options.fail_if_no_peer_cert = false",
                    "auth_backends.1 = http",
                    "auth_http.http_method = post",
                    f"auth_http.user_path = {base}/user",
                    f"auth_http.vhost_path = {base}/vhost",
                    f"auth_http.resource_path = {base}/resource",
                    f"auth_http.topic_path = {base}/topic",
                    "log.console = true",
                    "log.console.level = warning",
                    "log.file = false",
                    # a test's broker never fills a disk alarm for a full test tmpfs
                    "disk_free_limit.absolute = 1MB",
                    "",
                ]
            )
        )
        (self.root / "enabled_plugins").write_text("[rabbitmq_auth_backend_http].\n")
        if self.as_root:
            for path in [self.root, *self.root.rglob("*")]:
                shutil.chown(path, user="rabbitmq", group="rabbitmq")
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 -- the broker's whole life
        self.process = subprocess.Popen(
            self._command(str(SBIN / "rabbitmq-server")),
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        self._wait_listening(timeout)

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"rabbitmq-server did not listen in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        log = self.root / "server.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def ctl(self, *argv: str, check: bool = True) -> str:
        result = subprocess.run(
            self._command(str(SBIN / "rabbitmqctl"), "-n", self.node, *argv),
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(argv)}: {result.stdout}{result.stderr}")
        return result.stdout

    def restart(self) -> None:
        """A broker restart as a client sees it: every connection dropped, the node away
        for a moment, durable queues and their persistent messages kept."""
        self.ctl("stop_app")
        self.ctl("start_app")
        self._wait_listening(30.0)

    def close_connections(self, reason: str = "closed by the test") -> None:
        self.ctl("close_all_connections", reason)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.ctl("stop", check=False)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        subprocess.run(
            self._command("epmd", "-port", str(self.epmd_port), "-kill"),
            env=self._env(),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)
