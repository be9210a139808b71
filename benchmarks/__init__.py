"""Benchmarks: ``python -m benchmarks.<name>`` scripts that print comparison tables on real data."""
import models  # noqa: F401  (sets OMP_WAIT_POLICY before any benchmark imports torch)
