"""Pseudonymising in chunks changes nothing but the memory needed."""

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pseudonymise.keys import Keyring
from pseudonymise.source import pseudonymise_source
from schemas.sources import SOURCE_BY_NAME
from tests.conftest import WORKED_EXAMPLE

KEY = Keyring.from_secret(bytes(range(32))).linkage


@pytest.mark.parametrize("source", ["acute", "primary_care_events", "social_care"])
def test_chunks_of_any_size_give_the_rows_of_one_pass_in_the_same_order(source: str) -> None:
    spec = SOURCE_BY_NAME[source]
    landing = WORKED_EXAMPLE / "landing"
    whole = pseudonymise_source(landing, spec, KEY)
    chunks: list[pl.DataFrame] = []
    streamed = pseudonymise_source(landing, spec, KEY, sink=chunks.append, chunk_rows=7)

    assert whole.accepted is not None and streamed.accepted is None
    assert len(chunks) == -(-whole.report.rows_read // 7)
    assert_frame_equal(pl.concat(chunks), whole.accepted)
    assert_frame_equal(streamed.quarantine, whole.quarantine)
    assert streamed.report == whole.report


def test_a_header_only_file_still_hands_the_sink_one_typed_empty_chunk(tmp_path: Path) -> None:
    spec = SOURCE_BY_NAME["chc"]
    header = (WORKED_EXAMPLE / "landing" / spec.file_name).read_text().splitlines()[0]
    (tmp_path / spec.file_name).write_text(header + "\n")
    chunks: list[pl.DataFrame] = []
    result = pseudonymise_source(tmp_path, spec, KEY, sink=chunks.append)
    assert [c.height for c in chunks] == [0]
    assert result.report.rows_read == result.report.rows_accepted == 0
    assert chunks[0].schema == pseudonymise_source(tmp_path, spec, KEY).accepted.schema  # type: ignore[union-attr]
