"""Where graphrec keeps its data and which device it trains on, switched by one variable: GRAPHREC_ENV.

`local` (default) puts everything under one data folder (GRAPHREC_DATA_DIR, default `<repo>/data`); `prod`
reads each location from its own variable and refuses to start when one is missing. The retrain policy (when
training, evaluation and publishing run again) reads its own two variables in either environment, and
GRAPHREC_STEP_PROCESSES how many steps of a run execute at a time. Never put secrets here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENTS = ("local", "prod")

# The variables `prod` needs: each names one location (a path; the warehouse may also be ':memory:').
PROD_VARIABLES = {
    "warehouse_path": "GRAPHREC_WAREHOUSE_PATH",
    "artifacts_root": "GRAPHREC_ARTIFACTS_ROOT",
    "feature_store_root": "GRAPHREC_FEATURE_STORE_ROOT",
    "landing_dir": "GRAPHREC_LANDING_DIR",
}


class SettingsError(ValueError):
    """The environment does not describe a usable configuration; the message names the variable to set."""


@dataclass(frozen=True)
class Settings:
    """Resolved locations and defaults for one environment."""

    env: str
    warehouse_path: str
    artifacts_root: str
    feature_store_root: str
    landing_dir: str
    device: str  # auto | cpu | cuda (GRAPHREC_DEVICE); auto picks cuda when one is available
    # Where the UI's code references point: the repository's web address (GRAPHREC_CODE_URL) and branch
    # (GRAPHREC_CODE_BRANCH); without an address they name the local files.
    code_url: str | None = None
    code_branch: str = "main"
    # Steps of a run at a time (GRAPHREC_STEP_PROCESSES): 1 runs the whole run in one process, more run that many
    # steps side by side, each in a process of its own with its share of the cores (orchestration/executor.py).
    step_processes: int = 1


# Local runs train on the small demo set: a larger step and batch reach the plateau of validation Recall@20 in
# about 20 epochs there, and evaluating every 5 epochs lets early stopping see past the dip of the first
# epochs (evaluated every epoch with patience 10, the paper's lr 1e-3 stops at epoch 14, far below the plateau).
# The batch grows with the training graph (batch_size 0: models.recsys.training.batch_for_edges), 4,096 on the demo:
# a fixed 4,096 left LightGCN 11 epochs of a 10-minute budget on Gowalla. Prod keeps the defaults of
# models.recsys.training.LightGCNConfig.
LOCAL_TRAINING_DEFAULTS: dict[str, Any] = {"lr": 0.01, "batch_size": 0, "epochs": 100, "eval_every": 5,
                                           "patience": 3}


@dataclass(frozen=True)
class RetrainPolicy:
    """When training, evaluation and publishing run again: at each tick of `cron` (UTC), or as soon as the number
    of clean interactions moved by at least `share` since they last ran."""

    cron: str
    share: float


# Weekly, as the freshness policy on published_embeddings expects; a tenth more (or fewer) interactions is where a
# retrain starts to pay on the data sets measured so far, while a small landed file only refreshes the graph.
DEFAULT_RETRAIN = RetrainPolicy(cron="0 3 * * 1", share=0.1)


def retrain_policy(environ: Mapping[str, str] = os.environ) -> RetrainPolicy:
    """GRAPHREC_RETRAIN_CRON (UTC) and GRAPHREC_RETRAIN_SHARE (a fraction above 0), checked, with their defaults."""
    raw_share = environ.get("GRAPHREC_RETRAIN_SHARE", str(DEFAULT_RETRAIN.share))
    try:
        share = float(raw_share)
    except ValueError:
        share = float("nan")
    if not share > 0:
        raise SettingsError(f"GRAPHREC_RETRAIN_SHARE={raw_share!r} is not a fraction above 0 (e.g. 0.1 for 10%).")
    return RetrainPolicy(cron=environ.get("GRAPHREC_RETRAIN_CRON", DEFAULT_RETRAIN.cron), share=share)


def environment(environ: Mapping[str, str] = os.environ) -> str:
    """GRAPHREC_ENV, checked: local (default) or prod."""
    env = environ.get("GRAPHREC_ENV", "local")
    if env not in ENVIRONMENTS:
        raise SettingsError(f"GRAPHREC_ENV={env!r} is not one of {ENVIRONMENTS}; unset it or pick one of those.")
    return env


def training_defaults(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """LightGCN settings that the environment puts in place of the model's own defaults."""
    return LOCAL_TRAINING_DEFAULTS if environment(environ) == "local" else {}


def step_processes(environ: Mapping[str, str] = os.environ) -> int:
    """GRAPHREC_STEP_PROCESSES, checked: a whole number of at least 1 (default 1)."""
    raw = environ.get("GRAPHREC_STEP_PROCESSES", "1")
    if not raw.strip().isdigit() or int(raw) < 1:
        raise SettingsError(f"GRAPHREC_STEP_PROCESSES={raw!r} is not a whole number of at least 1 (the steps of a run "
                            "that execute at a time).")
    return int(raw)


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    """Settings for GRAPHREC_ENV (local or prod) from `environ`."""
    env = environment(environ)
    # The same variables in either environment.
    shared = {"device": environ.get("GRAPHREC_DEVICE", "auto"), "code_url": environ.get("GRAPHREC_CODE_URL") or None,
              "code_branch": environ.get("GRAPHREC_CODE_BRANCH", "main"), "step_processes": step_processes(environ)}
    if env == "local":
        data_dir = Path(environ.get("GRAPHREC_DATA_DIR", REPO_ROOT / "data")).expanduser()
        return Settings(
            env=env,
            warehouse_path=str(data_dir / "warehouse.duckdb"),
            artifacts_root=str(data_dir / "artifacts"),
            feature_store_root=str(data_dir / "feature_store"),
            landing_dir=str(data_dir / "landing"),
            **shared,
        )
    missing = [name for name in PROD_VARIABLES.values() if not environ.get(name)]
    if missing:
        raise SettingsError(
            f"GRAPHREC_ENV=prod needs {', '.join(missing)}; set each to the location it names (see README)."
        )
    return Settings(
        env=env, **shared,
        **{field: environ[name] for field, name in PROD_VARIABLES.items()},
    )
