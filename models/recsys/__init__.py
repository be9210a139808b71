"""Recommender families behind one contract: LightGCN and its Rawls propagation, shaDow, the graph-free student,
baselines and graph filters, the compatibility losses and serving.
"""
