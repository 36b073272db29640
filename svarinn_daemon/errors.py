"""One error tree for the whole daemon.

Every third-party error (httpx, SQLAlchemy, cryptography, zipfile, OSError) is converted
into one of these at the module boundary where it happens, so the pipeline only ever has
to ask an error one question: ``error.temporary`` -- will retrying ever help?

    SvarinnError                          temporary?
    ├── ConfigError                       no   bad config file, key, secret or usage (exit 2)
    ├── CmsError                               a file we cannot decrypt
    │   ├── NotEnvelopedDataError         no   not CMS, or CMS but not EnvelopedData
    │   ├── UnsupportedAlgorithmError     no   names the OID
    │   ├── NoMatchingRecipientError      no   encrypted for a certificate we do not hold
    │   ├── KeyUnwrapError                no   RSA unwrap of the content key failed
    │   ├── MalformedCmsError             no   BER that breaks the rules, or limits exceeded
    │   │   └── CmsLimitExceededError     no
    │   ├── TruncatedCmsError             yes  the stream ended early (download again)
    │   ├── PaddingError                  no   PKCS#7 padding is wrong (wrong key, or corrupt)
    │   └── TrailingDataError             no   something other than zero bytes after the end
    ├── SvarInnError                           talking to SvarInn (the remote service)
    │   ├── AuthenticationError           no   401/403: stops that account's cycle
    │   ├── ForsendelseGoneError          no   404 on a download
    │   ├── ServiceUnavailableError       yes  429, 5xx, timeouts, resets; carries retry_after
    │   │   └── TlsVerificationError      yes  the server's certificate failed verification
    │   ├── ProtocolError                 yes  a response that is not what the API documents
    │   ├── DownloadTooLargeError         no   the body passed the configured size limit
    │   └── OriginNotAllowedError         no   a downloadUrl outside the account's origin
    ├── VerificationError                 no   sha256/size/zip contents do not match filmetadata
    │   ├── ChecksumMismatchError         yes  sha256 or size differs (download again, bounded)
    │   └── UnsafeArchiveError            no   zip entry names or sizes that are not allowed
    ├── LedgerError                            the ledger database
    │   ├── LedgerUnavailableError        yes  cannot connect, or a database error mid-run
    │   ├── SchemaMismatchError           no   unknown schema, or newer than this code
    │   ├── IllegalTransitionError        no   a state change the state machine forbids
    │   ├── LetterNotFoundError           no   no letter with that id in the ledger
    │   └── LeaseLostError                yes  another worker owns the letter now
    ├── ArchiveError                      per instance: the adapter decides
    ├── StorageError                      yes  our own spool and temporary files: ENOSPC,
    │                                          EDQUOT, EROFS, permissions (never the archive's)
    ├── InternalError                     yes  a bug: an exception nobody converted (retried
    │                                          loudly, never reported as the sender's fault)
    ├── PluginError                       no   an entry point that is missing or wrong
    └── NotifierError                     per instance: an alert could not be delivered

``temporary`` is set per class; :class:`ArchiveError` and :class:`NotifierError` let each
instance choose, because only the adapter or notifier knows whether its backend will recover.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "AuthenticationError",
    "ChecksumMismatchError",
    "CmsError",
    "CmsLimitExceededError",
    "ConfigError",
    "DownloadTooLargeError",
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
    "NotEnvelopedDataError",
    "NotifierError",
    "OriginNotAllowedError",
    "PaddingError",
    "PluginError",
    "ProtocolError",
    "SchemaMismatchError",
    "ServiceUnavailableError",
    "StorageError",
    "SvarInnError",
    "SvarinnError",
    "TlsVerificationError",
    "TrailingDataError",
    "TruncatedCmsError",
    "UnsafeArchiveError",
    "UnsupportedAlgorithmError",
    "VerificationError",
]


class SvarinnError(Exception):
    """Root of every error the daemon raises on purpose."""

    temporary: bool = False

    @property
    def permanent(self) -> bool:
        return not self.temporary

    @property
    def kind(self) -> str:
        """Stable name for logs, metrics and the ledger (the class name)."""
        return type(self).__name__


class ConfigError(SvarinnError):
    """The configuration file, a secret it points to, or the command line is wrong.

    ``source`` is the file and ``key`` the dotted key path, so the message can name both.
    """

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


class CmsError(SvarinnError):
    """A file could not be decrypted."""


class NotEnvelopedDataError(CmsError):
    """The input is not CMS, or is CMS of another content type."""


class UnsupportedAlgorithmError(CmsError):
    """An algorithm OID we do not implement."""

    def __init__(self, message: str, *, oid: str | None = None):
        self.oid = oid
        super().__init__(message)


class NoMatchingRecipientError(CmsError):
    """The file was encrypted for certificates we do not hold.

    This is usually *our* configuration's fault (a key missing after rotation), so the
    pipeline must not send the letter to paper because of it.
    """


class KeyUnwrapError(CmsError):
    """The RSA key transport could not be undone with the matching key."""


class MalformedCmsError(CmsError):
    """The BER structure breaks the rules."""


class CmsLimitExceededError(MalformedCmsError):
    """Nesting depth, header size or another safety limit was exceeded."""


class TruncatedCmsError(CmsError):
    """The input ended before the structure did: download it again."""

    temporary = True


class PaddingError(CmsError):
    """The final block's PKCS#7 padding is invalid."""


