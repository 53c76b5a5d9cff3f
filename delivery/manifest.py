"""Manifests: what was exported, when, by whom, under which key, and its checksums.

Every export folder carries a ``manifest.json`` listing each file with its SHA-256,
size and row count, signed with an HMAC under a key derived for that purpose, so an
edit to a file or to the manifest itself is detected by ``ipc verify``.
"""

import datetime as dt
import getpass
import hashlib
import hmac
import json
import subprocess
from pathlib import Path
from typing import Any

import polars as pl

from delivery.writer import atomic_write_bytes

CONTRACT_VERSION = "1.0"
PIPELINE_VERSION = "0.1.0"
MANIFEST_NAME = "manifest.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rows(path: Path) -> int | None:
    if path.suffix == ".parquet":
        return pl.scan_parquet(path).select(pl.len()).collect().item()
    if path.suffix == ".jsonl":
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    if path.suffix == ".csv":
        return pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()
    return None


def code_version() -> str:
    """The git commit the pipeline runs from, or ``unknown`` outside a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def run_by() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def canonical_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(document: dict[str, Any], manifest_key: bytes) -> str:
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return hmac.new(manifest_key, canonical_json(unsigned), hashlib.sha256).hexdigest()


def write_manifest(
    folder: Path,
    *,
    manifest_key: bytes,
    context: dict[str, Any],
    exclude: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Write ``folder/manifest.json`` covering every file below it except ``exclude``
    (folders, relative to ``folder``); paths are relative to the manifest's folder."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative == MANIFEST_NAME or any(
            relative == e or relative.startswith(e + "/") for e in exclude
        ):
            continue
        files.append(
            {
                "path": relative,
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
                "rows": _rows(path),
            }
        )
    document: dict[str, Any] = {
        "contract_version": CONTRACT_VERSION,
        "pipeline_version": PIPELINE_VERSION,
        "code_version": code_version(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_by": run_by(),
        **context,
        "files": files,
    }
    document["signature"] = sign(document, manifest_key)
    atomic_write_bytes(folder / MANIFEST_NAME, json.dumps(document, indent=2).encode() + b"\n")
    return document


def verify_manifest(folder: Path, manifest_key: bytes) -> list[str]:
    """Every problem with a folder's manifest: bad signature, changed or missing files."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return [f"{path}: no manifest"]
    document = json.loads(path.read_text())
    problems = []
    if not hmac.compare_digest(str(document.get("signature", "")), sign(document, manifest_key)):
        problems.append(f"{path}: signature does not match (edited, or another key)")
    for entry in document.get("files", []):
        file_path = folder / entry["path"]
        if not file_path.is_file():
            problems.append(f"{file_path}: listed in the manifest but missing")
        elif sha256_file(file_path) != entry["sha256"]:
            problems.append(f"{file_path}: SHA-256 differs from the manifest")
    return problems
