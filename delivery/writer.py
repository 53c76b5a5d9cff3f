"""Write a whole export at once, so readers never see a mix of two runs.

The export dir (``IPC_EXPORT_DIR``) is a symbolic link to the current run's folder
in a sibling ``.<name>-runs/`` folder. A run writes a new folder there, checks it,
then swaps the link with one atomic ``rename``; a run that fails before the swap
leaves the previous export untouched and its own folder removed.
"""

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: How many earlier runs' folders to keep beside the current one.
KEEP_PREVIOUS_RUNS = 2


class ExportWriteError(OSError):
    """The export could not be written; the previous one is untouched."""


def runs_dir(export_dir: Path) -> Path:
    return export_dir.parent / f".{export_dir.name}-runs"


@contextlib.contextmanager
def staged_export(export_dir: Path) -> Iterator[Path]:
    """Yield an empty folder to write the export into; publish it if the block succeeds."""
    runs = runs_dir(export_dir)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        runs.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=runs))
    except OSError as exc:
        raise ExportWriteError(
            f"cannot write the export under {export_dir.parent}: {exc.strerror}; check that "
            "the folder exists, is writable and has free space (the previous export is "
            "unchanged)"
        ) from None
    try:
        yield staging
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportWriteError(
            f"cannot write the export under {export_dir.parent}: {exc.strerror}; check free "
            "space and permissions (the previous export is unchanged)"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish(export_dir, staging)


def publish(export_dir: Path, run_folder: Path) -> None:
    """Point ``export_dir`` at ``run_folder`` atomically and prune old runs."""
    runs = run_folder.parent
    if export_dir.exists() and not export_dir.is_symlink():
        # An export dir from before this layout (or made by hand): keep it as a run.
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        export_dir.rename(runs / f"{stamp}-previous")
    link = runs / f".link-{run_folder.name}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.symlink(os.path.relpath(run_folder, export_dir.parent), link)
    os.replace(link, export_dir)
    _prune(runs, keep=run_folder)


def _prune(runs: Path, keep: Path) -> None:
    folders = sorted(
        (p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    old = [p for p in folders if p != keep]
    for folder in old[: max(0, len(old) - KEEP_PREVIOUS_RUNS)]:
        shutil.rmtree(folder, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file via a temporary name in the same folder, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
