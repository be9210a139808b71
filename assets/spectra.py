"""The singular triplets of the training matrix that every graph filter starts from, one truncated SVD per degree
normalisation (models.recsys.spectrum): GF-CF, BSPM, SGFCF and their vectors take their top triplets from here
instead of each running an SVD of its own.
"""

import time
from pathlib import Path

import torch
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from assets.common import (
    GRAPH_RECORD,
    TRAIN_GRAPH,
    fingerprint_tensor,
    load_tensors,
    markdown_table,
    read_json,
    save_tensors,
)
from assets.cost import step_cost
from models.graph.bipartite import BipartiteGraph
from models.recsys.interactions import interaction_matrix
from models.recsys.spectrum import Spectrum, compute_spectrum, svd_solver
from orchestration.automation import RETRAIN_WHEN_IT_PAYS
from orchestration.executor import SHARED_SPECTRA_FIRST
from orchestration.resources import ArtifactStore

SPECTRA = ("graph", "spectra.pt")
CODE_VERSION = "spectra-2"


class SpectraConfig(Config):
    """Which normalisations, how many triplets and which start vector. The defaults cover every filter family at
    the pipeline's settings: ε 0.5 (GF-CF, BSPM and their vectors, at most 1,024 triplets) and ε 0.34 (SGFCF and
    its vectors, at most 1,000); a filter whose setting is not covered computes its own SVD and says so."""

    exponents: list[float] = Field(default=[0.5, 0.34], description="Degree exponents ε of D = d^-ε, one SVD each.")
    rank: int = Field(default=1024, ge=1, description="Singular triplets per normalisation (capped below the "
                                                      "matrix's smaller side).")
    seed: int = Field(default=2020, description="Start vector of the Lanczos iteration (the filters' default).")


def load_spectra(path: Path, fingerprint: str) -> tuple[Spectrum, ...]:
    """The spectra saved at ``path`` when they were computed from the training data ``fingerprint`` names, else
    none (a missing file, or one left from earlier data)."""
    if not path.exists():
        return ()
    tensors = load_tensors(path)
    if not torch.equal(tensors["fingerprint"], fingerprint_tensor(fingerprint)):
        return ()
    prefixes = sorted((key.removesuffix(".identity") for key in tensors if key.endswith(".identity")),
                      key=lambda prefix: int(prefix.removeprefix("spectrum")))
    return tuple(Spectrum.from_tensors(tensors, prefix) for prefix in prefixes)


def _row(spectrum: Spectrum, seconds: float | None) -> dict:
    return {"exponent": spectrum.exponent, "triplets": int(spectrum.values.size), "largest": float(spectrum.values[0]),
            "smallest": float(spectrum.values[-1]), "seconds": "kept" if seconds is None else seconds,
            "solver": spectrum.solver or "kept"}


@asset(group_name="training", kinds={"scipy"}, code_version=CODE_VERSION, deps=["training_graph"],
       automation_condition=RETRAIN_WHEN_IT_PAYS, op_tags=SHARED_SPECTRA_FIRST)
def interaction_spectra(context: AssetExecutionContext, config: SpectraConfig,
                        artifacts: ArtifactStore) -> MaterializeResult:
    """The top singular triplets of the normalised training matrix at each configured degree exponent."""
    # The saved ones are kept while the training data and the settings are unchanged (a cron tick without new data).
    matrix = interaction_matrix(BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH)))
    fingerprint = read_json(artifacts.path(*GRAPH_RECORD))["fingerprint"]
    metadata = {"data_fingerprint": fingerprint, "config": MetadataValue.json(config.model_dump())}
    kept = load_spectra(artifacts.path(*SPECTRA), fingerprint)
    if len(kept) == len(config.exponents) and all(
            spectrum.covers(matrix, exponent, 0.0, config.seed, config.rank)
            for spectrum, exponent in zip(kept, config.exponents)):
        context.log.info("training data and settings unchanged: keeping the saved spectra")
        return MaterializeResult(metadata={**step_cost(context), **metadata, "cached": True,
                                           "spectra": MetadataValue.md(markdown_table([_row(s, None) for s in kept]))})
    tensors, rows = {}, []
    solver = svd_solver(matrix.shape, config.rank)
    for index, exponent in enumerate(config.exponents):
        started = time.perf_counter()
        spectrum = compute_spectrum(matrix, config.rank, config.seed, exponent, solver=solver)
        tensors.update(spectrum.tensors(f"spectrum{index}"))
        rows.append(_row(spectrum, time.perf_counter() - started))
        context.log.info(f"ε {exponent}: {spectrum.values.size} triplets in {rows[-1]['seconds']:.1f} s "
                         f"({spectrum.solver})")
    save_tensors(artifacts.path(*SPECTRA), fingerprint=fingerprint_tensor(fingerprint), **tensors)
    return MaterializeResult(metadata={
        **step_cost(context), **metadata, "cached": False,
        # The solver chosen for the shape, or ARPACK where PROPACK met a matrix of lower rank than asked.
        "svd_solver": ", ".join(sorted({row["solver"] for row in rows})),
        **{f"exponent_{row['exponent']}.seconds": row["seconds"] for row in rows},
        "spectra": MetadataValue.md(markdown_table(rows)),
    })
