"""Node classification with shaDow-GNN on PPR scopes against full-graph GCNs of the same depth, on one fixed split
(RawlsGCN's class-balanced split: 20 training nodes per class, 500 validation, 1000 test), test accuracy at the
best validation accuracy, one run per seed.
"""
from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from models.graph.ppr import DAMPING, forward_push
from models.graph.scopes import GraphIndex, Scopes, ScopeSubgraphs, SubgraphBatch, ppr_scopes
from models.graph.shadow_gnn import ShadowError, ShadowGNN
from models.graph.sparse import binary_adjacency, gcn_adjacency
from models.nodeclf.rawls_protocol import NodeSplit, class_balanced_split
from models.nodeclf.rawlsgcn import Operand, SparseOperand, matmul

MODEL_NAME = re.compile(r"^(gcn|gcn_res|shadow_(gcn|sage|gat))(\d+)$")


@dataclass(frozen=True)
class ShadowNodeConfig:
    """Settings shared by every model of the comparison; the scope settings are close to shaDow-GNN's PPR configs."""

    hidden_channels: int = 64
    dropout: float = 0.5
    lr: float = 0.01
    weight_decay: float = 5e-4
    epochs: int = 100
    eval_every: int = 10  # epochs between validation evaluations (model selection by best validation accuracy)
    batch_size: int = 70  # shaDow targets per step (two steps per epoch on 140 training nodes)
    eval_batch_size: int = 256  # scopes per inference batch
    readout: str = "center"  # center+mean trained to lower accuracy on Cora-ML with 140 labels
    damping: float = DAMPING
    epsilon: float = 1e-5
    top_k: int = 200
    threshold: float = 0.01  # relative to the best non-target score
    split_seed: int = 1684992425
    num_train_per_class: int = 20
    num_val: int = 500
    num_test: int = 1000
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass
class ModelResult:
    """Test accuracies (%) per seed of one model, and its seconds per run."""

    model: str
    accuracies: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Mean and sample standard deviation of the accuracy, and mean seconds per run."""
        acc = self.accuracies
        return {"acc_mean": statistics.mean(acc), "acc_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "seconds_per_run": statistics.mean(self.seconds)}


def parse_model(name: str) -> tuple[str, str, int]:
    """``"gcn5"`` → ``("full", "gcn", 5)``; ``"gcn_res5"`` → ``("full", "gcn_res", 5)`` (shaDow's backbone on the
    whole graph); ``"shadow_sage5"`` → ``("shadow", "sage", 5)``."""
    match = MODEL_NAME.match(name)
    if match is None:
        raise ShadowError(f"unknown model {name!r}; use gcn<L>, gcn_res<L> or shadow_<gcn|sage|gat><L>, e.g. gcn3, "
                          "gcn_res5, shadow_sage5.")
    family, conv, layers = match.groups()
    return ("full", family, int(layers)) if family in ("gcn", "gcn_res") else ("shadow", conv, int(layers))


class FullGraphGCN(nn.Module):
    """An L-layer GCN over the whole graph (Kipf & Welling), ``H ← Â·dropout(H)·W + b``: the baseline whose receptive
    field grows with its depth. Hidden layers use ReLU and dropout, as RawlsGCN's two-layer GCN."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__()
        sizes = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        self.dropout = dropout

    def forward(self, x: Operand, adj: Operand) -> Tensor:
        h = x
        for i, layer in enumerate(self.layers):
            h = matmul(adj, matmul(h, layer.weight.t())) + layer.bias
            if i < len(self.layers) - 1:
                h = F.dropout(F.relu(h), self.dropout, self.training)
        return h


class FullGraphResGCN(nn.Module):
    r""":class:`ShadowClassifier`'s backbone over the whole graph instead of PPR scopes: a linear input layer, then
    :math:`h^{(\ell)} = h^{(\ell-1)} + \mathrm{ReLU}(\mathrm{LayerNorm}(\hat{A}\,\mathrm{dropout}(h^{(\ell-1)})
    W_\ell + b_\ell))` (no residual at the first layer, as :class:`models.graph.shadow_gnn.ShadowGNN`), and a linear
    readout of each node. The fair full-graph baseline for shaDow-GCN: only the receptive field differs."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.encode = nn.Linear(in_channels, hidden_channels)
        self.layers = nn.ModuleList(nn.Linear(hidden_channels, hidden_channels) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_channels) for _ in range(num_layers))
        self.out = nn.Linear(hidden_channels, out_channels)
        self.dropout = dropout

    def forward(self, x: Operand, adj: Operand) -> Tensor:
        h = matmul(x, self.encode.weight.t()) + self.encode.bias
        for i, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            z = matmul(adj, F.dropout(h, self.dropout, self.training) @ layer.weight.t()) + layer.bias
            z = F.relu(norm(z))
            h = z if i == 0 else h + z
        return self.out(F.dropout(h, self.dropout, self.training))


class ShadowClassifier(nn.Module):
    """shaDow-GNN on sparse node features: a linear input layer on the batch's distinct nodes, then
    :class:`ShadowGNN`."""

    def __init__(self, in_channels: int, num_classes: int, conv: str, num_layers: int,
                 config: ShadowNodeConfig) -> None:
        super().__init__()
        self.encode = nn.Linear(in_channels, config.hidden_channels)
        self.gnn = ShadowGNN(config.hidden_channels, config.hidden_channels, num_classes, num_layers, conv,
                             config.readout, config.dropout)

    def forward(self, x: Tensor, sub: SubgraphBatch) -> Tensor:
        """``x``: sparse COO features of every node; only the rows of the batch's distinct nodes are read."""
        unique, inverse = torch.unique(sub.node_id, return_inverse=True)
        h = torch.sparse.mm(torch.index_select(x, 0, unique), self.encode.weight.t()) + self.encode.bias
        return self.gnn(h[inverse], sub.edge_index, sub.batch, sub.center)


