"""The secret pseudonymisation key: reading, writing and deriving purpose keys.

One secret (at least 32 random bytes, written as hex text in the file that
`IPC_KEY_FILE` names) feeds every keyed hash in the pipeline. It is never used
directly: HKDF-SHA256 derives one independent key per purpose ("linkage",
"recipient:<name>", "manifest", "fingerprint"), so a key handed to one use
reveals nothing about another.

Nothing in this module puts key material in an exception message, a repr or a
log line; the only thing about a key that may be shown is `key_id`, a short
non-reversible fingerprint.
"""

import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "DEMO_KEY_MARKER",
    "MIN_KEY_BYTES",
    "KeyFileError",
    "Keyring",
    "derive_key",
    "key_id",
    "load_secret",
    "read_key_file",
    "write_key_file",
]

DEMO_KEY_MARKER = "# DEMO KEY - not for real data"
MIN_KEY_BYTES = 32

_NEW_KEY_BYTES = 32
_DERIVED_KEY_BYTES = 32
_HKDF_INFO_PREFIX = b"ipc-finance-pipeline/"
_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]*")
_RECIPIENT_NAME = re.compile(r"[A-Za-z0-9_-]+")
_ENVIRONMENTS = ("demo", "production")


class KeyFileError(Exception):
    """A key file is missing, unreadable, malformed, too weak or not allowed here.

    Messages name the file and say what to do; they never contain key material.
    """


