#!/usr/bin/env python
"""Benchmark `ipc run` against the floor at one or more site sizes (issue 6).

    python benchmarks/run.py --people 250000,1000000 --runs 3 --data-dir benchmarks/data
    make bench PEOPLE=250000,1000000 RUNS=3

For each size: generate the landing and reference data with data/sample/generate.py into
``<data-dir>/people-<N>/`` (reused when ``dataset.json`` there names the same people, seed
and generator), then ``--runs`` times, each in its own subprocess:

* the FLOOR: read every landing CSV (Polars, all text), one HMAC-SHA256 per identifier
  cell with the pipeline's fast path (``pseudonymise_series(text_key(key), ...)``), write
  each file as Parquet (zstd) - nothing else;
* the FULL run: ``ipc run`` with IPC_ENV=production, a key made by ``ipc keygen``, two
  recipients, and a fresh warehouse, export, restricted folder and DAGSTER_HOME.

Wall time is measured around each subprocess; peak RSS is the kernel's high-water mark
of the process tree (``os.wait4``) or the sampled sum of the tree's RSS from /proc,
whichever is larger. After each full run the exports must reconcile (else the benchmark
stops with an error) and the Dagster run's step timings are read from its DAGSTER_HOME.
The summary goes to ``--output`` (benchmarks/results.md), the raw figures to
``<data-dir>/results.json``.
"""

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "data" / "sample" / "generate.py"
SAMPLE_DIR = GENERATOR.parent
DEFAULT_PEOPLE = "250000,1000000"
DEFAULT_SEED = 20231
DEFAULT_RUNS = 3
FINANCIAL_YEARS = 2  # the generator's period: 2023/24 and 2024/25
RECIPIENTS = "site_a,site_b"
IDENTIFIER_COLUMNS = (
    "nhs_number",
    "local_patient_id",
    "date_of_birth",
    "postcode",
    "given_name",
    "family_name",
)
SOURCES = (
    "acute",
    "chc",
    "community",
    "mental_health",
    "primary_care_events",
    "primary_care_registers",
    "social_care",
)
STAGES = ("pseudonymise", "link", "cost", "export")
#: Which rows a stage's rows/s is counted in: landing rows read, or accepted (activity) rows.
STAGE_ROWS = {
    "pseudonymise": "rows_read",
    "link": "rows_read",
    "cost": "rows_accepted",
    "export": "rows_accepted",
}
PENNY_TOLERANCE = 0.005  # half a penny: the totals must round to the same penny

# Issue 6 targets.
TARGET_PEOPLE = 1_000_000
TARGET_BASE_PEOPLE = 250_000
TARGET_WALL_S = 180.0
TARGET_RSS_BYTES = 6 * 10**9
TARGET_FLOOR_RATIO = 2.0
TARGET_GROWTH = 4.4


