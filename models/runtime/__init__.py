"""Running training: checkpoints, DistributedDataParallel helpers and the torchrun entry point.
"""
