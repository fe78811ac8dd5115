"""One command that checks the course's GPU path and measures it: ``python -m benchmarks.gpu_check``.

Run it on a machine with a CUDA GPU (a few minutes on one GPU). It checks and measures what differs on
CUDA from the CPU runs the course is tested with, prints one table and exits non-zero when a check fails:

- device, torch and CUDA versions, bfloat16 support
- training: the same model, the same first batches of the course's training split, ``--steps`` AdamW steps
  in float32 and in bfloat16 autocast (``helpers.config.autocast``, the path ``train`` takes on CUDA); the
  loss of the last steps must agree within ``--tolerance``; supervised tokens/s and peak memory
  (``torch.cuda.max_memory_allocated``) for each
- batched generation with the KV cache (``helpers.generation.generate``): new tokens/s, peak memory, and
  that the cache lives on the GPU
- data parallel with more than one GPU: ``torchrun -m helpers finetune`` over every GPU (NCCL) against one
  process with the same global batch; the validation losses must agree
- ``--full-run``: the course's full fine-tuning (``helpers.course.finetune`` with the default settings)
  timed end to end, into a temporary folder

``--dry-run`` (or ``--allow-cpu``) runs the same on a CPU (bfloat16 through CPU autocast) as a smoke
test; its numbers are not GPU numbers. ``tests/test_gpu_check.py`` runs it that way on the tiny model.

    python -m benchmarks.gpu_check                       # Gemma 3 270M, 20 steps, 32 prompts
    python -m benchmarks.gpu_check --full-run            # plus the course's full fine-tuning, timed
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import print_table
from helpers.config import autocast, pick_device, set_seed, versions
from helpers.course import build_loaders, finetune, load_splits
from helpers.data import format_prompt
from helpers.generation import generate
from helpers.registry import load_model, load_tokenizer
from helpers.training import FinetuneSettings, epoch_batches, set_trainable, supervised_loss


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux: the process's peak


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bf16_context(device: torch.device):
    """The course's autocast on CUDA; CPU autocast to bfloat16 for a smoke run elsewhere."""
    return autocast(device) if device.type == "cuda" else torch.autocast("cpu", dtype=torch.bfloat16)


