"""Where the shared, read-only data sets live.

Code never copies data sets into the repository; it finds them through GRAPHREC_SHARED_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The shared folder: env GRAPHREC_SHARED_DIR, else `<repo root>/../shared`."""
    env = os.environ.get("GRAPHREC_SHARED_DIR")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared"