def node_scopes(data: Data, config: ShadowNodeConfig) -> ScopeSubgraphs:
    """PPR scopes of every node (top-k, ε, relative threshold of ``config``) with their induced subgraphs."""
    adj = binary_adjacency(data.edge_index.cpu(), data.num_nodes)
    ppr = forward_push(adj, torch.arange(data.num_nodes), config.damping, config.epsilon, config.top_k)
    return ScopeSubgraphs.extract(ppr_scopes(ppr, config.threshold), GraphIndex(adj))


def _accuracy(logits: Tensor, y: Tensor) -> float:
    return 100.0 * float((logits.argmax(1) == y).double().mean())


def _train_full(data: Data, split: NodeSplit, family: str, layers: int, config: ShadowNodeConfig) -> float:
    """Full-batch training of a ``gcn`` (:class:`FullGraphGCN`) or ``gcn_res`` (:class:`FullGraphResGCN`); the test
    accuracy at the best validation evaluation."""
    x, adj = SparseOperand.of(data.x), SparseOperand.of(gcn_adjacency(data.edge_index, data.num_nodes, self_loops=True))
    model_class = FullGraphResGCN if family == "gcn_res" else FullGraphGCN
    model = model_class(data.num_features, config.hidden_channels, int(data.y.max()) + 1, layers, config.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_val, best_test = -1.0, 0.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        optimizer.zero_grad()
        F.cross_entropy(model(x, adj)[split.train], data.y[split.train]).backward()
        optimizer.step()
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            model.eval()
            with torch.no_grad():
                logits = model(x, adj)
            val = _accuracy(logits[split.val], data.y[split.val])
            if val > best_val:
                best_val, best_test = val, _accuracy(logits[split.test], data.y[split.test])
    return best_test


def _batches(subgraphs: ScopeSubgraphs, nodes: Tensor, batch_size: int) -> list[SubgraphBatch]:
    return [subgraphs.batch(nodes[i:i + batch_size]) for i in range(0, nodes.numel(), batch_size)]


@torch.no_grad()
def _predict(model: ShadowClassifier, x: Tensor, batches: list[SubgraphBatch]) -> Tensor:
    model.eval()
    return torch.cat([model(x, sub) for sub in batches])


def _train_shadow(data: Data, x: Tensor, split: NodeSplit, conv: str, layers: int, subgraphs: ScopeSubgraphs,
                  seed: int, config: ShadowNodeConfig) -> float:
    """Minibatch shaDow training over the training targets' scopes; the test accuracy at the best validation."""
    model = ShadowClassifier(x.size(1), int(data.y.max()) + 1, conv, layers, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    # Validation and test subgraphs are the same at every evaluation: extracted once.
    val_batches, test_batches = (_batches(subgraphs, nodes, config.eval_batch_size) for nodes in (split.val, split.test))
    best_val, best_test = -1.0, 0.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = split.train[torch.randperm(split.train.numel(), generator=generator)]
        for i in range(0, order.numel(), config.batch_size):
            targets = order[i:i + config.batch_size]
            optimizer.zero_grad()
            logits = model(x, subgraphs.batch(targets))
            F.cross_entropy(logits, data.y[targets]).backward()
            optimizer.step()
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            val = _accuracy(_predict(model, x, val_batches), data.y[split.val])
            if val > best_val:
                best_val, best_test = val, _accuracy(_predict(model, x, test_batches), data.y[split.test])
    return best_test


def run_comparison(data: Data, models: list[str], config: ShadowNodeConfig = ShadowNodeConfig(),
                   log: Callable[[str], None] = lambda _: None) -> tuple[dict[str, ModelResult], Scopes]:
    """Every model of ``models`` (e.g. ``gcn3``, ``shadow_sage5``) once per seed on the same split.

    Scope node ids equal node indices (scopes cover every node, in order). Returns the results by model and the scopes.

    Args:
        data: a graph from :func:`models.nodeclf.npz_graphs.load_npz_graph` (CPU).
        models: names as parsed by :func:`parse_model` (``gcn<L>``, ``gcn_res<L>``, ``shadow_<conv><L>``).
        config: shared settings (default: :class:`ShadowNodeConfig`).
        log: called with one line per finished run (model, seed, accuracy, seconds).
    """
    specs = {name: parse_model(name) for name in models}
    split = class_balanced_split(data.y, config.num_train_per_class, config.num_val, config.num_test,
                                 config.split_seed)
    x = data.x.to_sparse_coo().coalesce()
    subgraphs = node_scopes(data, config)
    results = {name: ModelResult(name) for name in models}
    for name, (family, conv, layers) in specs.items():
        for seed in config.seeds:
            started = time.perf_counter()
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                accuracy = (_train_full(data, split, conv, layers, config) if family == "full" else
                            _train_shadow(data, x, split, conv, layers, subgraphs, seed, config))
            results[name].accuracies.append(accuracy)
            results[name].seconds.append(time.perf_counter() - started)
            log(f"{name} seed {seed}: test accuracy {accuracy:.2f} %, {results[name].seconds[-1]:.1f} s")
    return results, subgraphs.scopes
