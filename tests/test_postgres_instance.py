"""dagster-postgres.yaml: a real run of the pipeline stored in a real PostgreSQL server.

The server comes from the DAGSTER_PG_* variables the instance file reads (`make
postgres` starts a local one and prints them; .ci/run does both). Without a reachable
server the test is skipped, saying why; under CI (CI set), where .ci/run starts one, it
fails instead, so a broken server cannot pass as a skip. Each test run makes its own
database (the role needs CREATEDB) and drops it afterwards.
"""

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import dagster as dg
import polars as pl
import psycopg2
import psycopg2.extensions
import pytest
import yaml
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from delivery.audit import audit
from pipelines.cli import run_failures
from pipelines.definitions import ALL_ASSETS, defs
from pipelines.instance import storage_database_urls
from pipelines.partitions import all_years_tags
from pseudonymise.fingerprints import fingerprint_key
from pseudonymise.keys import Keyring, read_key_file
from tests.conftest import WORKED_EXAMPLE, worked_example_delivery

PROJECT = Path(__file__).resolve().parent.parent
PG_VARIABLES = (
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_PORT",
    "DAGSTER_PG_USERNAME",
    "DAGSTER_PG_PASSWORD",
    "DAGSTER_PG_DB",
)
EXPORTS = {k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "exports"}


def _connect(dbname: str | None = None) -> psycopg2.extensions.connection:
    env = os.environ
    return psycopg2.connect(
        host=env["DAGSTER_PG_HOST"],
        port=env["DAGSTER_PG_PORT"],
        user=env["DAGSTER_PG_USERNAME"],
        password=env["DAGSTER_PG_PASSWORD"],
        dbname=dbname or env["DAGSTER_PG_DB"],
        connect_timeout=3,
    )


def _no_server(reason: str) -> NoReturn:
    message = f"no PostgreSQL server for dagster-postgres.yaml: {reason}; run `make postgres`"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI starts one in .ci/run, so this is a failure there)")
    pytest.skip(message)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty database on the DAGSTER_PG_* server, dropped afterwards."""
    missing = [name for name in PG_VARIABLES if not os.environ.get(name)]
    if missing:
        _no_server(f"{', '.join(missing)} not set")
    try:
        admin = _connect()
    except psycopg2.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _no_server(f"cannot connect to {os.environ['DAGSTER_PG_HOST']}: {first_line}")
    admin.autocommit = True
    name = f"ipc_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_the_postgres_instance_is_dagster_yaml_with_postgres_storage() -> None:
    sqlite = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    postgres = yaml.safe_load((PROJECT / "dagster-postgres.yaml").read_text())
    storage = postgres.pop("storage")
    # SQLite's event log storage claims pool slots under a lock (pipelines/instance.py);
    # PostgreSQL's honours FOR UPDATE and needs no such class.
    assert sqlite.pop("event_log_storage")["module"] == "pipelines.instance"
    assert postgres == sqlite
    assert storage == {
        "postgres": {
            "postgres_db": {
                "hostname": {"env": "DAGSTER_PG_HOST"},
                "port": {"env": "DAGSTER_PG_PORT"},
                "username": {"env": "DAGSTER_PG_USERNAME"},
                "password": {"env": "DAGSTER_PG_PASSWORD"},
                "db_name": {"env": "DAGSTER_PG_DB"},
                "scheme": "postgresql+psycopg2",
            }
        }
    }


def test_a_run_and_its_events_are_stored_in_postgres(
    tmp_path: Path, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT / "dagster-postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_DB", postgres_database)
    delivery = worked_example_delivery(
        tmp_path / "delivery", period_end="2025-03-31", recipients="site"
    )

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        result = dg.materialize(
            ALL_ASSETS,
            resources={"ipc": delivery.resource},
            instance=instance,
            tags=all_years_tags(),
            raise_on_error=False,
        )
        assert result.success, run_failures(result.all_events)
        run_id = result.run_id

    # A new instance on the same home reads it all back from the server.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        assert run.status == dg.DagsterRunStatus.SUCCESS
        for key in EXPORTS:
            event = instance.get_latest_materialization_event(key)
            assert event is not None, key
            assert event.run_id == run_id

    # And straight from PostgreSQL's tables.
    with _connect(postgres_database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_id, status FROM runs")
        assert cursor.fetchall() == [(run_id, "SUCCESS")]
        cursor.execute(
            "SELECT DISTINCT asset_key FROM event_logs"
            " WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        )
        stored = {dg.AssetKey.from_db_string(key) for (key,) in cursor.fetchall()}
        assert stored >= EXPORTS
        cursor.execute(
            "SELECT count(*) FROM event_logs"
            " WHERE run_id = %s AND dagster_event_type = 'ASSET_CHECK_EVALUATION'",
            (run_id,),
        )
        (checks,) = cursor.fetchone()
        assert checks > 0
        cursor.execute("SELECT to_regclass('instigators'), to_regclass('jobs')")
        assert cursor.fetchone() == ("instigators", "jobs")  # schedule storage is here too
    connection.close()
    # Nothing was written to SQLite under DAGSTER_HOME.
    assert not [p for p in home.rglob("*") if p.suffix in {".db", ".sqlite"}]

    # `ipc audit-scan` reads the instance's tables too: clean after the run, and a name
    # planted in the event log is found, named by table and column, never by value.
    secret, _ = read_key_file(delivery.key_file)
    key = fingerprint_key(Keyring.from_secret(secret))
    fingerprints = sorted((delivery.restricted / "fingerprints").glob("*.parquet"))
    databases = storage_database_urls(home)
    assert len(databases) == 1 and postgres_database in databases[0]
    assert audit(None, None, None, None, fingerprints, key, databases) == []
    social = pl.read_csv(WORKED_EXAMPLE / "landing" / "social_care.csv", infer_schema=False)
    person = social.filter(pl.col("given_name") != "").row(0, named=True)
    name = f"{person['given_name']} {person['family_name']}"
    with _connect(postgres_database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO event_logs (run_id, event, timestamp) VALUES ('planted', %s, now())",
            (json.dumps({"message": f"hello {name}"}),),
        )
    connection.close()
    findings = audit(None, None, None, None, fingerprints, key, databases)
    assert [(f.location.rsplit("#", 2)[1:], f.kind) for f in findings] == [
        (["event_logs", "event"], "full_name")
    ]
    assert name not in str(findings)
    assert ":***@" in findings[0].location  # the password is never shown