class BenchmarkError(RuntimeError):
    """The benchmark cannot go on: a subprocess failed or the totals do not reconcile."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Measuring a subprocess: wall time and peak RSS of its process tree


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 4096


class TreeRssSampler(threading.Thread):
    """Polls /proc for the summed RSS of a process and all its descendants.

    The kernel's ``ru_maxrss`` is the high-water mark of the largest single process;
    this catches a tree of processes that are large at the same time. Linux only:
    elsewhere it samples nothing and the kernel figure is used alone.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self.samples = 0
        self._stop_event = threading.Event()
        self._page = _page_size()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        with os.scandir("/proc") as entries:
            for entry in entries:
                if not entry.name.isdigit():
                    continue
                try:
                    stat = Path("/proc", entry.name, "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def _rss(self, pid: int) -> int:
        try:
            return int(Path("/proc", str(pid), "statm").read_text().split()[1]) * self._page
        except (OSError, IndexError, ValueError):
            return 0

    def run(self) -> None:
        if not Path("/proc/self/statm").exists():
            return
        while not self._stop_event.is_set():
            total = sum(self._rss(pid) for pid in self._tree())
            self.peak_bytes = max(self.peak_bytes, total)
            self.samples += 1
            self._stop_event.wait(self.interval)


@dataclass
class Measured:
    """One subprocess, timed."""

    command: list[str]
    returncode: int
    wall_s: float
    started_at: float  # epoch seconds, just before the process was started
    ended_at: float  # epoch seconds, just after it was reaped
    maxrss_bytes: int  # kernel high-water mark (largest process of the tree)
    cpu_s: float  # user + system CPU seconds of the tree
    tree_rss_peak_bytes: int  # sampled sum over the tree
    stdout: str
    stderr: str

    @property
    def peak_rss_bytes(self) -> int:
        return max(self.maxrss_bytes, self.tree_rss_peak_bytes)


def run_measured(
    command: Sequence[str], *, env: dict[str, str], cwd: Path, log_dir: Path, name: str
) -> Measured:
    """Run ``command`` to the end; its wall time and peak RSS; stdout/stderr kept in files."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started_at = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(command), env=env, cwd=cwd, stdout=out, stderr=err)
        sampler = TreeRssSampler(proc.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            wall = time.perf_counter() - t0
            ended_at = time.time()
            sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    maxrss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return Measured(
        command=list(command),
        returncode=proc.returncode,
        wall_s=wall,
        started_at=started_at,
        ended_at=ended_at,
        maxrss_bytes=maxrss,
        cpu_s=usage.ru_utime + usage.ru_stime,
        tree_rss_peak_bytes=sampler.peak_bytes,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


def _fail(what: str, measured: Measured) -> BenchmarkError:
    tail = "\n".join((measured.stderr or measured.stdout).strip().splitlines()[-30:])
    return BenchmarkError(
        f"{what} exited with {measured.returncode}: {' '.join(measured.command)}\n{tail}"
    )


# ---------------------------------------------------------------------------------------
# Data: generate or reuse


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def count_rows(landing: Path) -> dict[str, int]:
    """Data rows per landing file, as Polars reads it (ragged rows kept, all text)."""
    import polars as pl

    rows: dict[str, int] = {}
    for path in sorted(landing.glob("*.csv")):
        frame = pl.scan_csv(
            path, infer_schema=False, truncate_ragged_lines=True, encoding="utf8-lossy"
        )
        rows[path.stem] = int(frame.select(pl.len()).collect().item())
    return rows


def dataset(data_dir: Path, people: int, seed: int) -> dict[str, Any]:
    """The landing and reference folders for ``people``: reused if ``dataset.json``
    matches (people, seed, generator's SHA-256), else generated afresh."""
    folder = data_dir / f"people-{people}"
    landing, reference = folder / "landing", folder / "reference"
    if reference.resolve() == (SAMPLE_DIR / "reference").resolve():
        raise BenchmarkError("refusing to write reference tables over data/sample/reference")
    marker = folder / "dataset.json"
    want = {"people": people, "seed": seed, "generator_sha256": _sha256(GENERATOR)}
    if marker.exists() and landing.is_dir() and reference.is_dir():
        info = json.loads(marker.read_text())
        if all(info.get(k) == v for k, v in want.items()):
            log(f"people {people:,}: reusing {folder}")
            return {**info, "reused": True, "landing": str(landing), "reference": str(reference)}
    for stale in (marker, landing, reference):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    log(f"people {people:,}: generating into {folder} ...")
    command = [
        sys.executable,
        str(GENERATOR),
        "--people",
        str(people),
        "--seed",
        str(seed),
        "--out",
        str(landing),
        "--reference-out",
        str(reference),
        "--quiet",
    ]
    measured = run_measured(command, env=dict(os.environ), cwd=ROOT, log_dir=folder, name="gen")
    if measured.returncode != 0:
        raise _fail("the generator", measured)
    rows = count_rows(landing)
    info = {
        **want,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "generate_s": round(measured.wall_s, 2),
        "generate_peak_rss_bytes": measured.peak_rss_bytes,
        "rows": rows,
        "csv_bytes": sum(p.stat().st_size for p in landing.glob("*.csv")),
    }
    marker.write_text(json.dumps(info, indent=2) + "\n")
    log(f"people {people:,}: {sum(rows.values()):,} rows in {measured.wall_s:.1f} s")
    return {**info, "reused": False, "landing": str(landing), "reference": str(reference)}


# ---------------------------------------------------------------------------------------
# Workers (run as subprocesses of the benchmark)


def floor_worker(landing: Path, key_file: Path, out: Path) -> dict[str, Any]:
    """The floor: read, one HMAC per identifier cell, write Parquet. Nothing else."""
    sys.path.insert(0, str(ROOT))
    import polars as pl

    from pseudonymise.hashing import pseudonymise_series, text_key
    from pseudonymise.keys import derive_key, read_key_file

    secret, _ = read_key_file(key_file)
    key = text_key(derive_key(secret, "linkage"))
    out.mkdir(parents=True, exist_ok=True)
    timings = {"read_s": 0.0, "hash_s": 0.0, "write_s": 0.0}
    rows: dict[str, int] = {}
    cells = 0
    for path in sorted(landing.rglob("*.csv")):
        t0 = time.perf_counter()
        frame = pl.read_csv(
            path, infer_schema=False, truncate_ragged_lines=True, encoding="utf8-lossy"
        )
        t1 = time.perf_counter()
        columns = [c for c in IDENTIFIER_COLUMNS if c in frame.columns]
        frame = frame.with_columns([pseudonymise_series(key, frame.get_column(c)) for c in columns])
        t2 = time.perf_counter()
        name = "__".join(path.relative_to(landing).with_suffix("").parts)
        frame.write_parquet(out / f"{name}.parquet", compression="zstd")
        t3 = time.perf_counter()
        timings["read_s"] += t1 - t0
        timings["hash_s"] += t2 - t1
        timings["write_s"] += t3 - t2
        rows[name] = frame.height
        cells += frame.height * len(columns)
    return {**timings, "rows": rows, "cells_hashed": cells}


def dagster_stats_worker(run_id: str | None) -> dict[str, Any]:
    """The run's step timings from the instance at DAGSTER_HOME (set by the caller)."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    if run_id:
        records = instance.get_run_records(filters=dg.RunsFilter(run_ids=[run_id]))
    else:
        records = instance.get_run_records(limit=1)
    if not records:
        raise BenchmarkError("no Dagster run found in DAGSTER_HOME")
    record = records[0]
    run = record.dagster_run
    steps = [
        {
            "step_key": s.step_key,
            "status": str(s.status.value if s.status else None),
            "start": s.start_time,
            "end": s.end_time,
        }
        for s in instance.get_run_step_stats(run.run_id)
    ]
    return {
        "run_id": run.run_id,
        "status": run.status.value,
        "run_start": record.start_time,
        "run_end": record.end_time,
        "runs_in_instance": instance.get_runs_count(),
        "steps": steps,
    }


# ---------------------------------------------------------------------------------------
# One floor run, one full run


def _python_env() -> dict[str, str]:
    """The environment for a subprocess: ours, without any IPC_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("IPC_")}


def _ipc_command() -> list[str]:
    script = Path(sys.executable).parent / "ipc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipelines.cli"]


