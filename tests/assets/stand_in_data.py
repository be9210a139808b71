"""The training data that the stand-in families of the factory and run-folder tests fit on: 3 users, 60 items (more
than the evaluation's largest cut-off, 50), one validation and two test pairs, fingerprint "data"."""
from pathlib import Path

import torch

from assets.common import GRAPH_RECORD, TEST_EDGES, TRAIN_GRAPH, VALID_EDGES, save_tensors, write_json
from models.graph.bipartite import BipartiteGraph

ITEMS = 60


def write_stand_in_data(artifacts: Path) -> None:
    """The graph stage's files under the artifact store root ``artifacts``."""
    (artifacts / "graph").mkdir(parents=True)
    BipartiteGraph(torch.tensor([[0, 1, 2], [0, 1, 0]]), 3, ITEMS).save(artifacts / "graph" / TRAIN_GRAPH[1])
    save_tensors(artifacts / "graph" / VALID_EDGES[1], edge_index=torch.tensor([[0], [1]]))
    save_tensors(artifacts / "graph" / TEST_EDGES[1], edge_index=torch.tensor([[0, 1], [59, 30]]))
    write_json(artifacts / "graph" / GRAPH_RECORD[1], {"fingerprint": "data"})
