"""The Data Docs page of a check run: written where asked, named in each row check's details, and short even when
the known-item rule's value set is every item id."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from warehouse.expectations import run_expectations
from warehouse.ingest import ingest
from warehouse.validation import ValidationConfig

NOW = datetime(2026, 2, 1)


def test_page_written_and_linked_with_a_sample_of_the_item_ids(con, tmp_path):
    n = 500
    frame = pl.DataFrame({"user_id": [f"u{i % 50}" for i in range(n)], "item_id": [f"i{i}" for i in range(n)],
                          "ts": [datetime(2026, 1, 1)] * n})
    ingest(con, frame, pl.DataFrame({"item_id": [f"i{i}" for i in range(n)]}), "hand", "k", now=NOW)
    page = tmp_path / "docs" / "run-1.html"
    outcomes = run_expectations(con, ValidationConfig(), NOW, docs_path=page, run_name="run-1")
    assert page.is_file()
    linked = {o.check_name for o in outcomes if o.details.get("data_docs") == str(page)}
    assert linked == {"interactions_have_no_null_ids", "interactions_timestamps_in_range",
                      "interactions_weights_finite_and_in_range", "interactions_reference_known_items"}
    html = page.read_text()
    assert "run-1" in html and "values must belong to this set" in html
    assert f"... and {n - 20} more" in html and "i499" not in html
