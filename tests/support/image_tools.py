"""Build the container image with Podman where no image registry is reachable, and run
commands in its filesystem as the image's user.

Debian's packages are reachable where Docker Hub is not, so the base is made here:
``mmdebstrap`` writes a minimal bookworm with Python, ``podman import`` turns it into an
image, and a stand-in for ``python:3.11-slim`` goes on top (``python`` on PATH, and the
host's CA bundle as ``PIP_CERT`` so pip in the build reaches the package index the host
reaches). The real Containerfile is then built with ``--build-arg PYTHON_IMAGE=<stand-in>``.

``podman run`` needs a runtime that can set rlimits and cgroups, which many test machines
refuse, so the image is run as its filesystem instead: ``podman create`` + ``podman
export`` into a directory, then ``chroot --userspec=UID:GID`` with the image's Env and
WorkingDir, inside a private network namespace (``unshare --net``, loopback up) so the
daemon's 0.0.0.0:9464 is its own. Podman keeps its store in the work directory, not in
/var/lib/containers, so concurrent runs and the host's images never meet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.deploy_tools import ToolUnavailable

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "deploy" / "container" / "Containerfile"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BASE_PACKAGES = "python3,python3-venv,python3-pip,ca-certificates,passwd"
SUITE = "bookworm"

# Filled in by build_image for the terminal summary (conftest.py).
STATS: dict[str, object] = {}

_TOOLS = {
    "podman": "podman",
    "mmdebstrap": "mmdebstrap",
    "chroot": "coreutils",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "ip": "iproute2",
}


def check_tools() -> Path:
    """podman, or ToolUnavailable saying how to get what the build and the runs need."""
    if os.geteuid() != 0:
        raise ToolUnavailable(
            "the container image test needs root (mmdebstrap, a rootful podman, chroot "
            "--userspec, a network namespace); run the suite as root to build and run the image "
            "(.ci/run does in CI)"
        )
    missing = sorted({pkg for tool, pkg in _TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise ToolUnavailable(
            f"the container image test needs {', '.join(missing)}: "
            f"`apt-get install -y {' '.join(missing)}` (.ci/run does in CI)"
        )
    return Path(str(shutil.which("podman")))


def _apt_sources() -> str:
    """The host's Debian sources for mmdebstrap (a mirror URL when there are none)."""
    for candidate in (
        Path("/etc/apt/sources.list.d/debian.sources"),
        Path("/etc/apt/sources.list"),
    ):
        if candidate.is_file() and candidate.read_text().strip():
            return str(candidate)
    return "http://deb.debian.org/debian"


def _run(argv: Sequence[str], *, timeout: float, cwd: Path | None = None) -> str:
    result = subprocess.run(
        list(argv),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv[:6])} ... exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


@dataclass
class Podman:
    """podman with its own store under ``work``, and its run root in a short path of its
    own (podman refuses one over 50 characters, which a pytest-xdist worker's temp path is)."""

    work: Path

    @property
    def runroot(self) -> Path:
        digest = hashlib.sha256(str(self.work.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"podman-run-{digest}"

    def args(self) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.work / "storage"),
            "--runroot",
            str(self.runroot),
            "--tmpdir",
            str(self.work / "tmp"),
            "--storage-driver",
            "vfs" if _on_overlayfs(self.work) else "overlay",
            "--events-backend",
            "file",
            "--cgroup-manager",
            "cgroupfs",
        ]

    def __call__(self, *argv: str, timeout: float = 600, cwd: Path | None = None) -> str:
        return _run([*self.args(), *argv], timeout=timeout, cwd=cwd)


def _on_overlayfs(path: Path) -> bool:
    """overlay storage cannot live on overlayfs (a machine that is itself a container)."""
    kind = subprocess.run(
        ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False
    )
    return kind.stdout.strip() == "overlayfs"


