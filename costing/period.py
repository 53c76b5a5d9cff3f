"""Financial years and the costing period (data-contract.md section 1).

A financial year runs from 1 April to 31 March and is written ``2024/25``; export
file names write it ``2024-25``.
"""

import datetime as dt
from dataclasses import dataclass

import duckdb


def fy_start_year(day: dt.date) -> int:
    """The calendar year in which the financial year holding ``day`` starts."""
    return day.year if day.month >= 4 else day.year - 1


def fy_label(start_year: int) -> str:
    """``2024`` -> ``2024/25``."""
    return f"{start_year}/{(start_year + 1) % 100:02d}"


def fy_file_label(label: str) -> str:
    """``2024/25`` -> ``2024-25`` (the form used in export file names)."""
    return label.replace("/", "-")


def fy_label_start_year(label: str) -> int:
    """``2024/25`` -> ``2024``."""
    return int(label.split("/")[0])


@dataclass(frozen=True)
class Period:
    """The first and last day costed, inclusive."""

    start: dt.date
    end: dt.date

    def financial_years(self) -> list[int]:
        """Start years of every financial year the period touches."""
        return list(range(fy_start_year(self.start), fy_start_year(self.end) + 1))


#: The date of each source whose latest value ends the costing period by default: the
#: latest start, contact, event or admission date of any accepted row (end, birth and
#: diagnosis dates don't count; registers have none).
PERIOD_END_DATE_COLUMNS: dict[str, str] = {
    "acute": "start_date",
    "chc": "start_date",
    "community": "contact_date",
    "mental_health": "start_date",
    "primary_care_events": "event_date",
    "social_care": "start_date",
}


def resolve_period(
    con: duckdb.DuckDBPyConnection,
    *,
    configured_start: dt.date | None,
    configured_end: dt.date | None,
) -> Period:
    """The costing period: configured dates, else the contract's defaults.

    Start defaults to 1 April of the earliest financial year in ``unit_costs.csv``;
    end to the latest start, contact, event or admission date of any accepted row
    (end dates, birth dates and diagnosis dates don't count).
    """
    start = configured_start
    if start is None:
        row = con.execute("SELECT min(financial_year) FROM reference.unit_costs").fetchall()[0]
        if row[0] is None:
            raise ValueError(
                "IPC_PERIOD_START is not set and unit_costs.csv has no financial year "
                "to default it from"
            )
        start = dt.date(int(str(row[0]).split("/")[0]), 4, 1)
    end = configured_end
    if end is None:
        latest = " UNION ALL ".join(
            f"SELECT max({column}) AS d FROM pseudonymised.{source}"
            for source, column in PERIOD_END_DATE_COLUMNS.items()
        )
        row = con.execute(f"SELECT max(d) FROM ({latest})").fetchall()[0]
        if row[0] is None:
            raise ValueError(
                "IPC_PERIOD_END is not set and no accepted activity row has a date "
                "to default it from"
            )
        end = row[0]
    assert end is not None
    if end < start:
        raise ValueError(f"the costing period ends ({end}) before it starts ({start})")
    return Period(start=start, end=end)


def create_period_tables(con: duckdb.DuckDBPyConnection, period: Period) -> None:
    """``costing.period`` (one row) and ``costing.financial_years`` (one per year)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS costing")
    con.execute(
        "CREATE OR REPLACE TABLE costing.period AS "
        "SELECT ?::DATE AS period_start, ?::DATE AS period_end",
        [period.start, period.end],
    )
    rows = []
    for year in period.financial_years():
        start, end = dt.date(year, 4, 1), dt.date(year + 1, 3, 31)
        inside_start, inside_end = max(start, period.start), min(end, period.end)
        rows.append(
            (
                fy_label(year),
                year,
                start,
                end,
                inside_start,
                inside_end,
                (inside_end - inside_start).days + 1,
                (end - start).days + 1,
            )
        )
    con.execute(
        """
        CREATE OR REPLACE TABLE costing.financial_years (
            financial_year VARCHAR, start_year INTEGER, fy_start DATE, fy_end DATE,
            period_part_start DATE, period_part_end DATE,
            days_in_period INTEGER, days_in_year INTEGER
        )
        """
    )
    con.executemany("INSERT INTO costing.financial_years VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
