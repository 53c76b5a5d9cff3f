"""A recipient configured for Open Pseudonymiser ids gets digests its legacy data joins."""

import json
from pathlib import Path

import polars as pl

from pseudonymise.open_pseudonymiser import digest
from tests.conftest import WORKED_EXAMPLE, worked_example_delivery


def test_open_pseudonymiser_recipient_gets_legacy_digests_labelled_weaker(
    tmp_path: Path,
) -> None:
    delivery = worked_example_delivery(tmp_path, period_end="2025-03-31", recipients="legacy, site")
    salt_file = tmp_path / "keys" / "legacy.salt"
    salt_file.write_text("mackerel\n")
    salt_file.chmod(0o600)
    (delivery.reference / "settings.yaml").write_text(
        f"recipients_open_pseudonymiser:\n  legacy:\n    salt_file: {salt_file}\n"
    )
    assert delivery.materialize().success

    # The first acute row's person, as the legacy system would have hashed them.
    first = pl.read_csv(WORKED_EXAMPLE / "landing" / "acute.csv", infer_schema=False).row(
        0, named=True
    )
    year, month, day = first["date_of_birth"].split("-")
    expected = digest(
        {"NHSNumber": first["nhs_number"], "DOB": f"{day}.{month}.{year}"}, "mackerel"
    )

    linked = delivery.export_dir / "linked"
    legacy = pl.read_parquet(linked / "legacy" / "persons.parquet")
    keyed = pl.read_parquet(linked / "site" / "persons.parquet")
    assert expected in set(legacy["person_id"])
    assert set(legacy["pseudonym_scheme"]) == {"open_pseudonymiser", "keyed"}
    assert not set(legacy["person_id"]) & set(keyed["person_id"])
    manifest = json.loads((linked / "legacy" / "manifest.json").read_text())
    assert "salted SHA-256" in manifest["pseudonymisation"]
    assert "mackerel" not in (linked / "legacy" / "manifest.json").read_text()
    # The digests rest in the restricted zone, not in the warehouse.
    assert list((delivery.restricted / "open_pseudonymiser" / "legacy").glob("*.parquet"))
