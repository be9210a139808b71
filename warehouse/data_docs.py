"""A Data Docs page for one validation run: great-expectations' own validation-results renderer, written to a file.

The renderer and page view are the ones great-expectations' Data Docs sites use; calling them directly needs no
file-backed context or site store, so each run gets its own self-contained page.
"""

from __future__ import annotations

import copy
from pathlib import Path

SHOWN_VALUES = 20  # values of a value set listed on the page


def _shortened(suite_result):
    """A copy whose long value sets are cut to a sample. The renderer lists every value, and the known-item rule's
    set is every item id in raw_items (tens of thousands on public data sets), which would make each page megabytes;
    great-expectations' renderer has no setting for this."""
    result = copy.deepcopy(suite_result)
    for res in result.results:
        values = res.expectation_config.kwargs.get("value_set")
        if isinstance(values, list) and len(values) > SHOWN_VALUES:
            res.expectation_config.kwargs["value_set"] = [
                *values[:SHOWN_VALUES], f"... and {len(values) - SHOWN_VALUES} more"]
    return result


def write_data_docs(suite_result, path: Path) -> Path:
    """Render a great-expectations ExpectationSuiteValidationResult as an HTML page at `path`."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    html = DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(_shortened(suite_result)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