def read_key_file(path: Path) -> tuple[bytes, bool]:
    """Read a key file and return ``(secret, is_demo)``.

    The file holds hex text: at least ``2 * MIN_KEY_BYTES`` hex digits once
    whitespace and lines starting with ``#`` are removed (the digits may be split
    over several lines). ``is_demo`` is true when its first line is
    ``DEMO_KEY_MARKER``.

    Raises:
        KeyFileError: the file is missing or unreadable, is accessible by group or
            others (POSIX), holds anything other than hex digits, or holds fewer
            than ``MIN_KEY_BYTES`` bytes of key.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"Key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"Key file {path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise KeyFileError(f"Key file {path} is not a regular file")
    if os.name == "posix" and mode & 0o077:
        raise KeyFileError(
            f"Key file {path} is accessible by group or others "
            f"(permissions {stat.S_IMODE(mode):04o}); "
            f"make it readable by its owner only: chmod 600 {path}"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"Key file {path} cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise KeyFileError(
            f"Key file {path} is not hex text (it is not even valid UTF-8)"
        ) from None

    lines = text.splitlines()
    is_demo = bool(lines) and lines[0].strip() == DEMO_KEY_MARKER
    digits = "".join("".join(line.split()) for line in lines if not line.lstrip().startswith("#"))
    if not _HEX_DIGITS.fullmatch(digits):
        raise KeyFileError(
            f"Key file {path} must hold only hex digits (0-9, a-f), whitespace "
            "and '#' comment lines; it holds something else"
        )
    if len(digits) % 2:
        raise KeyFileError(
            f"Key file {path} holds an odd number of hex digits; each byte of key is two hex digits"
        )
    secret = bytes.fromhex(digits)
    if len(secret) < MIN_KEY_BYTES:
        raise KeyFileError(
            f"Key file {path} holds {len(secret)} bytes of key; "
            f"at least {MIN_KEY_BYTES} are required (run `ipc keygen` for a new one)"
        )
    return secret, is_demo


def write_key_file(path: Path, *, demo: bool = False) -> None:
    """Write a new random key file readable and writable by its owner only.

    The file holds ``_NEW_KEY_BYTES`` bytes from :func:`secrets.token_bytes` as
    lowercase hex and a newline, after a ``DEMO_KEY_MARKER`` line when ``demo``.
    Missing parent folders are created (owner-only). The file appears complete or
    not at all: it is written under a temporary name created with ``O_EXCL`` and
    mode 0600, then hard-linked into place, which fails rather than replace an
    existing file.

    Raises:
        KeyFileError: the file already exists, or it cannot be written.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise KeyFileError(f"Key file {path} already exists; refusing to overwrite it")
    content = secrets.token_bytes(_NEW_KEY_BYTES).hex() + "\n"
    if demo:
        content = DEMO_KEY_MARKER + "\n" + content
    data = content.encode("ascii")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(
            f"Cannot create the folder {path.parent} for key file {path} ({exc.strerror})"
        ) from None

    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        _write_new_file(tmp, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise KeyFileError(
                f"Key file {path} already exists; refusing to overwrite it"
            ) from None
        except OSError:
            # File systems without hard links: create the target itself with O_EXCL.
            _write_new_file(path, data)
    except FileExistsError:
        raise KeyFileError(f"Key file {path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"Cannot write key file {path} ({exc.strerror})") from None
    finally:
        tmp.unlink(missing_ok=True)


def _write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` (which must not exist) with mode 0600 and write ``data``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def load_secret(key_file: Path | None, *, environment: str, demo_key_path: Path) -> bytes:
    """Return the secret the pipeline runs with, enforcing the environment's rules.

    Args:
        key_file: the file ``IPC_KEY_FILE`` names, or None when it is not set.
        environment: ``IPC_ENV``: ``"demo"`` or ``"production"``.
        demo_key_path: where demo mode keeps its generated key when ``key_file``
            is None; it is created (marked as a demo key) on first use.

    Raises:
        KeyFileError: an unknown environment; production without ``key_file`` or
            with a key marked as a demo key; any problem reading the key file.
    """
    if environment not in _ENVIRONMENTS:
        shown = environment if len(environment) <= 40 else environment[:40] + "..."
        raise KeyFileError(f"IPC_ENV must be 'demo' or 'production', not {shown!r}")
    if environment == "production":
        if key_file is None:
            raise KeyFileError(
                "IPC_KEY_FILE must be set in production: point it at a key file made "
                "with `ipc keygen` (the pipeline never generates a production key)"
            )
        secret, is_demo = read_key_file(key_file)
        if is_demo:
            raise KeyFileError(
                f"Key file {key_file} is a demo key (its first line is "
                f"{DEMO_KEY_MARKER!r}) and production refuses it; "
                "make a real key with `ipc keygen`"
            )
        return secret
    if key_file is not None:
        return read_key_file(key_file)[0]
    demo_key_path = Path(demo_key_path)
    if not demo_key_path.exists():
        try:
            write_key_file(demo_key_path, demo=True)
        except KeyFileError:
            # Another process may have created it first; then use that one.
            if not demo_key_path.exists():
                raise
    return read_key_file(demo_key_path)[0]


def derive_key(secret: bytes, purpose: str) -> bytes:
    """Derive the 32-byte key for one purpose from the secret (HKDF-SHA256).

    ``info`` is ``b"ipc-finance-pipeline/" + purpose`` (UTF-8) and there is no
    salt, so a key holder can re-derive any purpose key from the secret alone.
    """
    if not purpose:
        raise ValueError("purpose must be a non-empty string")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=_DERIVED_KEY_BYTES,
        salt=None,
        info=_HKDF_INFO_PREFIX + purpose.encode("utf-8"),
    )
    return hkdf.derive(secret)


def key_id(secret: bytes) -> str:
    """A short fingerprint of the secret, safe to show in manifests and logs.

    The first 16 hex digits of HMAC-SHA256(derive_key(secret, "key-id"),
    b"ipc key id"): it tells two keys apart without revealing either.
    """
    digest = hmac.digest(derive_key(secret, "key-id"), b"ipc key id", hashlib.sha256)
    return digest.hex()[:16]


@dataclass(frozen=True)
class Keyring:
    """The purpose keys derived from one secret.

    Build it with :meth:`Keyring.from_secret`. Its repr shows only ``key_id``.
    Pseudonyms use ``pseudonymise.hashing.text_key(<derived key>)`` as their HMAC
    key (see that module).
    """

    linkage: bytes = field(repr=False)
    key_id: str
    _secret: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: bytes) -> Self:
        """Derive the keyring from a secret of at least ``MIN_KEY_BYTES`` bytes."""
        if len(secret) < MIN_KEY_BYTES:
            raise ValueError(
                f"the secret holds {len(secret)} bytes; at least {MIN_KEY_BYTES} are required"
            )
        return cls(
            linkage=derive_key(secret, "linkage"),
            key_id=key_id(secret),
            _secret=bytes(secret),
        )

    def recipient(self, name: str) -> bytes:
        """The key for one recipient of a linked dataset (``recipient:<name>``).

        Raises:
            ValueError: ``name`` is not letters, digits, ``_`` and ``-``.
        """
        if not _RECIPIENT_NAME.fullmatch(name):
            raise ValueError(
                f"a recipient name must be letters, digits, '_' or '-' (got {name[:40]!r})"
            )
        return derive_key(self._secret, f"recipient:{name}")

    def purpose(self, name: str) -> bytes:
        """The key for any other named purpose, e.g. ``"manifest"``, ``"fingerprint"``."""
        return derive_key(self._secret, name)
