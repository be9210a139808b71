"""What the running process has to work with: the torch device a setting names, its share of the cores, and its
peak resident memory."""
from __future__ import annotations

import os
import resource
import sys

import torch

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """A device setting names no device this machine has."""


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when torch sees a GPU, else the CPU; ``cpu`` and ``cuda`` as named (``cuda`` only when a
    GPU is there)."""
    if name not in DEVICES:
        raise DeviceError(f"device {name!r} is not one of {DEVICES}.")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu', or install a CUDA "
                          "build of torch.")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def thread_share(processes: int) -> dict[str, str]:
    """``OMP_NUM_THREADS`` for each of ``processes`` that share this machine's cores evenly (at least one thread
    each), or nothing when the user has set it: torch and BLAS otherwise start a thread per core in every process
    and oversubscribe the cores."""
    if "OMP_NUM_THREADS" in os.environ:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