@dataclass
class Image:
    """The built image's filesystem and its configuration (``podman image inspect``)."""

    root: Path
    inspect: dict[str, object]
    size: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, object]:
        config = self.inspect["Config"]
        assert isinstance(config, dict)
        return config

    @property
    def user(self) -> str:
        return str(self.config["User"])

    @property
    def env(self) -> list[str]:
        env = self.config["Env"]
        assert isinstance(env, list)
        return [str(item) for item in env]

    @property
    def healthcheck(self) -> list[str]:
        """The HEALTHCHECK's ``Test``, e.g. ``["CMD", "python", "-c", "..."]``."""
        check = self.inspect["Healthcheck"]  # podman puts it beside Config
        assert isinstance(check, dict)
        return [str(part) for part in check["Test"]]

    def command(self, argv: Sequence[str], *, netns: int | None = None) -> list[str]:
        """argv run as the image would: its user, Env and WorkingDir (in netns's network)."""
        prefix = ["nsenter", f"--target={netns}", "--net", "--"] if netns else []
        return [
            *prefix,
            "chroot",
            f"--userspec={self.user}",
            str(self.root),
            "/usr/bin/env",
            "-i",
            f"--chdir={self.config.get('WorkingDir') or '/'}",
            *self.env,
            *argv,
        ]

    def run(
        self, argv: Sequence[str], *, netns: int | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv, netns=netns),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def build_image(work: Path) -> Image:
    """Base tarball, stand-in Python image, the real Containerfile, exported to a directory."""
    podman = Podman(work)
    timings: dict[str, float] = {}

    started = time.monotonic()
    base_tar = work / "base.tar"
    _run(
        [
            "mmdebstrap",
            "--variant=minbase",
            f"--include={BASE_PACKAGES}",
            SUITE,
            str(base_tar),
            _apt_sources(),
        ],
        timeout=600,
    )
    timings["base (mmdebstrap)"] = time.monotonic() - started

    started = time.monotonic()
    podman("import", str(base_tar), "localhost/svarinn-test-base:latest")
    base_tar.unlink()
    standin = work / "standin"
    standin.mkdir()
    lines = ["FROM localhost/svarinn-test-base:latest"]
    if HOST_CA_BUNDLE.is_file():
        shutil.copyfile(HOST_CA_BUNDLE, standin / "ca-certificates.crt")
        lines += [
            "COPY ca-certificates.crt /usr/local/share/svarinn-test/ca-certificates.crt",
            "ENV PIP_CERT=/usr/local/share/svarinn-test/ca-certificates.crt",
        ]
    lines.append("RUN ln -s /usr/bin/python3 /usr/local/bin/python")
    (standin / "Containerfile").write_text("\n".join(lines) + "\n")
    podman(
        "build",
        "--isolation",
        "chroot",
        "--format",
        "docker",
        "-t",
        "localhost/svarinn-test-python:latest",
        str(standin),
    )
    timings["stand-in base (import + build)"] = time.monotonic() - started

    started = time.monotonic()
    podman(
        "build",
        "--isolation",
        "chroot",
        "--format",
        "docker",
        "--build-arg",
        "PYTHON_IMAGE=localhost/svarinn-test-python:latest",
        "-t",
        "localhost/svarinn-daemon:test",
        "-f",
        str(CONTAINERFILE),
        str(REPO),
    )
    timings["image (podman build)"] = time.monotonic() - started

    started = time.monotonic()
    (inspect,) = json.loads(podman("image", "inspect", "localhost/svarinn-daemon:test"))
    container = podman("create", "--no-healthcheck", "localhost/svarinn-daemon:test").strip()
    rootfs_tar = work / "rootfs.tar"
    podman("export", "--output", str(rootfs_tar), container)
    podman("rm", container)
    root = work / "rootfs"
    root.mkdir()
    _run(["tar", "--numeric-owner", "-xpf", str(rootfs_tar), "-C", str(root)], timeout=300)
    rootfs_tar.unlink()
    timings["export"] = time.monotonic() - started
    return Image(root=root, inspect=inspect, size=int(inspect["Size"]), timings=timings)


def remove_store(work: Path) -> None:
    """Remove the store through podman first (it unmounts what it mounted), then the files.

    Not ``podman system reset``: that would also drop the host's podman networks.
    """
    podman = Podman(work)
    for argv in (["rm", "--all", "--force"], ["rmi", "--all", "--force"]):
        subprocess.run([*podman.args(), *argv], capture_output=True, timeout=300, check=False)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(podman.runroot, ignore_errors=True)


class NetworkNamespace:
    """A private network namespace with loopback up, held open by a sleeping process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && echo up && exec sleep 1h"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "up":
            self.close()
            raise AssertionError(f"could not make a network namespace ({line!r})")

    @property
    def pid(self) -> int:
        return self.process.pid

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
