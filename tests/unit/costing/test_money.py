"""Money adds up exactly: the same costs in any order give the same total to the bit."""

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from costing.money import exact_sum

_COSTS = st.lists(
    st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda x: round(x, 6)),
    min_size=1,
    max_size=60,
)


def _total(costs: list[float]) -> float:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (cost DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?)", [(c,) for c in costs])
    [(total,)] = con.execute(f"SELECT {exact_sum('cost')}::DOUBLE FROM t").fetchall()
    return float(total)


@settings(max_examples=60, deadline=None)
@given(costs=_COSTS, data=st.data())
def test_the_total_does_not_depend_on_the_order_of_the_rows(
    costs: list[float], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(costs))
    assert _total(costs) == _total(list(shuffled))


def test_tenths_of_pounds_add_to_the_penny_where_floating_point_drifts() -> None:
    # 0.1 ten times is 0.9999999999999999 in floating point; the exact sum is 1.
    assert sum([0.1] * 10) != 1.0
    assert _total([0.1] * 10) == 1.0
