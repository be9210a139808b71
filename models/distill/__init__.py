"""Graph-free students (ALGORITHMS.md §4): MLPs distilled from GNNs and link heuristics (LLP, GLNN, EHDM) for link
prediction, and feature-tower students in a recommender teacher's embedding space for serving and cold start.
"""
