"""Node classification: the RawlsGCN protocol, shaDow against full-graph GCNs, and the gnn-benchmark loader.
"""