def _json_from(measured: Measured, what: str) -> dict[str, Any]:
    if measured.returncode != 0:
        raise _fail(what, measured)
    lines = measured.stdout.strip().splitlines()
    if not lines:
        raise _fail(what, measured)
    return json.loads(lines[-1])


def run_floor(data: dict[str, Any], key_file: Path, work: Path) -> dict[str, Any]:
    out = work / "floor"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "_floor",
        data["landing"],
        str(key_file),
        str(out),
    ]
    measured = run_measured(command, env=_python_env(), cwd=ROOT, log_dir=work, name="floor")
    detail = _json_from(measured, "the floor")
    return {
        "wall_s": measured.wall_s,
        "peak_rss_bytes": measured.peak_rss_bytes,
        "maxrss_bytes": measured.maxrss_bytes,
        "cpu_s": measured.cpu_s,
        "tree_rss_peak_bytes": measured.tree_rss_peak_bytes,
        "parquet_bytes": sum(p.stat().st_size for p in out.glob("*.parquet")),
        **detail,
    }


def verify_exports(export_dir: Path, landing_rows: dict[str, int]) -> dict[str, Any]:
    """Totals reconcile, or BenchmarkError. Returns the row counts the stages are rated in."""
    import polars as pl

    reconciliation = pl.read_parquet(export_dir / "reconciliation.parquet")
    person_costs = pl.read_parquet(export_dir / "person_costs.parquet", columns=["cost_total"])
    problems = []
    for r in reconciliation.iter_rows(named=True):
        if r["rows_read"] != r["rows_accepted"] + r["rows_quarantined"]:
            problems.append(
                f"{r['source']}: rows_read {r['rows_read']} != accepted {r['rows_accepted']}"
                f" + quarantined {r['rows_quarantined']}"
            )
    # math.fsum: a plain float sum of millions of costs drifts by pennies.
    person_total = math.fsum(person_costs["cost_total"].to_list())
    reconciliation_total = math.fsum(reconciliation["cost_total"].to_list())
    difference = person_total - reconciliation_total
    if abs(difference) >= PENNY_TOLERANCE:
        problems.append(
            f"person_costs cost_total sums to {person_total:.4f} but reconciliation's to "
            f"{reconciliation_total:.4f} (difference {difference:+.4f})"
        )
    if problems:
        raise BenchmarkError(
            f"totals do not reconcile in {export_dir}:\n  - " + "\n  - ".join(problems)
        )
    read = {str(r["source"]): int(r["rows_read"]) for r in reconciliation.iter_rows(named=True)}
    warnings = [
        f"{source}: the landing file has {count:,} rows (Polars) but ipc run read "
        f"{read.get(source, 0):,}"
        for source, count in landing_rows.items()
        if read.get(source, 0) != count
    ]
    return {
        "rows_read": int(reconciliation["rows_read"].sum()),
        "rows_accepted": int(reconciliation["rows_accepted"].sum()),
        "rows_quarantined": int(reconciliation["rows_quarantined"].sum()),
        "person_years": person_costs.height,
        "cost_total": reconciliation_total,
        "cost_difference": difference,
        "warnings": warnings,
    }


