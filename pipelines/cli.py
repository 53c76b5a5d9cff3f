"""The ``ipc`` command: run the pipeline, make keys, validate a delivery, verify exports.

    ipc run [--executor multiprocess]   materialise every asset for the IPC_* settings
    ipc keygen PATH         write a new secret key file (owner-only permissions)
    ipc validate            check the landing and reference folders, run nothing else
    ipc rekey --from OLD --to NEW   rebuild under a new key; old-to-new ids kept restricted
    ipc verify [EXPORT_DIR] check the manifests' signatures and every file's SHA-256
    ipc audit-scan          look for identifiers everywhere the pipeline wrote
    ipc statement           key holders: one person's statement, NHS number on stdin

Messages name files, rows, columns and reason codes, never a cell value.
"""

import argparse
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _ensure_dagster_home() -> Path:
    """Use DAGSTER_HOME if set; else a git-ignored `.dagster/` with the project's
    dagster.yaml, so every run is recorded where `make ui` shows it. The project's own
    folder follows the project's dagster.yaml as it changes; a DAGSTER_HOME set by the
    user keeps its own file once it has one."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        path = Path(home)
    else:
        path = PROJECT_ROOT / ".dagster"
        os.environ["DAGSTER_HOME"] = str(path)
    path.mkdir(parents=True, exist_ok=True)
    config, project_config = path / "dagster.yaml", PROJECT_ROOT / "dagster.yaml"
    if project_config.exists() and (
        not config.exists() or (not home and config.read_bytes() != project_config.read_bytes())
    ):
        shutil.copyfile(project_config, config)
    return path


def _root_message(error: Any) -> str:
    """The innermost error's message: Dagster wraps ours in its own."""
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message.strip() if error is not None else "failed"


def _check_detail(metadata: Any) -> str:
    """What a failed check found, from its metadata (counts and sentences only)."""
    for key in ("problems", "findings"):
        entry = (metadata or {}).get(key)
        value = getattr(entry, "value", entry)
        if value:
            return "; ".join(str(v) for v in value)
    return "see its metadata in the Dagster UI"


def run_failures(events: Iterable[Any]) -> list[str]:
    """Failed steps (with the error that stopped them) and failed checks, as sentences."""
    failures = []
    for event in events:
        if event.is_step_failure and event.step_failure_data is not None:
            failures.append(
                f"step {event.step_key} failed: {_root_message(event.step_failure_data.error)}"
            )
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if evaluation is not None and not getattr(evaluation, "passed", True):
                failures.append(
                    f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
                    f"failed: {_check_detail(evaluation.metadata)}"
                )
    return failures


def full_run_job() -> Any:
    """The `ipc_full_run` job, for Dagster to rebuild in each step's own process when the
    multiprocess executor runs it (:func:`dagster.reconstructable` needs a module-level
    function)."""
    from pipelines.definitions import defs

    return defs.resolve_job_def("ipc_full_run")


#: `ipc run --executor multiprocess`: two steps at once (pseudonymisation steps share
#: them; steps that open the warehouse still run one at a time, in its pool), each forked
#: from a server that has imported the definitions once (spawning a fresh interpreter per
#: step costs seconds of imports each).
MULTIPROCESS_CONFIG = {
    "max_concurrent": 2,
    "start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}},
}


