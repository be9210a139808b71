"""The reliability suite's bad inputs are what they claim, checked cheaply at the source reader (the pipeline
verdicts come from `python -m benchmarks.reliability`): at least 20 distinct cases; those expected to stop at
ingest raise SourceError, the others read as canonical interactions with exactly the defect they were made with.
"""
import math

import polars as pl
import pytest

from benchmarks.reliability_inputs import (
    HOSTILE_USER_IDS,
    SHARE,
    SOURCE_ERROR,
    SUCCESS,
    BatchShape,
    input_cases,
    valid_batch,
)
from warehouse.sources import SourceError, read_source

SHAPE = BatchShape(users=60, items=30)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("inputs")
    baseline = folder / "baseline.parquet"
    valid_batch(SHAPE, seed=1).write_parquet(baseline)
    return {case.name: (case, case.write(folder, SHAPE, 100 + k)) for k, case in enumerate(input_cases(baseline))}


def test_there_are_at_least_twenty_distinct_cases(written):
    assert len(written) >= 20
    assert sum(case.expected == SOURCE_ERROR for case, _ in written.values()) >= 8


def test_files_meant_to_stop_at_ingest_raise_source_error(written):
    for case, path in written.values():
        if case.expected == SOURCE_ERROR:
            with pytest.raises(SourceError, match=str(path.name)):
                read_source("files", path)


def test_files_meant_for_the_checks_read_and_carry_their_defect(written):
    frames = {name: read_source("files", path)[0] for name, (case, path) in written.items()
              if case.expected != SOURCE_ERROR}
    spoiled = math.ceil(frames["null_user_ids"].height / SHARE)
    assert frames["null_user_ids"]["user_id"].null_count() == spoiled
    assert frames["nan_weights"]["weight"].is_nan().sum() == math.ceil(frames["nan_weights"].height / SHARE)
    assert (frames["negative_weights"]["weight"] < 0).sum() > 0
    assert frames["unknown_item_ids"]["item_id"].is_in(["i_not_in_catalogue"]).sum() > 0
    assert frames["duplicate_flood"].is_duplicated().sum() > 0
    assert set(HOSTILE_USER_IDS) <= set(frames["sql_metacharacter_ids"]["user_id"].to_list())
    assert frames["volume_spike_11x"].height > 10 * valid_batch(SHAPE, seed=1).height
    stale = pl.read_parquet(written["stale_reexport"][1])  # the baseline's rows again, in another order
    assert stale.sort("ts", "user_id", "item_id").equals(valid_batch(SHAPE, seed=1))
    assert [case.name for case, _ in written.values() if case.expected == SUCCESS] == ["sql_metacharacter_ids"]