def stage_of(step_key: str) -> str:
    if step_key.startswith("pseudonymised__"):
        return "pseudonymise"
    if step_key in ("linked_tables", "reference_tables"):
        return "link"
    if step_key.startswith("costing__"):
        return "cost"
    if step_key == "exports":
        return "export"
    return "other"


def summarise_steps(stats: dict[str, Any], measured: Measured) -> dict[str, Any]:
    """Stage seconds and Dagster's overhead from one run's step timings."""
    steps = {
        s["step_key"]: s["end"] - s["start"]
        for s in stats["steps"]
        if s["start"] is not None and s["end"] is not None
    }
    if len(steps) != len(stats["steps"]):
        missing = [s["step_key"] for s in stats["steps"] if s["step_key"] not in steps]
        raise BenchmarkError(f"steps without a start or end time: {', '.join(missing)}")
    stages = dict.fromkeys((*STAGES, "other"), 0.0)
    for key, seconds in steps.items():
        stages[stage_of(key)] += seconds
    first_start = min(s["start"] for s in stats["steps"])
    last_end = max(s["end"] for s in stats["steps"])
    step_sum = sum(steps.values())
    return {
        "steps": steps,
        "stages": stages,
        "step_sum_s": step_sum,
        "startup_s": first_start - measured.started_at,
        "between_steps_s": (last_end - first_start) - step_sum,
        "after_last_step_s": measured.ended_at - last_end,
        "outside_steps_s": measured.wall_s - step_sum,
    }


def run_full(data: dict[str, Any], key_file: Path, work: Path) -> dict[str, Any]:
    folder = work / "full"
    env = _python_env()
    env.update(
        {
            "IPC_LANDING_DIR": data["landing"],
            "IPC_REFERENCE_DIR": data["reference"],
            "IPC_WAREHOUSE": str(folder / "warehouse" / "ipc.duckdb"),
            "IPC_EXPORT_DIR": str(folder / "exports"),
            "IPC_RESTRICTED_DIR": str(folder / "restricted"),
            "IPC_KEY_FILE": str(key_file),
            "IPC_ENV": "production",
            "IPC_RECIPIENTS": RECIPIENTS,
            "DAGSTER_HOME": str(folder / "dagster_home"),
        }
    )
    command = [*_ipc_command(), "run"]
    measured = run_measured(command, env=env, cwd=ROOT, log_dir=work, name="ipc-run")
    if measured.returncode != 0:
        raise _fail("ipc run", measured)
    match = re.search(r"\(run ([0-9a-f-]{36})\)", measured.stdout)
    stats_command = [sys.executable, str(Path(__file__).resolve()), "_dagster-stats"]
    if match:
        stats_command.append(match.group(1))
    stats = _json_from(
        run_measured(stats_command, env=env, cwd=ROOT, log_dir=work, name="dagster-stats"),
        "reading the Dagster run's step timings",
    )
    if stats["status"] != "SUCCESS":
        raise BenchmarkError(f"the Dagster run {stats['run_id']} ended {stats['status']}")
    counts = verify_exports(folder / "exports", data["rows"])
    return {
        "wall_s": measured.wall_s,
        "peak_rss_bytes": measured.peak_rss_bytes,
        "maxrss_bytes": measured.maxrss_bytes,
        "cpu_s": measured.cpu_s,
        "tree_rss_peak_bytes": measured.tree_rss_peak_bytes,
        "run_id": stats["run_id"],
        "counts": counts,
        **summarise_steps(stats, measured),
    }


def import_times(runs: int = 2) -> dict[str, float]:
    """Fastest of ``runs`` fresh interpreters importing Dagster, and the code location."""
    result = {}
    for label, module in (("dagster", "dagster"), ("definitions", "pipelines.definitions")):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", f"import {module}"],
                cwd=ROOT,
                env=_python_env(),
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - t0)
        result[label] = min(times)
    return result


