"""Every trained recommender by model name. Each writes user and item embeddings at ``ModelArtifacts(name)``:
the ranking report evaluates them all side by side, the champion is one of them, and its vectors are published.
"""

from dagster import AssetsDefinition

from assets.training import lightgcn_model, rawls_model

RECOMMENDERS: dict[str, AssetsDefinition] = {"lightgcn": lightgcn_model, "rawls": rawls_model}
