"""Distillation stage: heuristic teachers' scores (CN, AA, RA, PPR) from the training edges, and the graph-free
student, feature towers in LightGCN's embedding space, an asset of the recommender factory beside its teacher.
"""

import time
from typing import Any

import torch
from dagster import (
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from assets.common import (
    TRAIN_GRAPH,
    fingerprint,
    load_tensors,
    markdown_table,
    save_tensors,
)
from assets.cost import step_cost
from assets.factory import TrainingInputs, recommender_asset
from assets.runs import ModelArtifacts
from assets.training import lightgcn_model
from models.eval.ranking import user_csr
from models.graph.bipartite import BipartiteGraph
from models.graph.heuristics import HEURISTICS, bipartite_heuristic_scores
from models.recsys.contract import Fitted, Runtime
from models.recsys.serving import propagation_scorer, student_scorer, users_per_second
from models.recsys.student import (
    RecStudentConfig,
    student_vectors,
    teacher_contexts,
    train_feature_student,
)
from orchestration.automation import RETRAIN_WHEN_IT_PAYS
from orchestration.config_classes import config_class
from orchestration.executor import TRAINING_FIRST
from orchestration.resources import ArtifactStore
from warehouse.features import (
    interaction_matrix,
    item_table,
    later_user_interactions,
    serving_features,
)

CODE_VERSION = "distillation-1"
HEURISTIC_SCORES = ("distillation", "heuristic_scores.pt")
STUDENT = ModelArtifacts("student")
TEACHER = ModelArtifacts("lightgcn")
SPEED_USERS = 256  # users per timed serving batch


class HeuristicScoresConfig(Config):
    """Which heuristics score each user's context items (as many own and random items as the student uses)."""

    heuristics: list[str] = Field(default=list(HEURISTICS), description="Any of cn, aa, ra, ppr.")
    seed: int = Field(default=0, description="Seed of the context draw.")
    ppr_epsilon: float = Field(default=1e-5, description="Forward-push tolerance of the PPR heuristic: each score "
                               "lies within ε·degree(item) below the exact one; smaller is closer and slower.")


@asset(group_name="distillation", kinds={"pytorch"}, code_version=CODE_VERSION, deps=["training_graph"],
       automation_condition=RETRAIN_WHEN_IT_PAYS, op_tags=TRAINING_FIRST)  # the student's input
def heuristic_scores(context: AssetExecutionContext, config: HeuristicScoresConfig,
                     artifacts: ArtifactStore) -> MaterializeResult:
    """CN, AA, RA and PPR scores of every user's context items (own and random), from the training edges only."""
    graph = BipartiteGraph.load(artifacts.path(*TRAIN_GRAPH))
    contexts = teacher_contexts(graph, config.seed)
    started = time.perf_counter()
    users = torch.arange(graph.num_users)
    scores = bipartite_heuristic_scores(graph, users.repeat_interleave(contexts.size(1)), contexts.flatten(),
                                        tuple(config.heuristics), ppr_epsilon=config.ppr_epsilon)
    seconds = time.perf_counter() - started
    save_tensors(artifacts.path(*HEURISTIC_SCORES), items=contexts,
                 **{name: values.view(contexts.shape) for name, values in scores.items()})
    positives = RecStudentConfig().context_positives
    rows = [{"heuristic": name, "own items (mean)": float(values.view(contexts.shape)[:, :positives].mean()),
             "random items (mean)": float(values.view(contexts.shape)[:, positives:].mean())}
            for name, values in scores.items()]
    return MaterializeResult(metadata={
        **step_cost(context),
        "pairs": contexts.numel(), "seconds": seconds, "pairs_per_second": contexts.numel() / max(seconds, 1e-9),
        "separation": MetadataValue.md(markdown_table(rows)),
    })


class MlpStudentConfig(config_class(RecStudentConfig, "MlpStudentBaseConfig", {"epochs": 20})):
    """Student training settings, and which heuristic teaches it beside LightGCN."""

    heuristic_teacher: str = Field(default="ra", description="A heuristic of heuristic_scores, or '' for none.")


def _fit_student(inputs: TrainingInputs, config: MlpStudentConfig, runtime: Runtime) -> tuple[Fitted, dict[str, Any]]:
    """The student from item features and each user's interactions, distilled from LightGCN and a heuristic."""
    graph, artifacts = inputs.graph, inputs.artifacts
    teacher = load_tensors(TEACHER.latest_run(artifacts).embeddings)
    with inputs.warehouse.connection() as con:
        items = item_table(con).head(graph.num_items)
        num_users = int(con.sql("SELECT count(*) FROM user_index").fetchall()[0][0])
        later = torch.from_numpy(later_user_interactions(con, graph.num_users, graph.num_items))
    # Users appended to the id map after the graph was built have no teacher vector; the student embeds them
    # from their interactions so far.
    known = torch.cat([graph.edge_index, later], dim=1)
    train_matrix = interaction_matrix(*graph.edge_index.numpy(), num_users, graph.num_items)
    item_x, user_x = (torch.from_numpy(a) for a in serving_features(
        items, train_matrix, interaction_matrix(*known.numpy(), num_users, graph.num_items)))
    heuristic = None
    if config.heuristic_teacher:
        stored = load_tensors(artifacts.path(*HEURISTIC_SCORES))
        heuristic = (stored["items"], stored[config.heuristic_teacher] / stored[config.heuristic_teacher].std())
    settings = RecStudentConfig(**config.model_dump(exclude={"heuristic_teacher"}))
    indptr, bag_items = user_csr(graph.edge_index, graph.num_users)
    # A checkpoint resumes only against the same teacher, features and heuristic scores, not just the same graph.
    inputs_key = fingerprint(item_x, user_x[:graph.num_users], teacher["user_emb"], teacher["item_emb"],
                             *(heuristic or ()))
    result = train_feature_student(item_x, user_x[:graph.num_users], indptr, bag_items, teacher["user_emb"],
                                   teacher["item_emb"], settings, heuristic, runtime.log, runtime.checkpoint,
                                   f"{runtime.fingerprint}+{inputs_key}", runtime.code_version, runtime.device)
    known_indptr, known_items = user_csr(known, num_users)
    user_emb, item_emb = student_vectors(result.model, known_indptr, known_items, user_x)
    fitted = Fitted("student", {**config.model_dump(), "teacher": "lightgcn"}, result.record, user_emb=user_emb,
                    item_emb=item_emb)
    device_users = torch.arange(min(SPEED_USERS, graph.num_users))
    student_speed = users_per_second(student_scorer(result.model, known_indptr, known_items, user_x, item_emb),
                                     device_users)
    teacher_speed = users_per_second(propagation_scorer(graph, teacher["user_emb"].size(1)), device_users)
    return fitted, {
        "users": num_users, "users_without_teacher_vector": num_users - graph.num_users,
        "student_users_per_second": student_speed, "teacher_users_per_second": teacher_speed,
        "speedup": student_speed / teacher_speed,
        "latency_ms_per_user": 1000.0 / student_speed, "speed_device": "cpu (both models, same batch of users)",
    }


mlp_student = recommender_asset(
    "student", MlpStudentConfig, _fit_student, key="mlp_student", code_version=CODE_VERSION, group_name="distillation",
    deps=[lightgcn_model, heuristic_scores, "id_maps"],
    description="Graph-free student in LightGCN's space (item features, a user's own interactions), distilled from "
                "it and a heuristic.")
