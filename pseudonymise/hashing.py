"""Keyed hashing (HMAC-SHA256) of identifier columns.

A pseudonym is the lowercase hex of the first 16 bytes (128 bits) of
HMAC-SHA256(key, value as UTF-8): 32 hex characters, the same for the same value
and key, and useless without the key.

Two implementations give the same answer for the same key bytes:

* the polars-hash plugin (``chash.hmac_sha256``), vectorised in Rust. It takes
  its key as a text string and uses that string's UTF-8 bytes as the HMAC key,
  so it can only be used when the key bytes are valid UTF-8;
* otherwise, the ``cryptography`` HMAC over the column's unique values, joined
  back onto the column.

**Pipeline convention:** every pseudonym in the pipeline is made with
``text_key(derived_key)`` as its HMAC key, e.g.
``pseudonymise_series(text_key(keyring.linkage), nhs_numbers)``. ``text_key`` is
the 64-character hex text of the 32-byte derived key (still 256 bits of
entropy), which is ASCII and so always takes the fast path. A key holder
recomputing a pseudonym by hand does the same::

    hmac.new(derived.hex().encode(), value.encode("utf-8"), "sha256").hexdigest()[:32]

Never pickle or serialise a lazy query holding :func:`pseudonymise_expr`: the
plugin's arguments, the key among them, travel inside the serialised plan.
"""

import hashlib
import hmac
from functools import partial

import polars as pl
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

try:  # registers the `chash` expression namespace
    import polars_hash as _polars_hash  # noqa: F401

    _HAVE_POLARS_HASH = True
except ImportError:  # pragma: no cover - polars-hash is a pinned dependency
    _HAVE_POLARS_HASH = False

__all__ = [
    "PSEUDONYM_HEX_CHARS",
    "hmac_sha256",
    "pseudonymise_expr",
    "pseudonymise_series",
    "text_key",
]

PSEUDONYM_HEX_CHARS = 32
_PSEUDONYM_BYTES = PSEUDONYM_HEX_CHARS // 2
_TEXT_DTYPES = (pl.String, pl.Categorical, pl.Enum, pl.Null)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``key`` (RFC 2104), all 32 bytes."""
    return hmac.digest(key, message, hashlib.sha256)


def text_key(key: bytes) -> bytes:
    """The HMAC key the pipeline uses for a derived key: its hex text as ASCII bytes.

    64 bytes for a 32-byte key, valid UTF-8, so pseudonyms under it take the fast
    (polars-hash) path.
    """
    return key.hex().encode("ascii")


def _plugin_key(key: bytes) -> str | None:
    """The text polars-hash needs to use exactly ``key`` as its HMAC key, if any."""
    if not _HAVE_POLARS_HASH:
        return None
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.encode("utf-8") == key else None


def _plugin_expr(key_text: str, expr: pl.Expr) -> pl.Expr:
    return expr.chash.hmac_sha256(key=key_text).str.slice(0, PSEUDONYM_HEX_CHARS)  # type: ignore[attr-defined]


def _hash_with_plugin(key_text: str, values: pl.Series) -> pl.Series:
    frame = pl.DataFrame({"value": values})
    return frame.select(_plugin_expr(key_text, pl.col("value"))).to_series()


def _hash_unique_values(key: bytes, values: pl.Series) -> pl.Series:
    """HMAC each distinct non-null value once and map the results back."""
    distinct = values.drop_nulls().unique()
    base = crypto_hmac.HMAC(key, hashes.SHA256())
    digests: list[str] = []
    is_binary = distinct.dtype == pl.Binary
    for value in distinct.to_list():
        mac = base.copy()
        mac.update(value if is_binary else value.encode("utf-8"))
        digests.append(mac.finalize()[:_PSEUDONYM_BYTES].hex())
    table = pl.DataFrame({"value": distinct, "pseudonym": pl.Series(digests, dtype=pl.String)})
    joined = pl.DataFrame({"value": values}).join(
        table, on="value", how="left", maintain_order="left"
    )
    return joined.get_column("pseudonym")


def _as_hashable(values: pl.Series) -> pl.Series:
    if values.dtype == pl.Binary:
        return values
    if isinstance(values.dtype, _TEXT_DTYPES):
        return values.cast(pl.String)
    raise TypeError(
        f"pseudonymise_series hashes text (or binary) columns, not {values.dtype}; "
        "cast the column to text explicitly first"
    )


def pseudonymise_series(key: bytes, values: pl.Series) -> pl.Series:
    """Pseudonymise a column: 32 lowercase hex characters per value, null stays null.

    Each value is HMAC-SHA256(``key``, value encoded as UTF-8) truncated to 16
    bytes (Binary values are hashed as they are). The result has the same name,
    length and order as ``values`` and dtype String. Keys that are valid UTF-8
    (such as ``text_key(...)`` keys) use polars-hash; other keys hash each
    distinct value once in Python.

    Raises:
        TypeError: ``values`` is neither text (String, Categorical, Enum) nor Binary.
    """
    hashable = _as_hashable(values)
    key_text = _plugin_key(key)
    if key_text is not None:
        result = _hash_with_plugin(key_text, hashable)
    else:
        result = _hash_unique_values(key, hashable)
    return result.alias(values.name)


def pseudonymise_expr(key: bytes, expr: pl.Expr) -> pl.Expr:
    """The expression form of :func:`pseudonymise_series`, for ``with_columns``.

    ``expr`` must evaluate to String or Binary. With a UTF-8 key (the pipeline's
    ``text_key`` keys) this is the polars-hash plugin; with any other key it runs
    :func:`pseudonymise_series` over each batch.
    """
    key_text = _plugin_key(key)
    if key_text is not None:
        return _plugin_expr(key_text, expr)
    return expr.map_batches(partial(_hash_batch, key), return_dtype=pl.String, is_elementwise=True)


def _hash_batch(key: bytes, values: pl.Series) -> pl.Series:
    return _hash_unique_values(key, _as_hashable(values)).alias(values.name)