#: Tags naming the process that runs an `ipc run`, so a later one can tell it has died.
HOST_TAG = "ipc/host"
PID_TAG = "ipc/pid"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_abandoned_runs(instance: Any) -> list[str]:
    """Fail the runs of `ipc run` on this machine whose process is gone (killed, power
    cut) and free the warehouse slot they held: otherwise the next run waits for it
    for ever. Returns their run ids."""
    import dagster as dg

    host = socket.gethostname()
    released = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            tags={HOST_TAG: host},
        )
    )
    for record in records:
        run = record.dagster_run
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or int(pid) == os.getpid() or _process_alive(int(pid)):
            continue
        instance.report_run_failed(
            run, message=f"its process ({pid} on {host}) ended before the run did"
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def _execute(
    command: str, ipc_config: dict[str, str] | None = None, executor: str = "in_process"
) -> int:
    """Materialise every asset and check; report what failed, or where the exports are.

    ``in_process`` runs every step in this process, one after another; ``multiprocess``
    runs each step in a process of its own (MULTIPROCESS_CONFIG)."""
    from pipelines.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"ipc {command}: {exc}", file=sys.stderr)
        return 2
    _ensure_dagster_home()
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.sensors import full_run_tags

    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if ipc_config:
        run_config["resources"] = {"ipc": {"config": ipc_config}}
    instance = dg.DagsterInstance.get()
    # Every financial-year partition, in one run; the years outside the costing period
    # are materialised empty (pipelines.partitions).
    tags = full_run_tags(settings) | {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    for run_id in release_abandoned_runs(instance):
        print(
            f"ipc {command}: run {run_id} was stopped part-way (its process is gone); "
            "marked failed and its hold on the warehouse released",
            file=sys.stderr,
        )
    result: Any
    if executor == "multiprocess":
        run_config["execution"] = {"config": {"multiprocess": MULTIPROCESS_CONFIG}}
        job = dg.build_reconstructable_job("pipelines.cli", "full_run_job")
        result = dg.execute_job(
            job, instance, run_config=run_config, raise_on_error=False, tags=tags
        )
    else:
        result = defs.resolve_job_def("ipc_full_run").execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config, tags=tags
        )
    failures = run_failures(result.all_events)
    if failures or not result.success:
        print(f"ipc {command}: FAILED; earlier exports were left as they were.", file=sys.stderr)
        for failure in failures or ["the run did not succeed"]:
            print(f"  - {failure}", file=sys.stderr)
        print(f"  run id {result.run_id}; open `make ui` to see every step.", file=sys.stderr)
        return 1
    export_dir = settings.export_dir.absolute()
    print(f"ipc {command}: succeeded (run {result.run_id}).")
    print(f"  exports:     {export_dir} (-> {export_dir.resolve().name})")
    print(f"  warehouse:   {settings.warehouse.resolve()}")
    print(f"  quarantine:  {(settings.restricted_dir / 'quarantine').resolve()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return _execute("run", executor=args.executor)


def cmd_rekey(args: argparse.Namespace) -> int:
    """Rebuild the warehouse and exports under a new key, keeping the old-to-new person
    id mapping in the restricted zone only."""
    from pipelines.rekey import RekeyError, person_id_mapping, prepare_rekey, write_mapping

    try:
        plan = prepare_rekey(Path(args.from_key), Path(args.to_key))
    except RekeyError as exc:
        print(f"ipc rekey: {exc}", file=sys.stderr)
        return 2
    os.environ["IPC_KEY_FILE"] = str(Path(args.to_key))
    code = _execute("rekey", {"rekey_from_key_id": plan.old_key_id})
    if code != 0:
        return code
    path = write_mapping(plan, person_id_mapping(plan))
    print(f"  mapping:     {path} (old to new person ids; restricted zone only)")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from pseudonymise.keys import KeyFileError, write_key_file

    try:
        write_key_file(Path(args.path))
    except KeyFileError as exc:
        print(f"ipc keygen: {exc}", file=sys.stderr)
        return 1
    print(f"ipc keygen: wrote a new 32-byte key to {args.path} (owner read/write only).")
    print("  Keep it out of version control; set IPC_KEY_FILE to its path.")
    return 0


def cmd_validate(_: argparse.Namespace) -> int:
    from pipelines.settings import Settings, SettingsError
    from pipelines.validation import validate_delivery

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"ipc validate: {exc}", file=sys.stderr)
        return 2
    report = validate_delivery(
        settings.landing_dir, settings.reference_dir, settings.period_start, settings.period_end
    )
    for line in report.lines:
        print(line)
    return 1 if report.errors else 0


