"""``svarinn-daemon decrypt``: open a SvarUt file by hand, streaming, in constant memory.

Operators need this when a letter is stuck: download the file, decrypt it with the
account's key, compare the sha256 with SvarInn's filmetadata. A failed run never leaves a
file named OUT: output goes to a new temporary file beside it (``.OUT.<random>.part``,
created with O_EXCL and O_NOFOLLOW, so nothing planted there -- a symlink, another user's
file -- is followed, truncated or reused) and is renamed to OUT only after ``close()`` has
checked padding and structure. Only that file is ever removed. An OUT that exists and is
not a regular file (``/dev/null``, a FIFO, a terminal) is written into, never replaced.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

from svarinn_daemon.cli.commands import summary
from svarinn_daemon.cli.progress import Progress
from svarinn_daemon.errors import ConfigError

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context
    from svarinn_daemon.cms import Decryptor
    from svarinn_daemon.keys import KeyPair

CHUNK = 1 << 20


class _Source(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "decrypt",
        help=summary("decrypt"),
        description="Decrypt a SvarUt/SvarInn CMS EnvelopedData file, streaming in constant "
        "memory, and print the plaintext's size and sha256 on standard error. Reads IN "
        "(standard input when omitted or '-') and writes OUT (standard output when omitted); "
        "OUT only appears once the whole file has decrypted and checked out. On a terminal, "
        "standard error shows a progress line (bytes, rate, time left) while it runs.",
    )
    parser.add_argument(
        "--key",
        action="append",
        required=True,
        metavar="KEY.pem",
        help="private key (PKCS#1 or PKCS#8 PEM); repeat for several keys (key rotation)",
    )
    parser.add_argument(
        "--cert",
        action="append",
        default=[],
        metavar="CERT.pem",
        help="the certificate of the --key at the same position (optional; without it the "
        "key is tried against every recipient)",
    )
    parser.add_argument(
        "--passphrase-file",
        action="append",
        default=[],
        metavar="FILE",
        help="file holding the passphrase of an encrypted key: once for all encrypted keys, "
        "or once per --key in order",
    )
    parser.add_argument("input", nargs="?", default="-", metavar="IN", help="encrypted file")
    parser.add_argument("-o", "--output", default=None, metavar="OUT", help="plaintext file")
    parser.set_defaults(func=run, logs_to_stderr=True)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", key=what) from None


def load_keys(keys: list[str], certs: list[str], passphrases: list[str]) -> list[KeyPair]:
    """Pair ``--key``, ``--cert`` and ``--passphrase-file`` arguments by position."""
    from svarinn_daemon.keys import load_key_pair

    if len(certs) > len(keys):
        raise ConfigError(f"{len(certs)} --cert for {len(keys)} --key", key="--cert")
    if len(passphrases) not in (0, 1, len(keys)):
        raise ConfigError(
            f"{len(passphrases)} --passphrase-file for {len(keys)} --key: give one for all "
            "keys or one per key",
            key="--passphrase-file",
        )
    pairs = []
    for index, key_path in enumerate(keys):
        key_pem = _read(key_path, "--key")
        passphrase = None
        if len(passphrases) == len(keys) and len(keys) > 1:
            passphrase = _read(passphrases[index], "--passphrase-file").rstrip(b"\r\n")
        elif len(passphrases) == 1 and (len(keys) == 1 or b"ENCRYPTED" in key_pem):
            passphrase = _read(passphrases[0], "--passphrase-file").rstrip(b"\r\n")
        cert_pem = _read(certs[index], "--cert") if index < len(certs) else None
        pairs.append(
            load_key_pair(
                key_path,
                key_pem,
                passphrase=passphrase,
                certificate_pem=cert_pem,
                key_name=f"--key {key_path}",
                certificate_name=f"--cert {certs[index]}" if cert_pem else "--cert",
            )
        )
    return pairs


def decrypt_stream(
    decryptor: Decryptor, source: _Source, sink: BinaryIO, progress: Progress | None = None
) -> None:
    """Feed ``source`` through ``decryptor`` into ``sink`` with one reused read buffer."""
    buffer = bytearray(CHUNK)
    done = 0
    with memoryview(buffer) as view:
        while count := source.readinto(view):
            sink.write(decryptor.feed(view[:count]))
            done += count
            if progress is not None:
                progress.update(done)
    sink.write(decryptor.close())
    if progress is not None:
        progress.update(done, force=True)


def _size_of(source: object) -> int | None:
    """The input's size when it is a regular file (a named IN, or < redirected), else None."""
    try:
        status = os.fstat(source.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def run(ctx: Context) -> int:
    from svarinn_daemon.cms import Decryptor

    args = ctx.args
    pairs = load_keys(args.key, args.cert, args.passphrase_file)
    decryptor = Decryptor(pairs)
    with ExitStack() as stack:
        if args.input == "-":
            source = cast(_Source, sys.stdin.buffer)
        else:
            try:
                source = stack.enter_context(open(args.input, "rb", buffering=0))
            except OSError as exc:
                raise ConfigError(f"cannot open {args.input}: {exc.strerror}", key="IN") from None
        # On a terminal, standard error shows bytes, rate and time left while it runs.
        progress = Progress.for_stream(ctx.stderr, total_bytes=_size_of(source))
        stack.callback(progress.close)
        if args.output is None:
            out = getattr(ctx.stdout, "buffer", None)
            if out is None:
                raise ConfigError("standard output does not take bytes: use -o OUT", key="-o")
            try:
                decrypt_stream(decryptor, source, out, progress)
                out.flush()
            except OSError as exc:
                progress.close()
                print(f"svarinn-daemon: cannot read or write: {exc}", file=ctx.stderr)
                return 1
        else:
            result = _decrypt_to_file(decryptor, source, Path(args.output), ctx, progress)
            if result:
                return result
    recipient = decryptor.recipient.describe() if decryptor.recipient else "?"
    print(
        f"decrypted {decryptor.size} bytes, sha256 {decryptor.sha256} "
        f"({decryptor.content_algorithm}, {recipient})",
        file=ctx.stderr,
    )
    return 0


def _decrypt_to_file(
    decryptor: Decryptor, source: _Source, target: Path, ctx: Context, progress: Progress
) -> int:
    try:
        mode = os.stat(target).st_mode
        special = not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
    except OSError:  # not there yet (or not reachable): the temporary file says why
        special = False
    if special:
        return _decrypt_to_special(decryptor, source, target, ctx, progress)
    try:
        # mkstemp: a fresh random name, O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600.
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot create a temporary file in {target.parent}: {exc.strerror}", key="-o"
        ) from None
    part = Path(name)
    try:
        with open(fd, "wb") as sink:
            decrypt_stream(decryptor, source, sink, progress)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(part, target)
    except OSError as exc:
        part.unlink(missing_ok=True)
        progress.close()
        print(f"svarinn-daemon: cannot read or write: {exc}", file=ctx.stderr)
        return 1
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return 0


def _decrypt_to_special(
    decryptor: Decryptor, source: _Source, target: Path, ctx: Context, progress: Progress
) -> int:
    """OUT is a device or a pipe (``-o /dev/null`` to check a file's sha256, a FIFO): write
    into it. Renaming a temporary file over it would replace the device node itself (as root,
    /dev/null would become a regular file); nothing is kept there to be half written."""
    try:
        with open(target, "wb") as sink:
            decrypt_stream(decryptor, source, sink, progress)
    except OSError as exc:
        progress.close()
        print(f"svarinn-daemon: cannot read or write: {exc}", file=ctx.stderr)
        return 1
    return 0