# ---------------------------------------------------------------------------------------
# The machine


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews timings."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.MULTILINE)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', _read("/etc/os-release"), re.MULTILINE)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    packages = {}
    for name in ("dagster", "duckdb", "polars", "polars-hash", "pyarrow", "numpy"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    return {
        "cpu_model": cpu.group(1).strip() if cpu else platform.processor() or "unknown",
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "memory_bytes": int(memory.group(1)) * 1024 if memory else None,
        "os": os_name.group(1) if os_name else platform.system(),
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "packages": packages,
        "git": _git(),
        "load_start": load_average(),
    }


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes" if dirty else head


# ---------------------------------------------------------------------------------------
# The report


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def _s(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds < 10 else f"{seconds:.1f}"


def _gb(n: float) -> str:
    return f"{n / 10**9:.2f} GB"


def _rate(rows: float, seconds: float) -> str:
    if seconds <= 0:
        return "-"
    per_s = rows / seconds
    return f"{per_s / 1e6:.2f} M" if per_s >= 1e6 else f"{per_s / 1e3:.0f} k"


def _cores(runs: Sequence[dict[str, Any]]) -> float:
    return _median(r["cpu_s"] / r["wall_s"] for r in runs)


def _shown(path: Path) -> str:
    """A path relative to the project when it is inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _spread(values: Sequence[float]) -> str:
    return f"{_s(_median(values))} ({_s(min(values))}–{_s(max(values))})"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


@dataclass
class SizeResult:
    people: int
    data: dict[str, Any]
    floors: list[dict[str, Any]] = field(default_factory=list)
    fulls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def floor_median(self) -> float:
        return _median(f["wall_s"] for f in self.floors)

    @property
    def full_median(self) -> float:
        return _median(f["wall_s"] for f in self.fulls)

    @property
    def full_peak(self) -> int:
        return max(f["peak_rss_bytes"] for f in self.fulls)

    @property
    def floor_peak(self) -> int:
        return max(f["peak_rss_bytes"] for f in self.floors)

    @property
    def landing_rows(self) -> int:
        return sum(self.data["rows"].values())


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def targets(results: dict[int, SizeResult]) -> list[list[str]]:
    rows = []
    big = results.get(TARGET_PEOPLE)
    base = results.get(TARGET_BASE_PEOPLE)
    not_run = f"not measured (run --people {TARGET_PEOPLE})"
    if big:
        rows.append(
            [
                "1,000,000 people: `ipc run` wall time ≤ 3 min",
                f"{_s(big.full_median)} s (median)",
                _verdict(big.full_median <= TARGET_WALL_S),
            ]
        )
        rows.append(
            [
                "1,000,000 people: peak RSS ≤ 6 GB",
                f"{_gb(big.full_peak)} (max over runs)",
                _verdict(big.full_peak <= TARGET_RSS_BYTES),
            ]
        )
    else:
        rows.append(["1,000,000 people: `ipc run` wall time ≤ 3 min", not_run, "-"])
        rows.append(["1,000,000 people: peak RSS ≤ 6 GB", not_run, "-"])
    for people, r in sorted(results.items()):
        ratio = r.full_median / r.floor_median
        rows.append(
            [
                f"{people:,} people: full run ≤ 2× the floor",
                f"{ratio:.2f}× ({_s(r.full_median)} s / {_s(r.floor_median)} s)",
                _verdict(ratio <= TARGET_FLOOR_RATIO),
            ]
        )
    if big and base:
        growth = big.full_median / base.full_median
        rows.append(
            [
                "linear growth: time(1,000,000) / time(250,000) ≤ 4.4",
                f"{growth:.2f}",
                _verdict(growth <= TARGET_GROWTH),
            ]
        )
    else:
        rows.append(
            [
                "linear growth: time(1,000,000) / time(250,000) ≤ 4.4",
                f"not measured (run --people {TARGET_BASE_PEOPLE},{TARGET_PEOPLE})",
                "-",
            ]
        )
    return rows


def render(
    results: dict[int, SizeResult],
    info: dict[str, Any],
    args: argparse.Namespace,
    imports: dict[str, float],
) -> str:
    m = info["machine"]
    sizes = sorted(results)
    title = "# Benchmark: `ipc run` against the floor"
    if args.label:
        title += f" ({args.label})"
    out = [title, ""]
    notes = []
    if args.label:
        notes.append(f"**{args.label[:1].upper() + args.label[1:]}.**")
    if max(sizes) < TARGET_PEOPLE:
        notes.append(
            "Sizes below the issue-6 benchmark (250,000 and 1,000,000 people): at these sizes "
            "fixed costs (interpreter, imports, Dagster start-up) dominate, so the figures "
            "test the harness and are not the issue's verdict."
        )
    if notes:
        out += ["> " + " ".join(notes), ""]
    out += [
        f"Run on {info['started']} (UTC) for {info['took_s'] / 60:.1f} min by "
        f"`{info['command']}`; code at `{m['git']}`. "
        f"{args.runs} run(s) of the floor and of the full run per size, alternating; "
        "figures are medians with (min–max).",
        "",
        "## Machine",
        "",
    ]
    memory = f"{m['memory_bytes'] / 2**30:.1f} GiB" if m["memory_bytes"] else "unknown"
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    out += _table(
        ["", ""],
        [
            ["CPU", f"{m['cpu_model']}: {m['cpus']} logical CPUs ({m['cpus_usable']} usable)"],
            ["memory", memory],
            ["OS", f"{m['os']} ({m['kernel']})"],
            ["Python", m["python"]],
            [
                "load average (1/5/15 min)",
                f"{m['load_start']} before the benchmark, {m['load_end']} at its end "
                f"(which counts the benchmark itself); with {m['cpus']} CPUs, a load near or "
                "above that before the start means other work shared the machine",
            ],
            ["packages", packages],
        ],
    )
    out += [
        "",
        "## Data",
        "",
        f"`data/sample/generate.py --seed {args.seed}`: two financial years (2023/24, 2024/25), "
        "all seven landing files, the generator's fault mix (rows the contract quarantines "
        "included). Rows per person per year = landing rows / people / 2.",
        "",
    ]
    header = ["people", "landing rows", "rows / person / year", "CSV size", *SOURCES]
    rows = []
    for people in sizes:
        d = results[people].data
        total = results[people].landing_rows
        rows.append(
            [
                f"{people:,}",
                f"{total:,}",
                f"{total / people / FINANCIAL_YEARS:.2f}",
                f"{d['csv_bytes'] / 2**20:,.0f} MiB",
                *(f"{d['rows'].get(s, 0):,}" for s in SOURCES),
            ]
        )
    out += _table(header, rows)
    per_source = {
        s: results[sizes[-1]].data["rows"].get(s, 0) / sizes[-1] / FINANCIAL_YEARS for s in SOURCES
    }
    out += [
        "",
        f"Per person per year at {sizes[-1]:,} people: "
        + ", ".join(f"{s} {v:.2f}" if v >= 0.1 else f"{s} {v:.3f}" for s, v in per_source.items())
        + ".",
        "",
        "## Wall time and memory",
        "",
        "The floor: read every landing CSV (Polars, all text), one HMAC-SHA256 per identifier "
        "cell (" + ", ".join(f"`{c}`" for c in IDENTIFIER_COLUMNS) + " where present) with "
        "`pseudonymise_series(text_key(key), ...)`, write each file as Parquet (zstd); "
        "nothing else. The full run: `ipc run` (Dagster included), IPC_ENV=production, "
        f"recipients `{RECIPIENTS}`, fresh warehouse, exports and DAGSTER_HOME each run. "
        "Both are timed as whole processes, interpreter start-up included. GB = 10⁹ bytes. "
        "CPU cores busy = (user + system CPU seconds) / wall seconds, median over runs.",
        "",
    ]
    rows = []
    for people in sizes:
        r = results[people]
        rows.append(
            [
                f"{people:,}",
                _spread([f["wall_s"] for f in r.floors]),
                _spread([f["wall_s"] for f in r.fulls]),
                f"{r.full_median / r.floor_median:.2f}×",
                _gb(r.floor_peak),
                _gb(r.full_peak),
                f"{_rate(r.landing_rows, r.floor_median)} / {_rate(r.landing_rows, r.full_median)}",
                f"{_cores(r.floors):.2f} / {_cores(r.fulls):.2f}",
            ]
        )
    out += _table(
        [
            "people",
            "floor s",
            "full run s",
            "full / floor",
            "floor peak RSS",
            "full peak RSS",
            "landing rows/s floor / full",
            "CPU cores busy floor / full",
        ],
        rows,
    )
    out += [
        "",
        "## Stages of the full run",
        "",
        "Sum of the Dagster step durations per stage (median over runs): pseudonymise = "
        "`pseudonymised__*`; link = `reference_tables`, `linked_tables`; cost = "
        "`costing__*`; export = `exports`. Rows/s is over landing rows read (pseudonymise, "
        "link) or accepted activity rows (cost, export), from `reconciliation.parquet`.",
        "",
    ]
    rows = []
    for people in sizes:
        r = results[people]
        counts = r.fulls[0]["counts"]
        for stage in (*STAGES, "other"):
            seconds = _median(f["stages"][stage] for f in r.fulls)
            if stage == "other" and seconds == 0:
                continue
            basis = STAGE_ROWS.get(stage, "rows_read")
            rows.append(
                [
                    f"{people:,}",
                    stage,
                    _spread([f["stages"][stage] for f in r.fulls]),
                    f"{counts[basis]:,} ({'landing' if basis == 'rows_read' else 'accepted'})",
                    _rate(counts[basis], seconds),
                    f"{seconds / r.full_median:.0%}",
                ]
            )
        outside = _median(f["outside_steps_s"] for f in r.fulls)
        rows.append(
            [
                f"{people:,}",
                "outside any step",
                _spread([f["outside_steps_s"] for f in r.fulls]),
                "",
                "",
                f"{outside / r.full_median:.0%}",
            ]
        )
    out += _table(["people", "stage", "seconds", "rows", "rows/s", "share of wall"], rows)
    out += [
        "",
        "## Dagster overhead",
        "",
        "Start-up: process start to the first step's start (interpreter, imports of Dagster "
        "and our modules, definitions, instance and run set-up). Between steps: first step "
        "start to last step end, minus the steps' durations. After: last step end to process "
        "exit. Wall − Σ steps is all three. Step durations themselves also hold Dagster's "
        "per-step bookkeeping (events, metadata, checks), which this does not separate. "
        f"For scale, a fresh interpreter imports `dagster` in {_s(imports['dagster'])} s and "
        f"`pipelines.definitions` (Dagster and every module of ours) in "
        f"{_s(imports['definitions'])} s (fastest of 2).",
        "",
    ]
    rows = []
    for people in sizes:
        r = results[people]
        rows.append(
            [
                f"{people:,}",
                _spread([f["startup_s"] for f in r.fulls]),
                _spread([f["between_steps_s"] for f in r.fulls]),
                _spread([f["after_last_step_s"] for f in r.fulls]),
                _spread([f["outside_steps_s"] for f in r.fulls]),
                f"{_median(f['outside_steps_s'] for f in r.fulls) / r.full_median:.0%}",
            ]
        )
    out += _table(
        [
            "people",
            "start-up s",
            "between steps s",
            "after last step s",
            "wall − Σ steps s",
            "share",
        ],
        rows,
    )
    out += ["", "## Steps (median seconds)", ""]
    step_keys = list(results[sizes[0]].fulls[0]["steps"])
    rows = []
    for key in step_keys:
        rows.append(
            [
                f"`{key}`",
                stage_of(key),
                *(_s(_median(f["steps"].get(key, 0.0) for f in results[p].fulls)) for p in sizes),
            ]
        )
    out += _table(["step", "stage", *(f"{p:,}" for p in sizes)], rows)
    growth_pairs = [(a, b) for a in sizes for b in sizes if b == 4 * a]
    if growth_pairs:
        out += ["", "## Growth (4× the people)", ""]
        rows = [
            [
                f"{a:,} → {b:,}",
                f"{results[b].landing_rows / results[a].landing_rows:.2f}",
                f"{results[b].full_median / results[a].full_median:.2f}",
                f"{results[b].floor_median / results[a].floor_median:.2f}",
            ]
            for a, b in growth_pairs
        ]
        out += _table(["people", "rows ratio", "full run time ratio", "floor time ratio"], rows)
    out += ["", "## Targets (issue 6)", ""]
    out += _table(["target", "measured", "result"], targets(results))
    out += [
        "",
        "Where the time and memory go, what was changed and what would close the gaps: "
        "[profile.md](profile.md) (written from profiles, not by this script).",
    ]
    out += ["", "## Checks", ""]
    diffs = [f["counts"]["cost_difference"] for r in results.values() for f in r.fulls]
    out += [
        f"Every full run ({sum(len(r.fulls) for r in results.values())}) reconciled: per "
        "source rows_read = rows_accepted + rows_quarantined in `reconciliation.parquet`, "
        "and `person_costs.parquet`'s cost_total sums to reconciliation's to the penny "
        f"(largest difference £{max(abs(d) for d in diffs):.6f}). The benchmark stops "
        "with an error otherwise.",
    ]
    warnings = sorted(
        {w for r in results.values() for f in r.fulls for w in f["counts"]["warnings"]}
    )
    if warnings:
        out += ["", "**Warnings** (landing rows counted by Polars vs rows_read):", ""]
        out += [f"- {w}" for w in warnings]
    else:
        out += [
            "",
            "Every landing row Polars counts was read by `ipc run` (sum of rows_read per "
            "source = the file's rows).",
        ]
    out += [
        "",
        "## How it was measured",
        "",
        "- Each floor and full run is a separate subprocess; wall time is measured around "
        "it. Peak RSS is the larger of the kernel's high-water mark for the process tree "
        "(`os.wait4` rusage: the largest single process) and the summed RSS of the tree "
        "sampled from /proc every 0.2 s.",
        "- The data is generated once per size and reused while people, seed and the "
        "generator's SHA-256 are unchanged (`dataset.json` beside it); it is in the page "
        "cache for every run.",
        "- Step timings are Dagster's own (`DagsterInstance.get_run_step_stats`) from the "
        "run's fresh DAGSTER_HOME. `ipc run` executes in-process, one step at a time.",
        f"- Raw figures of every run: `{_shown(args.data_dir)}/results.json` (not committed).",
        "",
    ]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Main


def parse_people(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        scale = 1
        if part.endswith("k"):
            part, scale = part[:-1], 1_000
        elif part.endswith("m"):
            part, scale = part[:-1], 1_000_000
        value = int(float(part) * scale)
        if value < 1:
            raise argparse.ArgumentTypeError("--people sizes must be at least 1")
        sizes.append(value)
    if not sizes:
        raise argparse.ArgumentTypeError("--people needs at least one size")
    return sorted(set(sizes))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--people",
        type=parse_people,
        default=parse_people(DEFAULT_PEOPLE),
        help=f"comma-separated sizes, e.g. 250000,1000000 or 250k,1m (default {DEFAULT_PEOPLE})",
    )
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="repetitions per size")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results.md")
    parser.add_argument("--label", default="", help='e.g. "smoke run": shown in the title')
    parser.add_argument("--keep", action="store_true", help="keep each run's warehouse and exports")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="RESULTS_JSON",
        help="run nothing: write --output again from an earlier run's results.json",
    )
    return parser


def rerender(path: Path, output: Path) -> int:
    """Write the report again from a results.json (after changing only the report)."""
    raw = json.loads(path.read_text())
    saved = raw["args"]
    args = argparse.Namespace(
        label=saved["label"],
        runs=saved["runs"],
        seed=saved["seed"],
        data_dir=Path(saved["data_dir"]),
    )
    results = {int(p): SizeResult(**r) for p, r in raw["sizes"].items()}
    info = {k: raw[k] for k in ("started", "command", "machine", "took_s")}
    output.write_text(render(results, info, args, raw["import_s"]))
    log(f"wrote {output} from {path}")
    return 0


def benchmark(args: argparse.Namespace) -> int:
    if args.runs < 1:
        raise BenchmarkError("--runs must be at least 1")
    data_dir = args.data_dir.resolve()
    output = args.output.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    work_root = data_dir / "work"
    if work_root.exists():
        shutil.rmtree(work_root)
    work_root.mkdir()
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    info: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M"),
        "command": shlex.join(["python", "benchmarks/run.py", *sys.argv[1:]]),
        "machine": machine(),
    }
    key_file = work_root / "key.hex"
    keygen = subprocess.run(
        [*_ipc_command(), "keygen", str(key_file)],
        cwd=ROOT,
        env=_python_env(),
        capture_output=True,
        text=True,
    )
    if keygen.returncode != 0:
        raise BenchmarkError(f"ipc keygen failed: {keygen.stderr.strip()}")
    imports = import_times()
    results: dict[int, SizeResult] = {}
    for people in args.people:
        data = dataset(data_dir, people, args.seed)
        result = SizeResult(people, data)
        for i in range(1, args.runs + 1):
            work = work_root / f"people-{people}" / f"run-{i}"
            floor = run_floor(data, key_file, work)
            result.floors.append(floor)
            full = run_full(data, key_file, work)
            result.fulls.append(full)
            log(
                f"people {people:,} run {i}/{args.runs}: floor {floor['wall_s']:.1f} s "
                f"({_gb(floor['peak_rss_bytes'])}), ipc run {full['wall_s']:.1f} s "
                f"({_gb(full['peak_rss_bytes'])}), reconciled"
            )
            for warning in full["counts"]["warnings"]:
                log(f"  warning: {warning}")
            if not args.keep:
                shutil.rmtree(work)
        results[people] = result
    info["took_s"] = time.perf_counter() - t0
    info["machine"]["load_end"] = load_average()
    raw = {
        **info,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "import_s": imports,
        "sizes": {str(p): asdict(r) for p, r in results.items()},
    }
    (data_dir / "results.json").write_text(json.dumps(raw, indent=2, default=str) + "\n")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(results, info, args, imports))
    if not args.keep:
        shutil.rmtree(work_root)
    log(f"wrote {output}")
    return 0


WORKERS: dict[str, Callable[[list[str]], dict[str, Any]]] = {
    "_floor": lambda a: floor_worker(Path(a[0]), Path(a[1]), Path(a[2])),
    "_dagster-stats": lambda a: dagster_stats_worker(a[0] if a else None),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in WORKERS:
            print(json.dumps(WORKERS[argv[0]](argv[1:])))
            return 0
        args = build_parser().parse_args(argv)
        if args.from_json:
            return rerender(args.from_json, args.output)
        return benchmark(args)
    except BenchmarkError as exc:
        log(f"benchmark FAILED: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
