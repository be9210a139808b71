"""Fixtures of the real-browser UI tests: one `dagster dev` per test module, with its own DAGSTER_HOME and data
folder, so each module starts from an empty warehouse and feature store."""

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.e2e.ui_harness import dagster_dev, graphql


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """`dagster dev` on a free port for this module (url, root, log, data), stopped afterwards."""
    with dagster_dev(tmp_path_factory.mktemp("ui")) as ui:
        # A new instance covers every page with a "join the community" dialog until this mutation is sent.
        assert graphql(ui.url, "mutation { setNuxSeen }")["setNuxSeen"] is True
        yield ui
