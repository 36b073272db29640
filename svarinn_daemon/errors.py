"""One error tree for the whole daemon, and the only source of truth about retrying.

Every third-party error (httpx, SQLAlchemy, cryptography, zipfile, OSError) is converted
into one of these at the module boundary where it happens. Each class says, as data, how a
letter that failed with it is retried (``retry``, a :class:`Retry`) and whether SvarUt may
hear of a long run of such failures (``reported``); :func:`svarinn_daemon.letter.retry.decide`
reads both and nothing overrides them. ``temporary`` follows from ``retry``.

    DaemonError                       retry           reported
    ├── ShutdownRequested             release         -    the daemon is stopping (no failure)
    ├── ConfigError                   loudly          no   config file, key, secret, usage (exit 2)
    ├── CmsError                                           a file we cannot decrypt
    │   ├── NotEnvelopedDataError     download_again  yes  not CMS, or not EnvelopedData
    │   ├── UnsupportedAlgorithmError key             yes  names the OID
    │   ├── NoMatchingRecipientError  key             yes  for a certificate we do not hold
    │   ├── KeyUnwrapError            key             yes  RSA unwrap of the content key failed
    │   ├── MalformedCmsError         download_again  yes  BER that breaks the rules
    │   │   └── CmsLimitExceededError never           -    our own safety limits exceeded
    │   ├── TruncatedCmsError         download_again  yes  the stream ended early
    │   ├── PaddingError              download_again  yes  PKCS#7 padding wrong (key, or corrupt)
    │   └── TrailingDataError         download_again  yes  non-zero bytes after the end
    ├── SvarInnError                                       talking to SvarInn (the remote service)
    │   ├── AuthenticationError       stop_account    no   401/403: stops that account's cycle
    │   ├── ForsendelseGoneError      never           -    404 on a download
    │   ├── ServiceUnavailableError   backoff         yes  429, 5xx, timeouts, resets; retry_after
    │   │   └── TlsVerificationError  backoff         yes  the certificate failed verification
    │   ├── ProtocolError             backoff         yes  a response the API does not document
    │   ├── DownloadTooLargeError     never           -    the body passed the size limit
    │   └── OriginNotAllowedError     loudly          yes  a downloadUrl outside the origin
    ├── VerificationError             never           -    contents do not match filmetadata
    │   ├── ChecksumMismatchError     download_again  yes  sha256 or size differs
    │   ├── NotAZipError              download_again  yes  a SvarInn V2 body that is no ZIP
    │   └── UnsafeArchiveError        never           -    zip names or sizes not allowed
    ├── LedgerError                   loudly          no   the ledger database
    │   ├── LedgerUnavailableError    backoff         no   cannot connect, or failed mid-run
    │   ├── SchemaMismatchError       loudly          no   unknown schema, or newer than us
    │   ├── IllegalTransitionError    loudly          no   a change the state machine forbids
    │   ├── LetterNotFoundError       loudly          no   no letter with that id
    │   └── LeaseLostError            abandon         no   another worker owns the letter now
    ├── ArchiveError                  per instance    yes  the adapter decides: backoff, loudly
    │                                                      (its credentials, configuration) or never
    ├── FiksIoError                   per instance    -    Fiks IO (send, catalogue, AMQP, payload);
    │                                                      the fiks-arkiv adapter converts it
    ├── StorageError                  backoff         yes  our own spool: ENOSPC, EDQUOT, EROFS,
    │                                                      permissions (never the archive's)
    ├── InternalError                 loudly          yes  a bug: an exception nobody converted
    ├── PluginError                   loudly          no   an entry point missing or wrong
    └── NotifierError                 per instance    -    an alert could not be delivered

The retry kinds: ``backoff`` again after a growing delay; ``download_again`` the download
was corrupt, fetch it again up to ``max_download_attempts``, then permanent; ``loudly`` our
own fault, again and again, logged as an error, never to paper; ``key`` loudly, or permanent
with ``treat_key_errors_as_permanent``; ``stop_account`` the account's cycle stops;
``abandon`` leave the letter to the worker that owns it; ``release`` give it back untouched;
``never`` permanent: mottakFeilet with ``permanent: true``, the letter goes to paper.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ArchiveError",
    "AuthenticationError",
    "ChecksumMismatchError",
    "CmsError",
    "CmsLimitExceededError",
    "ConfigError",
    "DaemonError",
    "DownloadTooLargeError",
    "FiksIoError",
    "ForsendelseGoneError",
    "IllegalTransitionError",
    "InternalError",
    "KeyUnwrapError",
    "LeaseLostError",
    "LedgerError",
    "LedgerUnavailableError",
    "LetterNotFoundError",
    "MalformedCmsError",
    "NoMatchingRecipientError",
    "NotAZipError",
    "NotEnvelopedDataError",
    "NotifierError",
    "OriginNotAllowedError",
    "PaddingError",
    "PluginError",
    "ProtocolError",
    "Retry",
    "SchemaMismatchError",
    "ServiceUnavailableError",
    "ShutdownRequested",
    "StorageError",
    "SvarInnError",
    "TlsVerificationError",
    "TrailingDataError",
    "TruncatedCmsError",
    "UnsafeArchiveError",
    "UnsupportedAlgorithmError",
    "VerificationError",
]


class Retry(StrEnum):
    """How a letter that failed with an error is retried; see the module docstring."""

    BACKOFF = "backoff"
    DOWNLOAD_AGAIN = "download_again"
    LOUDLY = "loudly"
    KEY = "key"
    STOP_ACCOUNT = "stop_account"
    ABANDON = "abandon"
    RELEASE = "release"
    NEVER = "never"


class DaemonError(Exception):
    """Root of every error the daemon raises on purpose."""

    retry: Retry = Retry.NEVER
    reported: bool = True  # may a long run of these reach the sender (permanent=false)?

    @property
    def temporary(self) -> bool:
        """Will retrying ever help? (Everything but ``never``.)"""
        return self.retry is not Retry.NEVER

    @property
    def permanent(self) -> bool:
        return not self.temporary

    @property
    def kind(self) -> str:
        """Stable name for logs, metrics and the ledger (the class name)."""
        return type(self).__name__


class ShutdownRequested(DaemonError):
    """Raised inside a letter's work when the daemon must stop now; the letter is released."""

    retry = Retry.RELEASE
    reported = False


