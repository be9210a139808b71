"""LightGCN built from PyG's ``LightGCN`` model with a propagation that suits a fixed CSR adjacency.

The model is PyG's (`"LightGCN" <https://arxiv.org/abs/2002.02126>`_): free ID embeddings, ``K`` parameter-free
``LGConv`` layers, layer mean ``α_k = 1/(K+1)``. Only the sparse product differs: the normalized adjacency is
computed once (``normalize=False``) and its symmetric product reuses the same CSR matrix in backward.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import LGConv
from torch_geometric.nn.models import LightGCN

from models.graph.sparse import symmetric_spmm
from models.recsys.prism import prism_init_


class SymmetricLGConv(LGConv):
    r"""``LGConv`` over a pre-normalized symmetric sparse adjacency: :math:`X' = \hat{A} X`.

    Shapes:
        input: node features ``(N, F)``, ``adj`` sparse ``(N, N)`` symmetric. output: ``(N, F)``.
    """

    def __init__(self) -> None:
        super().__init__(normalize=False)

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return symmetric_spmm(adj_t, x)


def build_lightgcn(num_users: int, num_items: int, embedding_dim: int, num_layers: int, init_std: float,
                   magnitudes: Tensor | None = None) -> LightGCN:
    """PyG LightGCN over ``num_users + num_items`` nodes with symmetric-CSR convolutions.

    ``init_std`` > 0 initializes the embeddings from Normal(0, init_std) as the reference PyTorch code does;
    0 keeps PyG's Xavier initialization (the paper's). ``magnitudes`` ``(num_users + num_items,)``, users first,
    replaces both with PRISM's initialization (see models.recsys.prism): Xavier directions with these row norms.
    """
    model = LightGCN(num_users + num_items, embedding_dim, num_layers)
    model.convs = torch.nn.ModuleList(SymmetricLGConv() for _ in range(num_layers))
    if magnitudes is not None:
        prism_init_(model.embedding.weight, magnitudes)
    elif init_std > 0:
        torch.nn.init.normal_(model.embedding.weight, std=init_std)
    return model


def split_embeddings(node_emb: Tensor, num_users: int) -> tuple[Tensor, Tensor]:
    """Split homogeneous node embeddings into ``(user_emb, item_emb)``."""
    return node_emb[:num_users], node_emb[num_users:]
