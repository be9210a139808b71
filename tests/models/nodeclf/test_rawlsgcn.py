"""RawlsGCN: the Grad variant's weight gradient against a hand computation, the protocol's split, degree Bias and a
short training run on the Cora slice in tests/fixtures (and on the full Cora-ML when the shared folder is there).
"""

import math
import statistics

import pytest
import torch
import torch.nn.functional as F

from models.eval.ranking import rawls_bias
from models.graph.sparse import gcn_adjacency
from models.nodeclf.npz_graphs import NPZ_FOLDER, NpzGraphError, load_npz_graph, npz_path
from models.nodeclf.rawls_protocol import (
    NodeClassificationConfig,
    ProtocolError,
    build_propagation,
    class_balanced_split,
    raw_degree,
    run_protocol,
)
from models.nodeclf.rawlsgcn import GradientFixError, RawlsGCN, SparseOperand
from warehouse.paths import shared_dir

SHARED_NPZ = shared_dir() / NPZ_FOLDER

# A 5-node graph: triangle 0-1-2, pendant 3 on 2, pendant 4 on 3.
EDGE_INDEX = torch.tensor([[0, 1, 0, 2, 1, 2, 2, 3, 3, 4], [1, 0, 2, 0, 2, 1, 3, 2, 4, 3]])
NUM_NODES = 5

# Many small ops: one intra-op thread for every test here (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_problem():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(NUM_NODES, 4, generator=generator, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1])
    adj = gcn_adjacency(EDGE_INDEX, NUM_NODES, self_loops=True).to(torch.float64)
    # A deliberately non-symmetric "balanced" matrix, so using Pᵀ instead of P would show.
    balanced = (adj.to_dense() * torch.rand(NUM_NODES, NUM_NODES, generator=generator, dtype=torch.float64))
    model = RawlsGCN(4, 3, hidden_channels=6, dropout=0.0).double()
    return x, y, adj, balanced, model


def hand_gradients(x, y, train, adj, balanced, model):
    """Z, H, G of both layers written out densely, and the Grad variant's gradients Hᵀ·P·G and 1ᵀ·G."""
    a, p = adj.to_dense(), balanced
    (w1, w2), (b1, b2) = [w.detach() for w in model.weights], [b.detach() for b in model.biases]
    z1 = a @ x @ w1 + b1
    h1 = z1.clamp(min=0)
    z2 = a @ h1 @ w2 + b2
    # d(mean NLL of log_softmax over the train nodes)/dZ2 = (softmax − one-hot) / |train| on train rows.
    g2 = torch.zeros_like(z2)
    g2[train] = (z2[train].softmax(1) - F.one_hot(y[train], 3)) / train.numel()
    g1 = (a.t() @ g2 @ w2.t()) * (z1 > 0)
    return [x.t() @ p @ g1, h1.t() @ p @ g2], [g1.sum(0), g2.sum(0)]


@pytest.mark.parametrize("sparse_features", [False, True])
def test_grad_variant_weight_gradient_equals_hand_computation(sparse_features):
    x, y, adj, balanced, model = tiny_problem()
    train = torch.tensor([0, 1, 4])
    features = SparseOperand.of(x.to_sparse_csr()) if sparse_features else x
    F.nll_loss(model(features, SparseOperand.of(adj))[train], y[train]).backward()
    model.balance_gradients_(balanced.to_sparse_csr())
    weight_grads, bias_grads = hand_gradients(x, y, train, adj, balanced, model)
    for weight, expected in zip(model.weights, weight_grads):
        torch.testing.assert_close(weight.grad, expected, atol=1e-12, rtol=1e-12)
    for bias, expected in zip(model.biases, bias_grads):
        torch.testing.assert_close(bias.grad, expected, atol=1e-12, rtol=1e-12)


def test_plain_backward_equals_hand_computation_with_a_in_place_of_p():
    # With P = Âᵀ the fix reproduces the ordinary gradient, so autograd alone must give HᵀÂᵀG.
    x, y, adj, _, model = tiny_problem()
    train = torch.tensor([0, 2, 3])
    F.nll_loss(model(x, adj)[train], y[train]).backward()
    weight_grads, _ = hand_gradients(x, y, train, adj, adj.to_dense().t(), model)
    for weight, expected in zip(model.weights, weight_grads):
        torch.testing.assert_close(weight.grad, expected, atol=1e-12, rtol=1e-12)


def test_cached_transpose_matmul_matches_torch_sparse():
    x, _, adj, _, model = tiny_problem()
    outputs, grads = [], []
    for features, propagation in ((x.to_sparse_csr(), adj), (SparseOperand.of(x.to_sparse()), SparseOperand.of(adj))):
        model.zero_grad()
        out = model(features, propagation)
        out[:, 0].sum().backward()
        outputs.append(out.detach())
        grads.append([w.grad.clone() for w in model.weights])
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-12, rtol=0)
    for first, second in zip(*grads):
        torch.testing.assert_close(first, second, atol=1e-12, rtol=0)


def test_gradient_fix_before_backward_is_refused():
    x, _, adj, balanced, model = tiny_problem()
    with pytest.raises(GradientFixError, match="loss.backward"):
        model.balance_gradients_(balanced.to_sparse_csr())
    with torch.no_grad():
        model(x, adj)
    with pytest.raises(GradientFixError):
        model.balance_gradients_(balanced.to_sparse_csr())


