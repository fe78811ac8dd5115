"""Course-wide settings: FAST mode, device, seeds and folders.

``COURSE_FAST`` is read here and nowhere else. Notebooks show it in their parameters cell:

    from helpers.config import FAST   # True when COURSE_FAST=1 (CI, `make test`)

FAST mode shrinks data, steps, tokens and judge items; it never changes the code path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
from pathlib import Path

import numpy as np
import torch

FAST: bool = os.environ.get("COURSE_FAST", "0").strip().lower() in {"1", "true", "yes", "on"}

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
RUNS_DIR = Path(os.environ.get("COURSE_RUNS_DIR", REPO_ROOT / "runs"))
CACHE_DIR = Path(os.environ.get("COURSE_CACHE_DIR", Path.home() / ".cache" / "instruction-finetuning-course"))
# Where this run's artifacts go (checkpoints, responses, plots). `make course` sets COURSE_RUN_DIR to
# runs/<timestamp>/; notebooks run by hand use runs/default/, FAST runs use runs/fast/ so a quick CI
# run never passes for a real result.
RUN_DIR = Path(os.environ.get("COURSE_RUN_DIR", RUNS_DIR / ("fast" if FAST else "default")))


# Prompts answered together by `generate`. Decoding one token reads every weight once whatever the batch, so
# wider batches cost little more per step: Gemma 3 270M on the 2-core CPU, 32 test records, 128 new tokens,
# greedy: batch 8 19 tok/s, 16 33 tok/s, 32 63 tok/s (64: +15 % on 64 records). See README, "Measured".
GENERATION_BATCH_SIZE = 32


def fast_or_full(fast_value, full_value):
    """Pick the FAST-mode value or the full-mode value, e.g. ``n_records = fast_or_full(40, None)``."""
    return fast_value if FAST else full_value


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA, then Apple MPS, then CPU; ``prefer`` (or ``COURSE_DEVICE``) overrides, e.g. ``"cpu"``."""
    prefer = prefer or os.environ.get("COURSE_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int = 123) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a random step repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def runs_dir(*parts: str) -> Path:
    """A folder under ``runs/`` (git-ignored), created on first use."""
    path = RUNS_DIR.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_path(*parts: str) -> Path:
    """A path inside this run's folder (RUN_DIR); parent folders are created, the file is not."""
    path = RUN_DIR.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(*parts: str) -> Path:
    """A folder under the user cache (converted weights, assembled GGUF files), created on first use."""
    path = CACHE_DIR.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def versions() -> dict[str, str]:
    """Versions worth printing in a notebook's setup cell."""
    import platform

    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("tiktoken", "numpy", "pandas", "matplotlib"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:  # pragma: no cover - optional
            out[name] = "not installed"
    return out


def sha256_file(path: Path, block: int = 1 << 24) -> str:
    """sha256 of a file, read in blocks (model files are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def autocast(device):
    """bfloat16 autocast on CUDA (about 2x faster, half the activations); plain float32 elsewhere."""
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