class TrailingDataError(CmsError):
    """Bytes other than zero padding follow the end of the structure."""


# --- SvarInn (the remote service) -------------------------------------------------------


class SvarInnError(SvarinnError):
    """Talking to SvarInn failed. ``body_start`` keeps the start of an error response."""

    def __init__(self, message: str, *, status_code: int | None = None, body_start: str = ""):
        self.status_code = status_code
        self.body_start = body_start
        super().__init__(message)


class AuthenticationError(SvarInnError):
    """401/403: the account's credentials are wrong or lack access."""


class ForsendelseGoneError(SvarInnError):
    """404 on a download: the letter no longer exists."""


class ServiceUnavailableError(SvarInnError):
    """429, 5xx, timeouts and broken connections: try again later."""

    temporary = True

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

    temporary = True


class DownloadTooLargeError(SvarInnError):
    """The download passed the configured size limit."""


class OriginNotAllowedError(SvarInnError):
    """A URL outside the account's configured origin (credentials would leak)."""


# --- Verification -----------------------------------------------------------------------


class VerificationError(SvarinnError):
    """The plaintext does not match what filmetadata promised."""


class ChecksumMismatchError(VerificationError):
    """A sha256 or size differs from filmetadata.

    Temporary because a fresh download may fix it; the retry policy bounds how many
    downloads are tried before the letter is reported as permanently failed.
    """

    temporary = True


class UnsafeArchiveError(VerificationError):
    """A zip with entry names, links or sizes we refuse to unpack."""


# --- Ledger -----------------------------------------------------------------------------


class LedgerError(SvarinnError):
    """The ledger database."""


class LedgerUnavailableError(LedgerError):
    """The database cannot be reached or failed mid-operation."""

    temporary = True


class SchemaMismatchError(LedgerError):
    """The schema is unknown or newer than this version of the daemon."""


class IllegalTransitionError(LedgerError):
    """A state change the state machine does not allow."""


class LetterNotFoundError(LedgerError):
    """The ledger has no letter with the id asked for."""


class LeaseLostError(LedgerError):
    """Our claim expired and another worker may own the letter now."""

    temporary = True


# --- Archive adapters and plugins ---------------------------------------------------------


class ArchiveError(SvarinnError):
    """The archive adapter could not take the letter; it says whether retrying helps."""

    def __init__(self, message: str, *, temporary: bool):
        self.temporary = temporary
        super().__init__(message)


class StorageError(SvarinnError):
    """The daemon's own temporary files in the state directory cannot be written or read.

    Temporary: a full disk or wrong permissions are fixed by the operator, never by sending
    the letter to paper.
    """

    temporary = True


class InternalError(SvarinnError):
    """An exception that is not ours reached the pipeline: a bug in the daemon or an adapter.

    Temporary and loud: the letter is retried and an operator alerted; the sender is never
    told that the archive or the letter is at fault.
    """

    temporary = True

    @classmethod
    def wrap(cls, exc: BaseException, where: str) -> InternalError:
        text = str(exc).replace("\n", " ")[:300]
        return cls(f"internal error in {where}: {type(exc).__name__}: {text}")


class PluginError(SvarinnError):
    """A plugin name that is not installed, or an object that breaks its protocol."""


# --- Alerts -------------------------------------------------------------------------------


class NotifierError(SvarinnError):
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
        self.temporary = temporary
        self.notifier = notifier
        self.status_code = status_code
        self.error_id = error_id
        super().__init__(message)