def train_steps(model, batches, device, bf16: bool, lr: float) -> dict:
    """AdamW steps on ``batches``; the losses, supervised tokens/s and peak memory."""
    trainable = set_trainable(model, freeze_embeddings=True)
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.1)
    model.train()
    reset_peak(device)
    losses, tokens, start = [], 0, None
    for i, (inputs, targets) in enumerate(batches):
        if i == 1:  # the first step allocates: time from the second
            sync(device)
            start = time.perf_counter()
        inputs, targets = inputs.to(device), targets.to(device)
        with bf16_context(device) if bf16 else torch.autocast(device.type, enabled=False):
            loss = supervised_loss(model, inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += int((targets != -100).sum()) if i >= 1 else 0
    sync(device)
    seconds = time.perf_counter() - start if start is not None else float("nan")
    return {"losses": losses, "tokens/s": tokens / seconds if seconds else float("nan"),
            "peak MB": peak_mb(device)}


def data_parallel_check(gpus: int) -> tuple[str, bool, str]:
    """``torchrun --nproc_per_node=<gpus> -m helpers finetune`` (tiny model, NCCL) against one process."""
    histories, seconds = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for n in (1, gpus):
            command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}", "-m",
                       "helpers", "finetune", "--model", "tiny-gpt", "--fast", "--batch-size", str(4 * gpus),
                       "--max-steps", "6", "--no-test-responses", "--out", f"{folder}/{n}"]
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
            seconds[n] = time.perf_counter() - start
            if done.returncode != 0:
                failure = f"{n} process(es) failed: {done.stderr[-500:]}"
                return "data parallel (torchrun, NCCL)", False, failure
            histories[n] = json.loads(Path(f"{folder}/{n}/tiny-gpt-history.json").read_text())["rows"]
    gap = max(abs(a["val_loss"] - b["val_loss"]) for a, b in zip(histories[1], histories[gpus]))
    return ("data parallel (torchrun, NCCL)", gap < 1e-3,
            f"{gpus} processes vs 1, same global batch: largest validation-loss gap {gap:.1e} "
            f"({seconds[gpus]:.0f} s vs {seconds[1]:.0f} s with start-up)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--steps", type=int, default=20, help="training steps per precision")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=32, help="test prompts generated in one batch")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="largest allowed |bf16 - fp32| of the mean loss over the last 3 steps")
    parser.add_argument("--full-run", action="store_true", help="also time the course's full fine-tuning")
    parser.add_argument("--allow-cpu", "--dry-run", dest="allow_cpu", action="store_true",
                        help="smoke-run on a CPU (not GPU numbers)")
    args = parser.parse_args(argv)

    device = pick_device()
    if device.type != "cuda" and not args.allow_cpu:
        print(f"No CUDA device (found {device}); this check is for a GPU. --allow-cpu smoke-runs it here.",
              file=sys.stderr)
        return 2
    rows, failed = [], []

    def report(check, ok, detail):
        rows.append({"check": check, "result": "ok" if ok is True else ("FAIL" if ok is False else ok),
                     "detail": detail})
        if ok is False:
            failed.append(check)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    bf16_ok = torch.cuda.is_bf16_supported() if device.type == "cuda" else True
    report("device", True, f"{device} ({name}), torch {torch.__version__}, CUDA {torch.version.cuda}, "
                           f"bf16 {'yes' if bf16_ok else 'no'}; {versions()}")

    settings = FinetuneSettings(model=args.model, batch_size=args.batch_size)
    set_seed(settings.seed)
    loaders = build_loaders(load_splits(settings, verbose=False), load_tokenizer(args.model), settings)
    batches = [b for _, (_, b) in zip(range(args.steps), epoch_batches(loaders.train, settings.seed, 0))]
    model, tokenizer = load_model(args.model, device=device)
    start_state = copy.deepcopy(model.state_dict())
    fp32 = train_steps(model, batches, device, bf16=False, lr=settings.lr)
    model.load_state_dict(start_state)
    bf16 = train_steps(model, batches, device, bf16=True, lr=settings.lr)
    finite = all(math.isfinite(x) for x in fp32["losses"] + bf16["losses"])
    tail = min(3, len(batches))
    gap = abs(sum(bf16["losses"][-tail:]) - sum(fp32["losses"][-tail:])) / tail
    report("training float32", finite, f"{len(batches)} steps, loss {fp32['losses'][0]:.3f} -> "
           f"{fp32['losses'][-1]:.3f}, {fp32['tokens/s']:,.0f} supervised tok/s, "
           f"peak {fp32['peak MB']:,.0f} MB")
    report("training bf16 autocast", finite and gap <= args.tolerance,
           f"loss {bf16['losses'][0]:.3f} -> {bf16['losses'][-1]:.3f} (last {tail} steps differ by {gap:.4f} "
           f"from float32, allowed {args.tolerance}), {bf16['tokens/s']:,.0f} tok/s "
           f"({bf16['tokens/s'] / fp32['tokens/s']:.2f}x float32), peak {bf16['peak MB']:,.0f} MB")

    model.load_state_dict(start_state)
    model.eval()
    test_records = load_splits(settings, verbose=False).test[: args.prompts]
    prompts = [format_prompt(r, settings.style) for r in test_records]
    reset_peak(device)
    sync(device)
    start = time.perf_counter()
    _, ids = generate(model, tokenizer, prompts, max_new_tokens=args.new_tokens, batch_size=len(prompts),
                      return_ids=True)
    sync(device)
    seconds = time.perf_counter() - start
    new_tokens = sum(map(len, ids))
    cache = model.new_cache()
    with torch.no_grad():
        model(torch.tensor([tokenizer.encode(prompts[0])], device=device), cache=cache)
    report("batched generation", new_tokens > 0 and cache.keys[0].device.type == device.type,
           f"{len(prompts)} prompts, {new_tokens} new tokens, {new_tokens / seconds:,.1f} tok/s, peak "
           f"{peak_mb(device):,.0f} MB; KV cache on {cache.keys[0].device}")

    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if gpus > 1:
        report(*data_parallel_check(gpus))
    else:
        report("data parallel (torchrun, NCCL)", "not run", f"{gpus} GPU(s): needs at least 2")

    if args.full_run:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            info = finetune(FinetuneSettings(model=args.model), folder=folder, device=device, progress=False,
                            test_responses=False)
            report("full fine-tuning run", math.isfinite(info["best_val_loss"]),
                   f"{info['steps']} steps in {time.perf_counter() - start:,.0f} s (training "
                   f"{info['train_seconds']:,.0f} s), best val loss {info['best_val_loss']:.3f} at step "
                   f"{info['best_step']}")
    print_table(rows, ["check", "result", "detail"])
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
