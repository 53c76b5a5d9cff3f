"""Costing one or more financial years at a time, leaving the others' rows as they are.

Every costing table has a ``financial_year`` column. A computation is given the years it
costs (``years``: labels such as ``2024/25``; ``None`` means every year of the period):
the rules read the period's years through the temporary view ``costed_years`` (those
years only), and :func:`replace_years` swaps exactly those years' rows in each table.
Run it inside :func:`transaction`, so a failure leaves every year as it was.
"""

import contextlib
from collections.abc import Iterator, Sequence

import duckdb

from costing.sql import sql_text


class TableShapeError(RuntimeError):
    """A table holds other years' rows in columns this code no longer writes."""


def year_filter(column: str, years: Sequence[str] | None) -> str:
    """SQL that is true for the rows of ``years`` (every row when ``years`` is None)."""
    if years is None:
        return "TRUE"
    if not years:
        return "FALSE"
    return f"{column} IN ({', '.join(sql_text(y) for y in years)})"


def select_costed_years(con: duckdb.DuckDBPyConnection, years: Sequence[str] | None) -> None:
    """``costed_years``: the rows of ``costing.financial_years`` being costed now (a
    temporary view: years outside the period are simply not in it)."""
    con.execute(
        "CREATE OR REPLACE TEMP VIEW costed_years AS SELECT * FROM costing.financial_years "
        f"WHERE {year_filter('financial_year', years)}"
    )


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: every statement in the block lands, or none does."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def replace_years(
    con: duckdb.DuckDBPyConnection,
    table: str,
    query: str,
    years: Sequence[str] | None,
    *,
    year_ordered: bool = False,
) -> None:
    """Make ``query``'s rows the rows of ``years`` in ``table``; other years' rows stay.

    When the table holds no other year (a fresh warehouse, a run over every year) it
    is rebuilt whole, exactly as ``CREATE OR REPLACE TABLE ... AS query``; otherwise
    those years' rows are deleted and ``query``'s inserted. ``year_ordered`` tables are
    read in stored order by the exports, so if an earlier year was replaced the table
    is rewritten in year order (each year's rows keeping theirs): only the small
    aggregate tables ask for this.
    """
    others = (
        years is not None
        and _exists(con, table)
        and con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} "
            f"WHERE NOT coalesce({year_filter('financial_year', years)}, FALSE) LIMIT 1)"
        ).fetchall()[0][0]
        > 0
    )
    if not others:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {query}")
        return
    assert years is not None
    if _columns(con, table) != _columns(con, f"SELECT * FROM ({query})"):
        raise TableShapeError(
            f"{table} holds other financial years' rows in the columns of an earlier version "
            "of the pipeline; recompute every year (`ipc run`, or a backfill of every "
            "financial-year partition)"
        )
    con.execute(f"DELETE FROM {table} WHERE {year_filter('financial_year', years)}")
    con.execute(f"INSERT INTO {table} BY NAME {query}")
    if year_ordered:
        later = con.execute(
            f"SELECT count(*) FROM {table} WHERE financial_year > ? "
            f"AND NOT {year_filter('financial_year', years)}",
            [min(years)],
        ).fetchall()[0][0]
        if later:
            con.execute(
                f"CREATE OR REPLACE TABLE {table} AS "
                f"SELECT * FROM {table} ORDER BY financial_year, rowid"
            )