def test_bias_on_a_hand_made_graph():
    # Raw degrees (no self-loops): node 0: 2, 1: 2, 2: 3, 3: 2, 4: 1.
    degree = raw_degree(EDGE_INDEX, NUM_NODES)
    assert degree.tolist() == [2, 2, 3, 2, 1]
    log_probs = torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.75], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    labels = torch.tensor([0, 1, 1, 0, 1])
    test = torch.tensor([0, 1, 2, 4])  # node 3 is not evaluated
    loss = F.nll_loss(log_probs[test], labels[test], reduction="none")
    groups = {2: (-math.log(0.5) - math.log(0.75)) / 2, 3: -math.log(0.1), 1: -math.log(0.4)}
    assert rawls_bias(loss, degree[test]) == pytest.approx(statistics.variance(groups.values()), abs=1e-6)
    # By hand: group means 0.490415 (degree 2), 2.302585 (3), 0.916291 (1); their sample variance:
    assert rawls_bias(loss, degree[test]) == pytest.approx(0.897857, abs=1e-6)


def test_split_follows_the_protocol():
    generator = torch.Generator().manual_seed(1)
    y = torch.randint(0, 4, (2000,), generator=generator)
    split = class_balanced_split(y, 20, 500, 1000, seed=1684992425)
    assert torch.bincount(y[split.train], minlength=4).tolist() == [20] * 4
    assert (split.val.numel(), split.test.numel()) == (500, 1000)
    every = torch.cat([split.train, split.val, split.test])
    assert every.unique().numel() == every.numel() == 80 + 1500
    again = class_balanced_split(y, 20, 500, 1000, seed=1684992425)
    assert torch.equal(again.test, split.test)
    with pytest.raises(ProtocolError, match="lower num_val or num_test"):
        class_balanced_split(y, 20, 1500, 1000, seed=0)


def test_propagation_matrices():
    config = NodeClassificationConfig()
    gcn = build_propagation("gcn", EDGE_INDEX, NUM_NODES, config)
    graph = build_propagation("rawls_graph", EDGE_INDEX, NUM_NODES, config)
    grad = build_propagation("rawls_grad", EDGE_INDEX, NUM_NODES, config)
    a_hat = gcn.forward.matrix.to_dense()
    with_loops = torch.eye(NUM_NODES)
    with_loops[EDGE_INDEX[0], EDGE_INDEX[1]] = 1
    d = with_loops.sum(1).rsqrt()
    torch.testing.assert_close(a_hat, d[:, None] * with_loops * d[None, :])
    assert gcn.gradient is None and graph.gradient is None
    torch.testing.assert_close(grad.forward.matrix.to_dense(), a_hat)
    for balanced in (graph.forward.matrix.to_dense(), grad.gradient.to_dense()):
        assert (balanced.sum(0) - 1).abs().max() <= 1e-2 and (balanced.sum(1) - 1).abs().max() <= 1e-2
    with pytest.raises(ProtocolError, match="unknown method"):
        build_propagation("gat", EDGE_INDEX, NUM_NODES, config)


def test_short_training_run_on_the_cora_slice(cora_slice):
    data = load_npz_graph(cora_slice)
    config = NodeClassificationConfig(epochs=30, seeds=(0,))
    gcn, graph = (run_protocol(data, method, config).runs[0] for method in ("gcn", "rawls_graph"))
    # Measured on the slice (1,000 test nodes, so 0.1 point per node; the tolerance allows a few flipped nodes).
    assert gcn.accuracy == pytest.approx(79.8, abs=0.5) and graph.accuracy == pytest.approx(75.5, abs=0.5)
    assert gcn.bias == pytest.approx(1.2030, rel=0.02) and graph.bias == pytest.approx(0.2611, rel=0.02)
    # The balanced propagation flattens the loss across degree groups.
    assert graph.bias < 0.5 * gcn.bias
    split = class_balanced_split(data.y, 20, 500, 1000, config.split_seed)
    assert set(gcn.group_loss) == set(raw_degree(data.edge_index, data.num_nodes)[split.test].tolist())
    # Pinned: the paper's split seed with the authors' draw order on the slice's 1,700 nodes.
    assert split.train[:4].tolist() == [1597, 1646, 1594, 1404] and split.test[:4].tolist() == [393, 62, 842, 420]
    assert (int(split.val.sum()), int(split.test.sum())) == (427371, 846482)


def _have_cora_ml() -> bool:
    try:
        npz_path("cora_ml", SHARED_NPZ)
    except NpzGraphError:
        return False
    return True


@pytest.mark.skipif(not _have_cora_ml(), reason="full-size Cora-ML figures: shared cora_ml.npz not found")
def test_short_training_run_on_cora_ml():
    data = load_npz_graph("cora_ml", folder=SHARED_NPZ)
    config = NodeClassificationConfig(epochs=30, seeds=(0,))
    gcn, graph = (run_protocol(data, method, config).runs[0] for method in ("gcn", "rawls_graph"))
    assert gcn.accuracy > 75.0 and graph.accuracy > 72.0
    # The balanced propagation flattens the loss across degree groups.
    assert graph.bias < 0.5 * gcn.bias
    split = class_balanced_split(data.y, 20, 500, 1000, config.split_seed)
    assert set(gcn.group_loss) == set(raw_degree(data.edge_index, data.num_nodes)[split.test].tolist())
    # Pinned: the paper's split seed with the authors' draw order (this split reproduces their GCN figures).
    assert split.train[:4].tolist() == [2757, 1641, 24, 2631] and split.test[:4].tolist() == [2508, 1720, 510, 182]
    assert (int(split.val.sum()), int(split.test.sum())) == (736755, 1494447)
