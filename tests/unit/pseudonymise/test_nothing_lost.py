"""Property: whatever a delivery holds, every row is accepted or quarantined, once.

Generates CHC extracts full of faults (blank and impossible dates, non-numbers,
negative money, end before start, repeated ids, rows with too few or too many fields,
quoted commas) and checks that rows read = accepted + quarantined, that each row number
lands in exactly one of the two, and that the money on accepted rows is the money that
was written (nothing mangled on the way).
"""

import csv
import io
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pseudonymise.keys import Keyring
from pseudonymise.source import pseudonymise_source
from schemas.sources import SOURCE_BY_NAME

SPEC = SOURCE_BY_NAME["chc"]
KEY = Keyring.from_secret(bytes(range(32))).linkage

_dates = st.sampled_from(
    ["2023-04-01", "2024-02-29", "2024-03-31", "2023-02-29", "2024-13-01", "", "01/04/2024"]
)
_money = st.one_of(
    st.decimals(min_value=0, max_value=5000, places=2).map(str),
    st.sampled_from(["", "-12.50", "abc", "1,000", "£10", "0"]),
)
_row = st.fixed_dictionaries(
    {
        "nhs_number": st.sampled_from(["9990000018", "999 000 0026", "", "123", "0000000000"]),
        "local_patient_id": st.sampled_from(["CHC1", "CHC2", "", "X, with comma"]),
        "date_of_birth": _dates,
        "sex": st.sampled_from(["1", "2", "", "X"]),
        "postcode": st.sampled_from(["TS18 1AB", "dl31aa", ""]),
        "package_id": st.sampled_from(["P1", "P2", "P3", "P4", "", "P, 5"]),
        "care_setting": st.sampled_from(["HOME", "CARE_HOME", "ELSEWHERE"]),
        "funding_stream": st.just("CHC"),
        "start_date": _dates,
        "end_date": _dates,
        "weekly_cost": _money,
    }
)
_shape = st.sampled_from(["ok", "ok", "ok", "ok", "short", "long"])


def _write(rows: list[tuple[dict[str, str], str]], folder: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    columns = list(SPEC.required_columns)
    writer.writerow(columns)
    for row, shape in rows:
        values = [row[c] for c in columns]
        if shape == "short":
            values = values[:-2]
        elif shape == "long":
            values = [*values, "surplus"]
        writer.writerow(values)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chc.csv").write_text(buffer.getvalue(), encoding="utf-8")


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(_row, _shape), min_size=0, max_size=25))
def test_every_row_is_accepted_or_quarantined_once_and_money_is_kept(
    tmp_path_factory, rows: list[tuple[dict[str, str], str]]
) -> None:
    landing = tmp_path_factory.mktemp("landing")
    _write(rows, landing)
    result = pseudonymise_source(landing, SPEC, KEY)
    report = result.report

    assert report.rows_read == len(rows)
    assert report.rows_accepted + report.rows_quarantined == report.rows_read
    accepted = set(result.accepted["row_number"].to_list())
    quarantined = set(result.quarantine["row_number"].to_list())
    assert not accepted & quarantined
    assert accepted | quarantined == set(range(1, len(rows) + 1))

    written = sum((Decimal(rows[n - 1][0]["weekly_cost"]) for n in accepted), start=Decimal(0))
    kept = sum((Decimal(str(v)) for v in result.accepted["weekly_cost"].to_list()), Decimal(0))
    assert abs(written - kept) < Decimal("0.000001")
    for n in quarantined:
        assert (
            rows[n - 1][1] != "ok"
            or result.quarantine.filter(result.quarantine["row_number"] == n)["reasons"].item()
            != "malformed_row"
        )
