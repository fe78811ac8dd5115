"""What a training step costs: full fine-tuning against LoRA at two ranks, same batches (notebook 08).

Each arm runs in its own Python process, so its peak memory is its own (``ru_maxrss`` on a CPU,
``torch.cuda.max_memory_allocated`` on a GPU): load the model, build the course's training batches
(``helpers.course.build_loaders`` with the course's settings), then ``--steps`` optimizer steps of forward,
backward, clip and AdamW. The arms:

- **full**: the course's full-mode setting (every weight but the embedding/head trained, notebook 04)
- **r8**, **r16**, ...: ``helpers.lora.add_lora`` on all linear layers of every block, nothing else trained

Reported per arm: trainable parameters, AdamW state (two tensors per trained parameter), peak memory and
the memory above the loaded model, median seconds per step (the first step is left out: it allocates), and
each ratio to the full arm. ``--json PATH`` writes the rows for notebook 08.

    python -m benchmarks lora                                  # gemma-3-270m: full, r8, r16; 4 steps each
    python -m benchmarks lora --model tiny-gpt --steps 3 --arms full,r4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import machine_info, print_table

DESCRIPTION = "seconds per step, peak memory, optimizer state: full fine-tuning vs LoRA r8/r16"
REPO_ROOT = Path(__file__).resolve().parents[1]


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def optimizer_state_mb(optimizer: torch.optim.Optimizer) -> float:
    return sum(t.numel() * t.element_size() for state in optimizer.state.values() for t in state.values()
               if torch.is_tensor(t)) / 2**20


def one_arm(arm: str, model_name: str, steps: int, batch_size: int) -> dict:
    """Run one arm in this process and return its row."""
    from helpers.config import autocast, pick_device, set_seed
    from helpers.course import build_loaders, load_splits
    from helpers.lora import add_lora
    from helpers.registry import load_model, load_tokenizer
    from helpers.training import FinetuneSettings, epoch_batches, set_trainable, supervised_loss

    device = pick_device()
    settings = FinetuneSettings(model=model_name, batch_size=batch_size)
    set_seed(settings.seed)
    loaders = build_loaders(load_splits(settings, verbose=False), load_tokenizer(model_name), settings)
    model, _ = load_model(model_name, device=device)
    if arm != "full":
        add_lora(model, rank=int(arm.removeprefix("r")), targets="all")
    trainable = set_trainable(model, freeze_embeddings=settings.freeze_embeddings)
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    loaded_mb = peak_memory_mb(device)
    model.train()
    seconds = []
    batches = epoch_batches(loaders.train, settings.seed, epoch=0)
    for _, (_, (inputs, targets)) in zip(range(steps + 1), batches):  # the same first batches in every arm
        inputs, targets = inputs.to(device), targets.to(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with autocast(device):
            loss = supervised_loss(model, inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, settings.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    peak = peak_memory_mb(device)
    return {"arm": arm, "trainable": sum(p.numel() for p in trainable),
            "optimizer MB": round(optimizer_state_mb(optimizer), 1), "peak MB": round(peak, 1),
            "above model MB": round(peak - loaded_mb, 1), "s/step": round(statistics.median(seconds[1:]), 3),
            "device": str(device)}


def measure(arms: list[str], model_name: str = "gemma-3-270m", steps: int = 4,
            batch_size: int = 8) -> list[dict]:
    """Every arm in a fresh process; rows with ratios to the first arm (``full``)."""
    rows = []
    for arm in arms:
        out = subprocess.run([sys.executable, "-m", "benchmarks", "lora", "--one", arm, "--model", model_name,
                              "--steps", str(steps), "--batch-size", str(batch_size)],
                             cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ})
        if out.returncode != 0:
            raise RuntimeError(f"benchmark arm {arm} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    reference = rows[0]
    for row in rows:
        row["trainable %"] = round(100 * row["trainable"] / reference["trainable"], 2)
        row["step ratio"] = round(reference["s/step"] / row["s/step"], 2)  # > 1: faster than full
        row["memory ratio"] = round(row["above model MB"] / max(reference["above model MB"], 1e-9), 2)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks lora", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--arms", default="full,r8,r16", help="comma-separated: full, rN (LoRA rank N)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per arm (after one warm-up step)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one arm, print JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_arm(args.one, args.model, args.steps, args.batch_size)))
        return
    print(machine_info("cuda" if torch.cuda.is_available() else "cpu"))
    rows = measure(args.arms.split(","), args.model, args.steps, args.batch_size)
    print_table(rows, ["arm", "trainable", "trainable %", "optimizer MB", "peak MB", "above model MB",
                       "memory ratio", "s/step", "step ratio"])
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