class ConfigError(DaemonError):
    """The configuration file, a secret it points to, or the command line is wrong.

    ``source`` is the file and ``key`` the dotted key path, so the message can name both.
    """

    retry = Retry.LOUDLY
    reported = False

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        parts = []
        if source:
            parts.append(source)
        if key:
            parts.append(key)
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


# --- CMS decryption ---------------------------------------------------------------------


class CmsError(DaemonError):
    """A file could not be decrypted."""


class NotEnvelopedDataError(CmsError):
    """The input is not CMS, or is CMS of another content type."""

    retry = Retry.DOWNLOAD_AGAIN


class UnsupportedAlgorithmError(CmsError):
    """An algorithm OID we do not implement."""

    retry = Retry.KEY

    def __init__(self, message: str, *, oid: str | None = None):
        self.oid = oid
        super().__init__(message)


class NoMatchingRecipientError(CmsError):
    """The file was encrypted for certificates we do not hold.

    This is usually *our* configuration's fault (a key missing after rotation), so the
    pipeline must not send the letter to paper because of it.
    """

    retry = Retry.KEY


class KeyUnwrapError(CmsError):
    """The RSA key transport could not be undone with the matching key."""

    retry = Retry.KEY


class MalformedCmsError(CmsError):
    """The BER structure breaks the rules."""

    retry = Retry.DOWNLOAD_AGAIN


class CmsLimitExceededError(MalformedCmsError):
    """Nesting depth, header size or another safety limit was exceeded."""

    retry = Retry.NEVER


class TruncatedCmsError(CmsError):
    """The input ended before the structure did: download it again."""

    retry = Retry.DOWNLOAD_AGAIN


class PaddingError(CmsError):
    """The final block's PKCS#7 padding is invalid."""

    retry = Retry.DOWNLOAD_AGAIN


class TrailingDataError(CmsError):
    """Bytes other than zero padding follow the end of the structure."""

    retry = Retry.DOWNLOAD_AGAIN


# --- SvarInn (the remote service) -------------------------------------------------------


class SvarInnError(DaemonError):
    """Talking to SvarInn failed. ``body_start`` keeps the start of an error response."""

    def __init__(self, message: str, *, status_code: int | None = None, body_start: str = ""):
        self.status_code = status_code
        self.body_start = body_start
        super().__init__(message)


class AuthenticationError(SvarInnError):
    """401/403: the account's credentials are wrong or lack access."""

    retry = Retry.STOP_ACCOUNT
    reported = False


class ForsendelseGoneError(SvarInnError):
    """404 on a download: the letter no longer exists."""


class ServiceUnavailableError(SvarInnError):
    """429, 5xx, timeouts and broken connections: try again later."""

    retry = Retry.BACKOFF

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body_start: str = "",
        retry_after: float | None = None,
    ):
        self.retry_after = retry_after
        super().__init__(message, status_code=status_code, body_start=body_start)


class TlsVerificationError(ServiceUnavailableError):
    """The server's TLS certificate failed verification (untrusted CA, expired, another
    host's): no request was sent, so no credentials either. ``reason`` is ``untrusted``,
    ``expired``, ``hostname`` or ``other``. Temporary: the server (or our ca_bundle) may be
    fixed, and the letter waits untouched meanwhile."""

    def __init__(self, message: str, *, reason: str = "other"):
        self.reason = reason
        super().__init__(message)


class ProtocolError(SvarInnError):
    """A response that does not have the documented shape."""

    retry = Retry.BACKOFF


