"""The row rules of raw_interactions, written once: each is a great-expectations expectation (as plain JSON config,
its bounds as suite parameters) on a value SQL derives from a raw row.

Both users read this list: the blocking checks validate each expectation with great-expectations, and the quarantine
turns the same expectation config into a SQL predicate (`predicate_sql`) to label every rejected row with the rule's
reason. The suite saved in warehouse/suites/interactions.json is generated from it (`python -m warehouse.rules`).

This module does not import great-expectations (about 7 s to import), so the quarantine does not pay for it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warehouse.validation import ValidationConfig

DEFAULT_WEIGHT = 1.0  # a NULL weight means "no strength given": an ordinary, unweighted interaction
SUITE_NAME = "raw_interactions_rows"
SUITE_PATH = Path(__file__).parent / "suites" / "interactions.json"

CHECK_IDS = "interactions_have_no_null_ids"
CHECK_TS = "interactions_timestamps_in_range"
CHECK_WEIGHTS = "interactions_weights_finite_and_in_range"
CHECK_ITEMS = "interactions_reference_known_items"

NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"


def _param(name: str) -> dict[str, str]:
    """A great-expectations suite parameter: the value is supplied at validation time (and to DuckDB by name)."""
    return {"$PARAMETER": name}


@dataclass(frozen=True)
class RowRule:
    """One row rule: the quarantine reason, the check that reports it, the value it tests and its expectation.

    `expression` is SQL over a raw row giving the value named `column`; `where` limits the rows the rule applies to;
    `problem` describes failing rows in a check message (formatted with the suite parameters).
    """

    reason: str
    check: str
    column: str
    expression: str
    expectation: str
    bounds: dict[str, Any] = field(default_factory=dict)
    problem: str = ""
    where: str = "TRUE"
    needs_items: bool = False

    def config(self) -> dict[str, Any]:
        """The expectation as great-expectations JSON config (type, kwargs, meta)."""
        return {
            "type": self.expectation,
            "kwargs": {"column": self.column, "mostly": _param("mostly"), **self.bounds},
            # The SQL is kept beside the expectation so the saved suite says what value each column is.
            "meta": {"reason": self.reason, "check": self.check, "problem": self.problem,
                     "sql_value": self.expression, "applies_when": self.where},
        }


# Order matters: the quarantine records the first rule a row fails, and each check sees only the rows that passed
# the rules before its own, so a row is flagged by exactly one rule on both sides.
ROW_RULES: tuple[RowRule, ...] = (
    # Blank ids count as NULL.
    RowRule("null_user_id", CHECK_IDS, "user_id", "nullif(trim(user_id), '')", NOT_NULL,
            problem="have a NULL user_id"),
    RowRule("null_item_id", CHECK_IDS, "item_id", "nullif(trim(item_id), '')", NOT_NULL,
            problem="have a NULL item_id"),
    # Rows of given-split sources may lack a timestamp (LightGCN files have none).
    RowRule("null_ts", CHECK_TS, "ts", "ts", NOT_NULL, where="NOT (ts IS NULL AND split IS NOT NULL)",
            problem="have a NULL ts and no given split"),
    RowRule("ts_in_future", CHECK_TS, "ts", "ts", BETWEEN, {"max_value": _param("now")},
            problem="have a ts in the future (after {now:%Y-%m-%d %H:%M:%S})"),
    RowRule("ts_before_start", CHECK_TS, "ts", "ts", BETWEEN, {"min_value": _param("earliest_ts")},
            problem="have a ts before {earliest_ts:%Y-%m-%d}"),
    # NULL weight counts as 1.0; a NaN or infinite weight becomes NULL, so not-null catches exactly those.
    RowRule("weight_not_finite", CHECK_WEIGHTS, "weight",
            f"CASE WHEN isfinite(coalesce(weight, {DEFAULT_WEIGHT})) THEN coalesce(weight, {DEFAULT_WEIGHT}) END",
            NOT_NULL, problem="have a NaN or infinite weight"),
    RowRule("weight_out_of_range", CHECK_WEIGHTS, "weight", f"coalesce(weight, {DEFAULT_WEIGHT})", BETWEEN,
            {"min_value": _param("min_weight"), "max_value": _param("max_weight")},
            problem="have a weight outside [{min_weight:g}, {max_weight:g}]"),
    RowRule("unknown_item", CHECK_ITEMS, "item_id", "item_id", IN_SET, {"value_set": _param("known_items")},
            problem="reference an item_id missing from raw_items", needs_items=True),
)
REASONS = tuple(r.reason for r in ROW_RULES) + ("duplicate",)


def active_rules(check_items: bool) -> tuple[RowRule, ...]:
    """The rules in force: the known-item rule only when referential integrity is checked."""
    return tuple(r for r in ROW_RULES if check_items or not r.needs_items)


def suite_parameters(cfg: ValidationConfig, now: datetime, known_items: list[str] | None = None) -> dict[str, Any]:
    """Values of the suite parameters, for great-expectations and (by the same names) for DuckDB."""
    return {
        "mostly": 1.0 - cfg.max_rejected_fraction, "now": now, "earliest_ts": cfg.earliest_ts,
        "min_weight": cfg.min_weight, "max_weight": cfg.max_weight, "known_items": known_items or [],
    }


def suite_dict() -> dict[str, Any]:
    """The expectation suite of every row rule, as great-expectations writes it to JSON."""
    return {"name": SUITE_NAME, "expectations": [r.config() for r in ROW_RULES],
            "meta": {"description": "Row rules of raw_interactions; bounds are suite parameters."}}


def _value(kwarg: Any) -> str:
    """A kwarg as SQL: a suite parameter becomes the DuckDB named parameter of the same name."""
    if isinstance(kwarg, dict) and "$PARAMETER" in kwarg:
        name = kwarg["$PARAMETER"]
        if not re.fullmatch(r"[a-z_]+", name):
            raise ValueError(f"suite parameter {name!r} is not a plain name")
        return f"${name}"
    raise ValueError(f"row rules take their bounds as suite parameters, got {kwarg!r}")


def predicate_sql(rule: RowRule) -> str:
    """SQL that is TRUE exactly for the rows the rule's expectation reports as unexpected.

    Written by hand because great-expectations builds such conditions only inside its SQL execution engine (not
    usable on DuckDB here, see warehouse.row_checks); it follows great-expectations' semantics: NULL values are
    unexpected only for not-null, and between/in-set ignore them (a NULL predicate is not TRUE).
    """
    kwargs = rule.config()["kwargs"]
    value = f"({rule.expression})"
    if rule.expectation == NOT_NULL:
        return f"{value} IS NULL"
    if rule.expectation == BETWEEN:
        sides = ([f"{value} < {_value(kwargs['min_value'])}"] if "min_value" in kwargs else []) + (
            [f"{value} > {_value(kwargs['max_value'])}"] if "max_value" in kwargs else [])
        return " OR ".join(sides)
    if rule.expectation == IN_SET:
        return f"{value} NOT IN (SELECT unnest({_value(kwargs['value_set'])}))"
    raise ValueError(f"no SQL form for {rule.expectation}")


def fails_sql(rule: RowRule) -> str:
    """SQL that is TRUE for a row the rule applies to and rejects (never NULL)."""
    return f"coalesce(({rule.where}) AND ({predicate_sql(rule)}), FALSE)"


def sql_parameters(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters `sql` names: DuckDB rejects named parameters that a statement does not use."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def write_suite(path: Path = SUITE_PATH) -> Path:
    """Write the suite JSON generated from ROW_RULES (the saved copy is checked against it by the tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite_dict(), indent=2) + "\n")
    return path


if __name__ == "__main__":
    print(write_suite())
