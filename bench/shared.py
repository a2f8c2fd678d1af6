"""Where the public development data and its scorers are (``datasets/``, ``eval/``), read in place.

``KUBESTACK_SHARED`` when set; else ``shared/`` beside the checkout (``../shared`` from the project root, where
the scorers are run from); else ``/work/shared``, this workplace's copy, for a checkout cloned elsewhere (a CI
clone in a temporary folder). Nothing here depends on the held-out parts of the benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The first candidate that holds ``datasets/``, else the first candidate (so a message can name it)."""
    candidates = [Path(os.environ["KUBESTACK_SHARED"])] if os.environ.get("KUBESTACK_SHARED") else []
    candidates += [ROOT.parent / "shared", Path("/work/shared")]
    return next((c for c in candidates if (c / "datasets").is_dir()), candidates[0])


SHARED = shared_dir()
