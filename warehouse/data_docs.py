"""A Data Docs page for one validation run: great-expectations' own validation-results renderer, written to a file.

The renderer and page view are the ones great-expectations' Data Docs sites use; calling them directly needs no
file-backed context or site store, so each run gets its own self-contained page.
"""

from __future__ import annotations

from pathlib import Path


def write_data_docs(suite_result, path: Path) -> Path:
    """Render a great-expectations ExpectationSuiteValidationResult as an HTML page at `path`."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    html = DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(suite_result))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
