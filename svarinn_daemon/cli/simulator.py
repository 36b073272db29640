"""``svarinn-daemon simulator``: a local SvarInn to try the daemon and a configuration on."""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from svarinn_daemon.cli.commands import summary
from svarinn_daemon.errors import ConfigError

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context
    from svarinn_daemon.simulator import Fault, ReceiverIdentity
    from svarinn_daemon.simulator.tls import ServerTls

FAULT_HELP = (
    "inject a fault: KIND[:key=value,...] with KIND one of {kinds}; keys rate (0..1), times, "
    "ids (a+b), endpoints (any of {endpoints}, joined by +), "
    "delay (seconds, for slow and stall), retry_after, location (for redirect). Repeatable. "
    "Example: --fault http_503:rate=0.2,retry_after=5"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from svarinn_daemon.simulator import FAULT_KINDS
    from svarinn_daemon.simulator.faults import ENDPOINTS

    parser = sub.add_parser(
        "simulator",
        help=summary("simulator"),
        description="Run a SvarInn simulator on this machine: it lists, serves (encrypted for "
        "a certificate, exactly as SvarUt does), and takes acknowledgements and failure "
        "reports for letters read from a directory or generated. It prints its URL, "
        "credentials and certificate; --write-config writes a daemon configuration that "
        "points at it. Needs no configuration file. Stop it with Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--username", default="simulator", help="Basic auth user (simulator)")
    parser.add_argument(
        "--password-file", type=Path, help="Basic auth password from this file (default: random)"
    )
    parser.add_argument(
        "--certificate",
        type=Path,
        help="encrypt for this PEM certificate (default: a fresh key pair is generated)",
    )
    parser.add_argument(
        "--letters",
        type=Path,
        metavar="DIR",
        help="serve a letter per file in DIR, and a zipped letter per subdirectory",
    )
    parser.add_argument("--generate", type=int, default=0, metavar="N", help="generate N letters")
    parser.add_argument(
        "--size", default="50KB", help='size of each generated file, e.g. "200KB", "2GiB" (50KB)'
    )
    parser.add_argument(
        "--files-per-letter",
        type=int,
        default=1,
        metavar="K",
        help="files per generated letter; more than 1 serves each letter as a zip",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help=FAULT_HELP.format(kinds=", ".join(FAULT_KINDS), endpoints=", ".join(ENDPOINTS)),
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for rate-based faults (0)")
    parser.add_argument(
        "--paging",
        choices=("rotate", "repeat"),
        default="rotate",
        help="rotate: each call lists the next 200 letters; repeat: always the first 200",
    )
    parser.add_argument(
        "--write-config",
        type=Path,
        metavar="DIR",
        help="write config.toml, password, key and certificate for the daemon into DIR",
    )
    parser.add_argument(
        "--api",
        choices=("v2", "v1"),
        default="v2",
        help='the API --write-config\'s account speaks: "v2" (SvarInn V2, default) or "v1" '
        "(MottakService, deprecated); the simulator answers both",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a throwaway CA and server certificate, written beside "
        "--write-config's config.toml (simulator-ca.pem, which the config's ca_bundle names)",
    )
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this long (default: never)"
    )
    parser.set_defaults(func=run, logs_to_stderr=True)


def _identity(args: argparse.Namespace) -> ReceiverIdentity:
    from cryptography import x509

    from svarinn_daemon.simulator import ReceiverIdentity, generate_identity

    if args.certificate is None:
        return generate_identity()
    try:
        certificate = x509.load_pem_x509_certificate(args.certificate.read_bytes())
    except OSError as exc:
        raise ConfigError(
            f"cannot read {args.certificate}: {exc.strerror}", key="--certificate"
        ) from None
    except ValueError:
        raise ConfigError(
            f"{args.certificate} is not a PEM certificate", key="--certificate"
        ) from None
    return ReceiverIdentity(certificate=certificate, private_key_pem=None)


def _options(args: argparse.Namespace) -> tuple[list[Fault], int, str | None]:
    from svarinn_daemon.config.units import parse_size
    from svarinn_daemon.simulator import parse_fault

    try:
        faults = [parse_fault(spec) for spec in args.fault]
    except ValueError as exc:
        raise ConfigError(str(exc), key="--fault") from None
    try:
        size = parse_size(args.size)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--size") from None
    password = None
    if args.password_file is not None:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", key="--password-file") from None
    if args.letters is not None and not args.letters.is_dir():
        raise ConfigError(f"{args.letters} is not a directory", key="--letters")
    return faults, size, password


def run(ctx: Context) -> int:
    from svarinn_daemon.simulator.tls import DEFAULT_HOSTS, make_server_tls

    args = ctx.args
    faults, size, password = _options(args)
    identity = _identity(args)
    with tempfile.TemporaryDirectory(prefix="svarinn-sim-keys-") as scratch:
        directory = args.write_config or Path(scratch)
        tls = None
        if args.tls:
            hosts = tuple(dict.fromkeys((args.host, *DEFAULT_HOSTS)))
            tls = make_server_tls(directory, hosts=hosts)
        return _serve(ctx, identity, faults, size, password, directory, tls)


def _serve(
    ctx: Context,
    identity: ReceiverIdentity,
    faults: list[Fault],
    size: int,
    password: str | None,
    directory: Path,
    tls: ServerTls | None,
) -> int:
    from svarinn_daemon.simulator import Simulator, write_operator_files

    args = ctx.args
    out = ctx.stdout
    with Simulator(
        identity.certificate,
        username=args.username,
        password=password,
        host=args.host,
        port=args.port,
        paging=args.paging,
        seed=args.seed,
        faults=faults,
        tls=tls.server_context() if tls is not None else None,
    ) as sim:
        if args.letters is not None:
            sim.load_directory(args.letters)
        if args.generate:
            sim.generate(args.generate, size, files_per_letter=max(1, args.files_per_letter))
        files = write_operator_files(
            directory,
            base_url=sim.base_url,
            api=args.api,
            username=sim.username,
            password=sim.password,
            identity=identity,
            ca_bundle=tls.ca_certificate if tls is not None else None,
        )
        print(f"SvarInn simulator listening on {sim.base_url}", file=out)
        print(f"  v1 base_url: {sim.base_url} (MottakService, /tjenester/svarinn/...)", file=out)
        print(
            f"  v2 base_url: {sim.v2_base_url()} (also {sim.v2_base_url('/tjenester')})", file=out
        )
        print(f"  username:    {sim.username}", file=out)
        print(f"  password:    {sim.password}", file=out)
        certificate = args.certificate or files.certificate
        serial = f"{identity.certificate.serial_number:X}"
        print(f"  certificate: {certificate} (serial {serial})", file=out)
        if files.private_key is not None:
            print(f"  private key: {files.private_key}", file=out)
        if tls is not None:
            print(f"  TLS CA:      {tls.ca_certificate} (the config's ca_bundle)", file=out)
        print(f"  letters:     {len(sim.state().pending)} waiting", file=out)
        print(f"  faults:      {', '.join(args.fault) or 'none'}", file=out)
        print(f"  state:       {sim.base_url}/_simulator/state", file=out)
        if args.write_config:
            print(f"  config:      {files.config}", file=out)
            print(f"try:  svarinn-daemon --config {files.config} check-config", file=out)
        elif args.certificate is None:
            print(
                "  (the generated key is deleted on exit; use --write-config DIR to keep it)",
                file=out,
            )
        print("Press Ctrl-C to stop.", file=out, flush=True)
        _wait(args.duration)
    state = sim.state()
    print(
        f"stopped: {sum(state.acknowledged.values())} acknowledgement(s), "
        f"{len(state.reports)} failure report(s), {len(state.pending)} letter(s) still waiting",
        file=out,
        flush=True,
    )
    return 0


def _wait(duration: float | None) -> None:
    """Block until Ctrl-C, SIGTERM or ``duration`` seconds."""
    done = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
