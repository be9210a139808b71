"""Recommender assets of the family registry: adding a family to ``models.recsys.registry.FAMILIES`` adds its
``<name>_model`` asset here (through the recommender asset factory), its row in the ranking report and, when it is
publishable, a way to the feature store.
"""

import dataclasses
from typing import Any

from dagster import AssetsDefinition, Config

from assets.common import GRAPH_RECORD, load_tensors, read_json
from assets.factory import TrainingInputs, recommender_asset
from assets.runs import ModelArtifacts, RunFiles
from assets.spectra import SPECTRA, load_spectra
from models.recsys.contract import Family, Fitted, Runtime, restore_vectors
from models.recsys.registry import FAMILIES
from orchestration.config_classes import config_class, from_config
from orchestration.executor import VECTORS_LAST
from orchestration.resources import ArtifactStore


def load_fitted(artifacts: ArtifactStore, model: str) -> Fitted:
    """A recommender's latest saved fit (see :func:`fitted_from_run`)."""
    return fitted_from_run(model, ModelArtifacts(model).latest_run(artifacts))


def fitted_from_run(model: str, run: RunFiles) -> Fitted:
    """The fit saved in ``run`` of ``model``: a registry family restores its own (vectors or scorer); the other
    recommender assets save dot-product vectors."""
    tensors = load_tensors(run.embeddings)
    if model in FAMILIES:
        return FAMILIES[model].restore(tensors, read_json(run.record)["config"])
    return restore_vectors(model, tensors, {})


def is_baseline(model: str) -> bool:
    """True for the reference families that a champion has to beat."""
    return model in FAMILIES and FAMILIES[model].baseline


def full_filter_of(model: str) -> str | None:
    """The scorer family whose filter ``model``'s vectors carry (``bspm`` for ``bspm_factors``), or None."""
    return getattr(FAMILIES[model], "vectors_of", None) if model in FAMILIES else None


def family_asset(family: Family) -> AssetsDefinition:
    """The asset ``<family>_model``: ``family.fit`` on the training graph, its fit and record under ``<family>/``."""

    spectral = getattr(family, "spectral", False)

    def fit(inputs: TrainingInputs, config: Config, runtime: Runtime) -> tuple[Fitted, dict[str, Any]]:
        figures = {"publishable": family.publishable, "baseline": family.baseline}
        if spectral:
            fingerprint = read_json(inputs.artifacts.path(*GRAPH_RECORD))["fingerprint"]
            runtime = dataclasses.replace(runtime, spectra=load_spectra(inputs.artifacts.path(*SPECTRA), fingerprint))
            figures["shared_spectra"] = len(runtime.spectra)
            if not runtime.spectra:
                inputs.context.log.warning(f"{family.name}: interaction_spectra holds nothing for this training "
                                           "graph; the fit runs its own SVD")
        fitted = family.fit(inputs.graph, inputs.valid, from_config(config, family.config_type), runtime)
        return fitted, figures

    kind = "publishable as vectors" if family.publishable else "served by a scorer"
    # The pipeline's filters choose their setting on validation; the dataclass default stays the authors' setting,
    # which the benchmarks and tests reproduce.
    overrides = {"choose_on_validation": True} if "choose_on_validation" in {
        field.name for field in dataclasses.fields(family.config_type)} else None
    return recommender_asset(
        family.name, config_class(family.config_type, f"{family.name.title().replace('_', '')}ModelConfig",
                                  overrides), fit,
        code_version=f"{family.name}-{family.version}",
        deps=("training_graph", "interaction_spectra") if spectral else ("training_graph",),
        op_tags=VECTORS_LAST if getattr(family, "vectors_of", None) else None,
        description=f"{family.name} ({'baseline' if family.baseline else 'recommender'}, {kind}) fitted through the "
                    "recommender contract.")


FAMILY_ASSETS: dict[str, AssetsDefinition] = {name: family_asset(family) for name, family in FAMILIES.items()}
