"""RawlsGCN: a two-layer GCN on a given propagation matrix, with the Grad variant's weight-gradient fix.

GCN and RawlsGCN-Graph differ only in the matrix passed in; RawlsGCN-Grad adds :meth:`RawlsGCN.balance_gradients_`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter, ParameterList


class GradientFixError(RuntimeError):
    """RawlsGCN-Grad's gradient fix was asked for before a training forward and backward pass."""


class SparseOperand(NamedTuple):
    """A sparse CSR matrix and its transpose, built once.

    The backward pass of ``matrix @ dense`` needs ``matrixᵀ``; ``torch.sparse.mm`` rebuilds it (a sort)
    on every step, which is half the time of a full-batch GCN step on Cora-ML. Here it is made once.
    """

    matrix: Tensor
    transpose: Tensor

    @classmethod
    def of(cls, matrix: Tensor) -> SparseOperand:
        """Wraps a sparse (COO or CSR) matrix, storing both it and its transpose as CSR."""
        csr = matrix.to_sparse_csr() if matrix.layout != torch.sparse_csr else matrix
        return cls(csr, csr.to_sparse_coo().t().coalesce().to_sparse_csr())


Operand = Tensor | SparseOperand


class _CachedTransposeMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, matrix: Tensor, transpose: Tensor, dense: Tensor) -> Tensor:  # type: ignore[override]
        ctx.transpose = transpose
        return torch.sparse.mm(matrix, dense)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        return None, None, torch.sparse.mm(ctx.transpose, grad_out)


def matmul(a: Operand, dense: Tensor) -> Tensor:
    """``a @ dense`` for a dense tensor, a sparse tensor, or a :class:`SparseOperand` (cached-transpose backward)."""
    if isinstance(a, SparseOperand):
        return _CachedTransposeMatmul.apply(a.matrix, a.transpose, dense)
    return torch.sparse.mm(a, dense) if a.layout != torch.strided else a @ dense


def transpose_matmul(a: Operand, dense: Tensor) -> Tensor:
    """``aᵀ @ dense``, using the stored transpose of a :class:`SparseOperand`."""
    return torch.sparse.mm(a.transpose, dense) if isinstance(a, SparseOperand) else a.t() @ dense


class RawlsGCN(torch.nn.Module):
    r"""The two-layer GCN of `"RawlsGCN: Towards Rawlsian Difference Principle on Graph Convolutional
    Network" <https://arxiv.org/abs/2202.13547>`_ (Kang et al., WWW 2022), on a propagation matrix
    that is passed in.

    .. math::
        \mathbf{Z}^{(1)} &= \mathbf{A}\mathbf{X}\mathbf{W}^{(1)} + \mathbf{b}^{(1)}, \qquad
        \mathbf{H}^{(1)} = \mathrm{dropout}(\mathrm{ReLU}(\mathbf{Z}^{(1)})),

        \mathbf{Z}^{(2)} &= \mathbf{A}\mathbf{H}^{(1)}\mathbf{W}^{(2)} + \mathbf{b}^{(2)}, \qquad
        \hat{\mathbf{Y}} = \mathrm{log\_softmax}(\mathbf{Z}^{(2)})

    with :math:`\mathbf{A} = \hat{\mathbf{A}} = \tilde{\mathbf{D}}^{-1/2}(\mathbf{A}_0+\mathbf{I})
    \tilde{\mathbf{D}}^{-1/2}` for GCN and RawlsGCN-Grad, and its Sinkhorn–Knopp balancing
    :math:`\mathbf{P} = \mathrm{SK}(\hat{\mathbf{A}})` for RawlsGCN-Graph. For RawlsGCN-Grad, call
    :meth:`balance_gradients_` with :math:`\mathbf{P}` after ``loss.backward()``; it sets
    :math:`\nabla_{\mathbf{W}^{(l)}} := \mathbf{H}^{(l-1)\top}(\mathbf{P}\,\mathbf{G}^{(l)})` with
    :math:`\mathbf{G}^{(l)} = \partial J / \partial \mathbf{Z}^{(l)}` and
    :math:`\mathbf{H}^{(0)} = \mathbf{X}`, and leaves the bias gradients :math:`\mathbf{1}^\top\mathbf{G}^{(l)}`
    as they are. Weights start uniform in :math:`\pm 1/\sqrt{\text{out}}` as in the authors' code.

    Args:
        in_channels (int): number of input features.
        out_channels (int): number of classes.
        hidden_channels (int, optional): hidden units. (default: :obj:`64`)
        dropout (float, optional): dropout on the hidden layer. (default: :obj:`0.5`)

    Shapes:
        - **input:** node features :math:`(N, F)` dense, sparse, or a :class:`SparseOperand`;
          propagation matrix :math:`(N, N)` sparse or a :class:`SparseOperand` (fastest)
        - **output:** log-probabilities :math:`(N, C)`
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 64, dropout: float = 0.5) -> None:
        super().__init__()
        self.dropout = dropout
        sizes = [(in_channels, hidden_channels), (hidden_channels, out_channels)]
        self.weights = ParameterList([Parameter(torch.empty(i, o)) for i, o in sizes])
        self.biases = ParameterList([Parameter(torch.empty(o)) for _, o in sizes])
        self._layer_inputs: list[Tensor] = []
        self._pre_activations: list[Tensor] = []
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform ±1/sqrt(out) for weights and biases, drawn layer by layer (weight, then bias)."""
        for weight, bias in zip(self.weights, self.biases):
            bound = 1.0 / math.sqrt(weight.size(1))
            torch.nn.init.uniform_(weight, -bound, bound)
            torch.nn.init.uniform_(bias, -bound, bound)

    def forward(self, x: Operand, adj: Operand) -> Tensor:
        """Log-probabilities per node; remembers each layer's input and pre-activation for the Grad fix."""
        self._layer_inputs, self._pre_activations = [], []
        h = x
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            z = matmul(adj, matmul(h, weight)) + bias
            if z.requires_grad:
                z.retain_grad()
            self._layer_inputs.append(h)
            self._pre_activations.append(z)
            if layer + 1 < len(self.weights):
                h = F.dropout(F.relu(z), self.dropout, training=self.training)
        return F.log_softmax(z, dim=1)

    @torch.no_grad()
    def balance_gradients_(self, balanced_adj: Operand) -> None:
        r"""RawlsGCN-Grad: replaces each weight gradient by :math:`\mathbf{H}^{(l-1)\top}(\mathbf{P}\mathbf{G}^{(l)})`.

        Call after ``loss.backward()`` and before ``optimizer.step()``. The dropout mask of the last
        forward pass stays inside :math:`\mathbf{H}^{(1)}`, and the optimizer's weight decay still
        applies on top of the replaced gradient, as in the authors' trainer.

        Args:
            balanced_adj (torch.Tensor or SparseOperand): :math:`\mathbf{P}`, sparse :math:`(N, N)`.
        """
        if not self._pre_activations or any(z.grad is None for z in self._pre_activations):
            raise GradientFixError(
                "balance_gradients_ needs the gradients of the last forward pass: run model(x, adj) in "
                "training mode and loss.backward() first."
            )
        for weight, h, z in zip(self.weights, self._layer_inputs, self._pre_activations):
            # The paper multiplies by P, not Pᵀ (they agree up to the Sinkhorn–Knopp tolerance).
            weight.grad = transpose_matmul(h, matmul(balanced_adj, z.grad))
