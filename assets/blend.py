"""The blend of two graph filters' published vectors as a recommender asset (``filter_blend_factors_model``): it
reads the vectors that the filters' own steps fitted on this training graph, so neither filter is fitted twice, and
chooses the blend's weight on validation (``models.recsys.blend.FactorBlend``). Its run, record and evaluation are
every recommender's (``assets.factory``), so the ranking report compares it and the champion may be it.
"""

import time
from typing import Any

from dagster import Config

from assets.common import GRAPH_RECORD, read_json
from assets.factory import TrainingInputs, recommender_asset
from assets.families import fitted_from_run
from assets.runs import ModelArtifacts
from models.recsys.blend import FactorBlend, FactorBlendConfig
from models.recsys.contract import Fitted, Runtime
from orchestration.config_classes import config_class, from_config
from orchestration.executor import VECTORS_LAST

BLEND = FactorBlend()
# The filters whose vectors the asset blends, first then second (the config's defaults): their steps come first.
MEMBERS = (FactorBlendConfig.first, FactorBlendConfig.second)


def member_fit(inputs: TrainingInputs, model: str, fingerprint: str) -> tuple[Fitted, str]:
    """The latest fit of ``model`` and its run id; an error that says what to run when it was fitted on another
    training graph than this one (a blend of vectors from two graphs would rank nothing meaningful)."""
    run = ModelArtifacts(model).latest_run(inputs.artifacts)
    record = read_json(run.record)
    if record["data_fingerprint"] != fingerprint:
        raise ValueError(f"filter_blend_factors: the latest fit of {model} (run {record['run_id']}) is of another "
                         f"training graph (fingerprint {record['data_fingerprint']}, now {fingerprint}): materialize "
                         f"{model}_model first")
    return fitted_from_run(model, run), record["run_id"]


def fit_blend(inputs: TrainingInputs, config: Config, runtime: Runtime) -> tuple[Fitted, dict[str, Any]]:
    """The blend of the members' latest fits, with the runs it read as figures."""
    started, settings = time.perf_counter(), from_config(config, FactorBlendConfig)
    if (settings.first, settings.second) != MEMBERS:
        raise ValueError(f"filter_blend_factors_model blends the vectors of its upstream steps, {MEMBERS[0]} then "
                         f"{MEMBERS[1]}; got first={settings.first!r}, second={settings.second!r}")
    fingerprint = read_json(inputs.artifacts.path(*GRAPH_RECORD))["fingerprint"]
    (first, first_run), (second, second_run) = (member_fit(inputs, model, fingerprint) for model in MEMBERS)
    fitted = BLEND.blend([first, second], inputs.graph, inputs.valid, settings, runtime)
    fitted.record.seconds = time.perf_counter() - started
    return fitted, {"publishable": True, "baseline": False, "weight": fitted.config["weight"],
                    f"{MEMBERS[0]}_run": first_run, f"{MEMBERS[1]}_run": second_run}


filter_blend_factors_model = recommender_asset(
    BLEND.name, config_class(FactorBlendConfig, "FilterBlendFactorsModelConfig", {"choose_on_validation": True}),
    fit_blend, code_version=f"{BLEND.name}-{BLEND.version}",
    deps=("training_graph", *(f"{model}_model" for model in MEMBERS)), op_tags=VECTORS_LAST,
    description=f"The blend of {MEMBERS[0]}'s and {MEMBERS[1]}'s published vectors (per-user standardised scores, "
                "the weight chosen on validation), from their own steps' fits; publishable as vectors.")