class DownloadTooLargeError(SvarInnError):
    """The download passed the configured size limit."""


class OriginNotAllowedError(SvarInnError):
    """A URL outside the account's configured origin (credentials would leak)."""

    retry = Retry.LOUDLY


# --- Verification -----------------------------------------------------------------------


class VerificationError(DaemonError):
    """The plaintext does not match what filmetadata promised."""


class ChecksumMismatchError(VerificationError):
    """A sha256 or size differs from filmetadata.

    Temporary because a fresh download may fix it; the retry policy bounds how many
    downloads are tried before the letter is reported as permanently failed.
    """

    retry = Retry.DOWNLOAD_AGAIN


class NotAZipError(VerificationError):
    """A SvarInn V2 download decrypted to something other than a ZIP (V2 always sends one).

    Like a checksum mismatch: a corrupt transfer garbles the ZIP's first bytes, so a fresh
    download may fix it; after ``max_download_attempts`` it is permanent (goes by post).
    """

    retry = Retry.DOWNLOAD_AGAIN


class UnsafeArchiveError(VerificationError):
    """A zip with entry names, links or sizes we refuse to unpack."""


# --- Ledger -----------------------------------------------------------------------------


class LedgerError(DaemonError):
    """The ledger database."""

    retry = Retry.LOUDLY
    reported = False


class LedgerUnavailableError(LedgerError):
    """The database cannot be reached or failed mid-operation."""

    retry = Retry.BACKOFF


class SchemaMismatchError(LedgerError):
    """The schema is unknown or newer than this version of the daemon."""


class IllegalTransitionError(LedgerError):
    """A state change the state machine does not allow."""


class LetterNotFoundError(LedgerError):
    """The ledger has no letter with the id asked for."""


class LeaseLostError(LedgerError):
    """Our claim expired and another worker may own the letter now."""

    retry = Retry.ABANDON


# --- Archive adapters and plugins ---------------------------------------------------------


class ArchiveError(DaemonError):
    """The archive adapter could not take the letter; it says whether retrying helps, and
    may say how long the archive asked it to wait (``retry_after``, seconds). ``loud``: the
    archive refused our credentials or configuration (unknown arkivdel, wrong address),
    which an operator must fix: retried and alerted, never sent to paper."""

    def __init__(
        self,
        message: str,
        *,
        temporary: bool,
        retry_after: float | None = None,
        loud: bool = False,
    ):
        if loud and not temporary:
            raise ValueError("a loud archive error is an operator's to fix: never permanent")
        self.retry = Retry.LOUDLY if loud else Retry.BACKOFF if temporary else Retry.NEVER
        self.retry_after = retry_after
        super().__init__(message)


class FiksIoError(DaemonError):
    """Fiks IO failed or refused: sending, the catalogue, the AMQP queue, a payload that
    cannot be opened. ``temporary`` when trying again can help; ``loud`` when our
    credentials or accounts are refused (an operator fixes them)."""

    def __init__(self, message: str, *, temporary: bool = True, loud: bool = False):
        if loud and not temporary:
            raise ValueError("a loud Fiks IO error is an operator's to fix: never permanent")
        self.loud = loud
        self.retry = Retry.LOUDLY if loud else Retry.BACKOFF if temporary else Retry.NEVER
        super().__init__(message)


class StorageError(DaemonError):
    """The daemon's own temporary files in the state directory cannot be written or read.

    Temporary: a full disk or wrong permissions are fixed by the operator, never by sending
    the letter to paper.
    """

    retry = Retry.BACKOFF


class InternalError(DaemonError):
    """An exception that is not ours reached the pipeline: a bug in the daemon or an adapter.

    Temporary and loud: the letter is retried and an operator alerted; the sender is never
    told that the archive or the letter is at fault.
    """

    retry = Retry.LOUDLY

    @classmethod
    def wrap(cls, exc: BaseException, where: str) -> InternalError:
        text = str(exc).replace("\n", " ")[:300]
        return cls(f"internal error in {where}: {type(exc).__name__}: {text}")


class PluginError(DaemonError):
    """A plugin name that is not installed, or an object that breaks its protocol."""

    retry = Retry.LOUDLY
    reported = False


# --- Alerts -------------------------------------------------------------------------------


class NotifierError(DaemonError):
    """A notifier could not deliver an alert.

    ``notifier`` is the configured notifier's name; ``status_code`` the HTTP status when
    there was one; ``error_id`` the ``errorId`` a Fiks API returned (what KS support asks
    for). The message never carries a URL, token or password.
    """

    def __init__(
        self,
        message: str,
        *,
        temporary: bool = True,
        notifier: str = "",
        status_code: int | None = None,
        error_id: str | None = None,
    ):
        self.retry = Retry.BACKOFF if temporary else Retry.NEVER
        self.notifier = notifier
        self.status_code = status_code
        self.error_id = error_id
        super().__init__(message)