def cmd_audit_scan(_: argparse.Namespace) -> int:
    """Look for any fingerprinted identifier everywhere the pipeline's data rests."""
    from delivery.audit import DIGITS_LOCAL_ID, audit, database_label
    from pipelines.instance import storage_database_urls
    from pipelines.resources import IPCResource
    from pseudonymise.fingerprints import fingerprint_files, fingerprint_key

    resource = IPCResource()
    settings = resource.settings()
    keyring = resource.keyring()
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster")
    paths = fingerprint_files(settings.restricted_dir)
    try:
        databases = storage_database_urls(dagster_home)
        findings = audit(
            settings.export_dir,
            settings.warehouse,
            dagster_home,
            settings.restricted_dir,
            paths,
            fingerprint_key(keyring),
            databases,
        )
    except ValueError as exc:
        print(f"ipc audit-scan: {exc}", file=sys.stderr)
        return 2
    # A short all-digit local id equal to some number is reported, not counted as found:
    # any number may equal one by chance (delivery/audit.py).
    possible = [f for f in findings if f.kind == DIGITS_LOCAL_ID]
    found = [f for f in findings if f.kind != DIGITS_LOCAL_ID]
    for finding in possible:
        print(f"ipc audit-scan: possible coincidence, judge it: {finding}", file=sys.stderr)
    for finding in found:
        print(f"ipc audit-scan: FOUND {finding}", file=sys.stderr)
    if found:
        return 1
    also = "".join(f" and in {database_label(url)}" for url in databases)
    print(
        "ipc audit-scan: no identifier found in the exports, the warehouse, the quarantine "
        f"or Dagster's storage and logs under {dagster_home}{also}."
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from delivery.manifest import verify_manifest
    from pipelines.resources import IPCResource
    from pipelines.settings import Settings

    export_dir = Path(args.export_dir) if args.export_dir else Settings.from_env().export_dir
    manifest_key = IPCResource().keyring().purpose("manifest")
    folders = [export_dir]
    linked = export_dir / "linked"
    if linked.is_dir():
        folders += sorted(p for p in linked.iterdir() if p.is_dir())
    problems = [p for folder in folders for p in verify_manifest(folder, manifest_key)]
    for problem in problems:
        print(f"ipc verify: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"ipc verify: {len(folders)} manifest(s) verified under {export_dir}.")
    return 0


def _read_nhs_number() -> str:
    """From a prompt (not echoed) or standard input - never from the command line, which
    would leave it in the process list and the shell history."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("NHS number (not shown): ")
    return sys.stdin.readline()


def cmd_statement(args: argparse.Namespace) -> int:
    from delivery.statement_page import find_statement, lookup_person_id, render_html, render_text
    from pipelines.resources import IPCResource

    resource = IPCResource()
    settings = resource.settings()
    export_dir = Path(args.export_dir) if args.export_dir else settings.export_dir
    keyring = resource.keyring()
    person_id = lookup_person_id(_read_nhs_number(), keyring.linkage)
    if person_id is None:
        print("ipc statement: that is not a valid NHS number", file=sys.stderr)
        return 2
    statement = find_statement(export_dir, person_id, args.year)
    log_access(
        settings.restricted_dir,
        person_id,
        args.year,
        found=statement is not None,
        key_id=keyring.key_id,
    )
    if statement is None:
        print("ipc statement: no statement for that person and year", file=sys.stderr)
        return 1
    print(render_text(statement))
    if args.output:
        Path(args.output).write_text(render_html(statement))
        print(f"\nA printable page was written to {args.output}.")
    return 0


def log_access(
    restricted_dir: Path, person_id: str, year: str | None, *, found: bool, key_id: str
) -> None:
    """Append who looked up which pseudonym, and when, to the key-holder access log."""
    import datetime as dt
    import getpass

    restricted_dir.mkdir(parents=True, exist_ok=True)
    entry = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "user": getpass.getuser(),
        "person_id": person_id,
        "financial_year": year,
        "found": found,
        "key_id": key_id,
    }
    with (restricted_dir / "access_log.jsonl").open("a") as log:
        log.write(json.dumps(entry) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ipc", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="materialise every asset for the IPC_* settings")
    run.add_argument(
        "--executor",
        choices=["in_process", "multiprocess"],
        default="in_process",
        help="in_process (default): one step at a time in this process; multiprocess: "
        "each step in its own process, pseudonymisation steps in parallel",
    )
    keygen = commands.add_parser("keygen", help="write a new secret key file")
    keygen.add_argument("path")
    commands.add_parser("validate", help="check the landing and reference folders")
    rekey = commands.add_parser("rekey", help="rebuild everything under a new key")
    rekey.add_argument("--from", dest="from_key", required=True, metavar="OLD_KEY_FILE")
    rekey.add_argument("--to", dest="to_key", required=True, metavar="NEW_KEY_FILE")
    commands.add_parser("audit-scan", help="look for identifiers in everything the pipeline wrote")
    verify = commands.add_parser("verify", help="verify the export's manifests")
    verify.add_argument("export_dir", nargs="?")
    statement = commands.add_parser(
        "statement",
        help="key holders: show one person's statement (NHS number read from a prompt "
        "or standard input, never the command line)",
    )
    statement.add_argument("--year", help="financial year, e.g. 2024/25 (default: latest)")
    statement.add_argument("--export-dir")
    statement.add_argument("--output", help="also write a printable HTML page here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "run": cmd_run,
        "keygen": cmd_keygen,
        "validate": cmd_validate,
        "rekey": cmd_rekey,
        "verify": cmd_verify,
        "audit-scan": cmd_audit_scan,
        "statement": cmd_statement,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
