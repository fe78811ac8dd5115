"""Timing helpers shared by the benchmarks, and the machine's fp32 matmul rate for model FLOP utilisation.

Absolute times drift on shared machines, so every benchmark measures its reference in the same run and
reports ratios; model FLOP utilisation (MFU) = model FLOPs per second / ``measure_matmul_gflops()``.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import torch
import torch.nn as nn


def synchronize(device: torch.device | str | None = None) -> None:
    """Wait for queued GPU work so a timer measures it (no-op on CPU)."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device is not None and device.type == "mps":
        torch.mps.synchronize()


class Timer:
    """``with Timer(device) as t: ...`` then ``t.seconds`` (synchronizes the device at both ends)."""

    def __init__(self, device: torch.device | str | None = None):
        self.device = device
        self.seconds = float("nan")

    def __enter__(self) -> Timer:
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def best_of(fn: Callable[[], object], repeats: int = 3, warmup: int = 1, device=None) -> float:
    """Fastest wall time of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        with Timer(device) as t:
            fn()
        times.append(t.seconds)
    return min(times)


def measure_matmul_gflops(size: int = 1024, repeats: int = 5, device: torch.device | str = "cpu") -> float:
    """The machine's fp32 matmul rate in GFLOP/s: best of ``repeats`` (size x size) @ (size x size) products.

    This is the practical peak that model FLOP utilisation is measured against (2 * size**3 FLOPs each).
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device)
    b = torch.randn(size, size, generator=gen).to(device)
    seconds = best_of(lambda: a @ b, repeats=repeats, warmup=2, device=device)
    return 2 * size**3 / seconds / 1e9


def matmul_weights(model: nn.Module) -> int:
    """Weights that take part in a matmul for every token: all ``nn.Linear`` weights plus the output head.

    A tied output head (Gemma 3) reuses the embedding matrix, so it is added when no Linear layer is it.
    Embedding lookups cost no FLOPs and are not counted.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    total = sum(m.weight.numel() for m in linears)
    vocab, width = model.cfg["vocab_size"], model.cfg["emb_dim"]
    if not any(m.weight.shape == (vocab, width) for m in linears):
        total += vocab * width
    return total


def attention_width(cfg: dict) -> int:
    """Total query width (n_heads * head_dim) used by the attention score and mix products."""
    return cfg["n_heads"] * cfg.get("head_dim", cfg["emb_dim"] // cfg["n_heads"])


def forward_flops(model: nn.Module, new_tokens: int, context: int, logits_tokens: int | None = None) -> float:
    """FLOPs of one forward pass over ``new_tokens`` tokens that attend to ``context`` keys on average.

    Linear layers: 2 FLOPs per weight per token; the output head runs on ``logits_tokens`` tokens
    (default: all new tokens, as the book does); attention scores and mixing: 4 * width * keys per token
    per layer.
    """
    cfg = model.cfg
    vocab, width = cfg["vocab_size"], cfg["emb_dim"]
    head = vocab * width
    logits_tokens = new_tokens if logits_tokens is None else logits_tokens
    linear = 2 * (matmul_weights(model) - head) * new_tokens + 2 * head * logits_tokens
    attention = 4 * cfg["n_layers"] * attention_width(cfg) * context * new_tokens
    return float(linear + attention)


def machine_info(device: torch.device | str = "cpu") -> str:
    """One line naming the machine, for the top of a benchmark's output."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    return (
        f"device={device.type} ({name}), cpu cores={os.cpu_count()}, torch "
        f"threads={torch.get_num_threads()}, torch {torch.__version__}"
    )


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print ``rows`` (dicts) as an aligned plain-text table with the given columns."""
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
