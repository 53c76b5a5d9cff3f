"""Key files, the demo/production rules and purpose-key derivation (pseudonymise.keys)."""

import dataclasses
import hashlib
import hmac
import os
import stat
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pseudonymise.keys import (
    DEMO_KEY_MARKER,
    MIN_KEY_BYTES,
    KeyFileError,
    Keyring,
    derive_key,
    key_id,
    load_secret,
    read_key_file,
    write_key_file,
)

SECRET = bytes(range(32))
SECRET_HEX = SECRET.hex()

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file permissions")


def _key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def _hkdf_sha256_reference(secret: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 HKDF written out with the standard library, to check derive_key."""
    prk = hmac.digest(b"\x00" * 32, secret, hashlib.sha256)  # no salt = HashLen zeros
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.digest(prk, block + info + bytes([counter]), hashlib.sha256)
        okm += block
    return okm[:length]


# --- write_key_file / read_key_file ------------------------------------------------


def test_written_key_reads_back_as_32_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "ipc.key"
    write_key_file(path)

    secret, is_demo = read_key_file(path)

    assert len(secret) == 32
    assert not is_demo
    assert path.read_text() == secret.hex() + "\n"


def test_two_written_keys_differ(tmp_path: Path) -> None:
    write_key_file(tmp_path / "a.key")
    write_key_file(tmp_path / "b.key")
    assert read_key_file(tmp_path / "a.key")[0] != read_key_file(tmp_path / "b.key")[0]


def test_demo_key_has_the_marker_as_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "demo.key"
    write_key_file(path, demo=True)

    assert path.read_text().splitlines()[0] == DEMO_KEY_MARKER
    secret, is_demo = read_key_file(path)
    assert is_demo
    assert len(secret) == 32


@posix_only
def test_written_key_is_owner_only_and_parents_are_created(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "ipc.key"
    write_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert [p.name for p in path.parent.iterdir()] == ["ipc.key"]  # no temporary left


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "ipc.key", SECRET_HEX + "\n")
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path)
    assert path.read_text() == SECRET_HEX + "\n"


def test_comments_whitespace_and_line_breaks_are_ignored(tmp_path: Path) -> None:
    text = (
        f"# made by hand\n  {SECRET_HEX[:20]} {SECRET_HEX[20:40]}\n\t{SECRET_HEX[40:].upper()}  \n"
    )
    path = _key_file(tmp_path / "ipc.key", text)
    assert read_key_file(path) == (SECRET, False)


def test_a_longer_key_is_accepted_whole(tmp_path: Path) -> None:
    long_secret = bytes(range(48))
    path = _key_file(tmp_path / "ipc.key", long_secret.hex())
    assert read_key_file(path) == (long_secret, False)


def test_marker_only_counts_on_the_first_line(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "ipc.key", f"# a comment\n{DEMO_KEY_MARKER}\n{SECRET_HEX}\n")
    assert read_key_file(path) == (SECRET, False)


def test_missing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.key"
    with pytest.raises(KeyFileError, match="does not exist") as info:
        read_key_file(path)
    assert str(path) in str(info.value)


def test_a_folder_is_not_a_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not a regular file"):
        read_key_file(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SECRET_HEX[:40] + "\n", "holds 20 bytes of key; at least 32 are required"),
        ("", "holds 0 bytes of key"),
        ("# only a comment\n", "holds 0 bytes of key"),
        (SECRET_HEX + "zz\n", "only hex digits"),
        ("0x" + SECRET_HEX + "\n", "only hex digits"),
        (SECRET_HEX + "  # trailing comment\n", "only hex digits"),
        (SECRET_HEX + "a\n", "odd number of hex digits"),
    ],
)
def test_malformed_or_short_keys_are_refused_without_showing_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _key_file(tmp_path / "ipc.key", text)
    with pytest.raises(KeyFileError, match=message) as info:
        read_key_file(path)
    shown = str(info.value).lower()
    assert str(path).lower() in shown
    assert SECRET_HEX[:16] not in shown
    assert SECRET_HEX[-16:] not in shown


def test_binary_content_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ipc.key"
    path.write_bytes(b"\xff\xfe" + SECRET)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not hex text"):
        read_key_file(path)


def test_message_for_a_short_key_matches_the_contract(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "key.hex", bytes(20).hex())
    with pytest.raises(KeyFileError) as info:
        read_key_file(path)
    assert str(info.value).startswith(
        f"Key file {path} holds 20 bytes of key; at least {MIN_KEY_BYTES} are required"
    )


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o610])
def test_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _key_file(tmp_path / "ipc.key", SECRET_HEX, mode=mode)
    with pytest.raises(KeyFileError, match="chmod 600") as info:
        read_key_file(path)
    assert SECRET_HEX[:16] not in str(info.value)


@posix_only
def test_owner_read_only_key_file_is_fine(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "ipc.key", SECRET_HEX, mode=0o400)
    assert read_key_file(path) == (SECRET, False)


# --- load_secret -------------------------------------------------------------------


def test_production_requires_ipc_key_file(tmp_path: Path) -> None:
    demo_path = tmp_path / "demo.key"
    with pytest.raises(KeyFileError, match="IPC_KEY_FILE must be set"):
        load_secret(None, environment="production", demo_key_path=demo_path)
    assert not demo_path.exists()  # production never generates a key


def test_production_refuses_a_demo_key(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "ipc.key", f"{DEMO_KEY_MARKER}\n{SECRET_HEX}\n")
    with pytest.raises(KeyFileError, match="demo key") as info:
        load_secret(path, environment="production", demo_key_path=tmp_path / "d.key")
    assert SECRET_HEX[:16] not in str(info.value)


def test_production_uses_its_key_file(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "ipc.key", SECRET_HEX)
    assert load_secret(path, environment="production", demo_key_path=tmp_path / "d") == SECRET


def test_production_reports_problems_with_the_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_secret(tmp_path / "gone.key", environment="production", demo_key_path=tmp_path)


def test_demo_generates_its_key_on_first_use_and_reuses_it(tmp_path: Path) -> None:
    demo_path = tmp_path / "restricted" / "demo.key"

    first = load_secret(None, environment="demo", demo_key_path=demo_path)
    second = load_secret(None, environment="demo", demo_key_path=demo_path)

    assert first == second
    assert len(first) == 32
    assert read_key_file(demo_path) == (first, True)


def test_demo_uses_a_given_key_file_and_generates_nothing(tmp_path: Path) -> None:
    path = _key_file(tmp_path / "ipc.key", SECRET_HEX)
    demo_path = tmp_path / "demo.key"
    assert load_secret(path, environment="demo", demo_key_path=demo_path) == SECRET
    assert not demo_path.exists()


@pytest.mark.parametrize("environment", ["", "prod", "Production", "test"])
def test_unknown_environment_is_refused(tmp_path: Path, environment: str) -> None:
    with pytest.raises(KeyFileError, match="IPC_ENV must be 'demo' or 'production'"):
        load_secret(None, environment=environment, demo_key_path=tmp_path / "demo.key")


# --- derive_key, key_id ------------------------------------------------------------


@pytest.mark.parametrize(
    "purpose", ["linkage", "recipient:demo_site", "manifest", "fingerprint", "key-id"]
)
def test_derive_key_is_rfc5869_hkdf_sha256_with_the_pipeline_info(purpose: str) -> None:
    expected = _hkdf_sha256_reference(SECRET, b"ipc-finance-pipeline/" + purpose.encode())
    assert derive_key(SECRET, purpose) == expected


def test_derive_key_matches_rfc5869_test_case_3() -> None:
    # RFC 5869 A.3: SHA-256, no salt, no info (here info is our prefix, so check
    # the reference implementation against the RFC first).
    ikm = bytes([0x0B] * 22)
    okm = _hkdf_sha256_reference(ikm, b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


@given(st.binary(min_size=32, max_size=64), st.text(min_size=1), st.text(min_size=1))
def test_different_purposes_give_unrelated_keys(secret: bytes, a: str, b: str) -> None:
    key_a, key_b = derive_key(secret, a), derive_key(secret, b)
    assert len(key_a) == 32
    assert (key_a == key_b) == (a == b)
    assert key_a != secret[:32]


def test_key_id_is_a_short_stable_fingerprint() -> None:
    fingerprint = key_id(SECRET)
    expected = hmac.digest(derive_key(SECRET, "key-id"), b"ipc key id", hashlib.sha256)
    assert fingerprint == expected.hex()[:16]
    assert key_id(SECRET) == fingerprint
    assert len(fingerprint) == 16
    assert set(fingerprint) <= set(string.digits + "abcdef")
    assert fingerprint not in SECRET_HEX
    assert key_id(bytes(32)) != fingerprint


# --- Keyring -----------------------------------------------------------------------


def test_keyring_derives_each_purpose_key() -> None:
    keyring = Keyring.from_secret(SECRET)
    assert keyring.linkage == derive_key(SECRET, "linkage")
    assert keyring.key_id == key_id(SECRET)
    assert keyring.recipient("demo_site") == derive_key(SECRET, "recipient:demo_site")
    assert keyring.purpose("manifest") == derive_key(SECRET, "manifest")
    assert keyring.purpose("fingerprint") == derive_key(SECRET, "fingerprint")


def test_each_recipient_gets_its_own_key() -> None:
    keyring = Keyring.from_secret(SECRET)
    keys = {keyring.recipient(name) for name in ["site_a", "site-b", "SITE_A", "project1"]}
    keys.add(keyring.linkage)
    assert len(keys) == 5


@pytest.mark.parametrize("name", ["", "site a", "site/a", "site:a", "sité", "../x", "a\n"])
def test_recipient_names_are_letters_digits_underscore_hyphen(name: str) -> None:
    with pytest.raises(ValueError, match="recipient name"):
        Keyring.from_secret(SECRET).recipient(name)


def test_keyring_repr_shows_no_key_material() -> None:
    keyring = Keyring.from_secret(SECRET)
    shown = repr(keyring) + str(keyring)
    assert keyring.key_id in shown
    for secret in (SECRET, keyring.linkage, keyring.recipient("demo_site")):
        assert secret.hex()[:16] not in shown
        assert repr(secret)[2:20] not in shown


def test_keyring_is_immutable() -> None:
    keyring = Keyring.from_secret(SECRET)
    with pytest.raises(dataclasses.FrozenInstanceError):
        keyring.linkage = bytes(32)  # type: ignore[misc]


def test_keyring_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Keyring.from_secret(bytes(20))
