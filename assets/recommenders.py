"""Every recommender by model name, baselines included. Each writes its runs under ``ModelArtifacts(name)``: the
ranking report evaluates them all side by side, the champion is one of them, and its vectors are published.
"""

from dagster import AssetsDefinition

from assets.blend import filter_blend_factors_model
from assets.distillation import mlp_student
from assets.families import FAMILY_ASSETS
from assets.shadow import shadow_model
from assets.training import lightgcn_model, rawls_model

RECOMMENDERS: dict[str, AssetsDefinition] = {"lightgcn": lightgcn_model, "rawls": rawls_model, "student": mlp_student,
                                              "shadow": shadow_model, **FAMILY_ASSETS,
                                              "filter_blend_factors": filter_blend_factors_model}
