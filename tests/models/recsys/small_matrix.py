"""The small interaction matrix that the graph-filter and baseline tests compute by hand: 7 users × 6 items with
no tied neighbours at item-kNN's pruning boundary; item 5 has no training user, so every normalisation must give
0 there, not NaN."""
import numpy as np
import torch

from models.graph.bipartite import BipartiteGraph

R = np.array([
    [1, 0, 1, 1, 1, 0],
    [0, 1, 0, 0, 1, 0],
    [1, 1, 1, 0, 0, 0],
    [1, 1, 0, 0, 0, 0],
    [1, 0, 0, 0, 1, 0],
    [0, 0, 0, 1, 1, 0],
    [1, 0, 1, 0, 1, 0],
], dtype=np.float64)
EDGES = torch.tensor(np.stack(np.nonzero(R)), dtype=torch.long)
GRAPH = BipartiteGraph(EDGES, 7, 6)
USERS = torch.arange(7)


def inv_sqrt(d: np.ndarray) -> np.ndarray:
    """``d ** -0.5`` with 0 where ``d`` is 0."""
    return np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0.0)
