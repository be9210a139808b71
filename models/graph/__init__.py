"""Graph tensors and operators: the bipartite user–item graph, sparse products, propagation matrices, Sinkhorn
balancing, personalized PageRank, shaDow scopes and model, link heuristics and PPR audiences.
"""
