"""Supervised tokens per second: the course's training loop against the book's approach (notebook 04).

Both arms fine-tune the same model from the same initial weights with the same optimizer (AdamW,
lr 5e-5, weight decay 0.1) on the same records of the course's training split, one pass each:

- **book**: random batches (``RandomBatchSampler``) padded to the longest item in the batch, logits at
  every position, ``cross_entropy(..., ignore_index=-100)``:

      logits = model(inputs)                                    # (B, T, V)
      loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)

- **course**: length-grouped batches (less padding) and the output head applied only where the target is
  not -100 (``helpers.training.supervised_loss``).

Measured with instruction masking on and off, on the GPT-2-124M shape (random weights; every parameter
trained, as in the book) and on Gemma 3 270M (real weights; embedding/head frozen in both arms, the
course's full-mode setting). Supervised tokens = positions whose target is not -100: the work that teaches
the model anything; both arms see exactly the same ones. Model FLOP utilisation (MFU) counts the FLOPs each
arm performs (3 x forward: linear layers on every position, the head where it runs, attention) against
``measure_matmul_gflops()``. Peak memory (RSS) is read after the Gemma arms.

    python -m benchmarks training                     # defaults below
    python -m benchmarks training --records 16 --batch-size 4 --skip-gemma
"""

from __future__ import annotations

import argparse
import copy
import resource
import sys
import time

import torch
import torch.nn.functional as F

from benchmarks.common import forward_flops, machine_info, measure_matmul_gflops, print_table
from helpers.batching import make_loaders
from helpers.config import set_seed
from helpers.data import load_course_data, split_records
from helpers.models import GPTModel, gpt2_config
from helpers.tokenizers import get_tokenizer
from helpers.training import IGNORE_INDEX, set_trainable, supervised_loss

DESCRIPTION = "supervised tokens/s: course training loop vs the book's (padded random batches, full logits)"


def book_loss(model, inputs, targets):
    """The book's ``calc_loss_batch``: logits at every position, -100 ignored."""
    logits = model(inputs)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)


def run_arm(model, loader, loss_fn, freeze_embeddings: bool, lr: float = 5e-5) -> dict:
    """One pass over ``loader`` with AdamW; returns seconds, supervised tokens, processed positions, FLOPs."""
    params = set_trainable(model, freeze_embeddings=freeze_embeddings)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.1)
    model.train()
    seconds, supervised, positions, flops = 0.0, 0, 0, 0.0
    for inputs, targets in loader:
        start = time.perf_counter()
        loss = loss_fn(model, inputs, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds += time.perf_counter() - start
        n_sup = int((targets != IGNORE_INDEX).sum())
        logits_tokens = n_sup if loss_fn is supervised_loss else inputs.numel()
        supervised += n_sup
        positions += inputs.numel()
        flops += 3 * forward_flops(model, inputs.numel(), inputs.shape[1] / 2, logits_tokens=logits_tokens)
    return {"seconds": seconds, "supervised": supervised, "positions": positions, "flops": flops}


def compare(name, model, tokenizer, records, batch_size, freeze_embeddings, gflops) -> list[dict]:
    rows = []
    splits = (records, records[:1], records[:1])
    for mask in (True, False):
        result = {}
        for arm, grouped, loss_fn in (("book", False, book_loss), ("course", True, supervised_loss)):
            loaders = make_loaders(splits, tokenizer, batch_size=batch_size, mask_instructions=mask,
                                   grouped=grouped, seed=123, allowed_max_length=256)
            arm_model = copy.deepcopy(model)  # same initial weights for both arms
            result[arm] = run_arm(arm_model, loaders.train, loss_fn, freeze_embeddings)
            del arm_model
            print(f"  {name} masking={mask} {arm}: {result[arm]['seconds']:.1f} s", flush=True)
        assert result["book"]["supervised"] == result["course"]["supervised"], "arms saw different tokens"
        for arm in ("book", "course"):
            r = result[arm]
            rows.append({"model": name, "masking": "on" if mask else "off", "loop": arm,
                         "sup tok/s": f"{r['supervised'] / r['seconds']:.1f}",
                         "padding %": (f"{100 * (1 - r['supervised'] / r['positions']):.0f}" if not mask
                                       else ""),
                         "positions": r["positions"],
                         "MFU %": f"{100 * r['flops'] / r['seconds'] / 1e9 / gflops:.1f}",
                         "ratio": (f"{result['book']['seconds'] / result['course']['seconds']:.2f}x"
                                   if arm == "course" else "")})
    return rows


def peak_rss_gb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks training", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=32, help="training records per arm (one pass)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--skip-gemma", action="store_true", help="only the GPT-2-124M shape")
    parser.add_argument("--skip-gpt2", action="store_true", help="only Gemma 3 270M")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_info("cpu"))
    gflops = measure_matmul_gflops()
    print(f"fp32 matmul rate: {gflops:.0f} GFLOP/s")
    records = split_records(load_course_data(), seed=123, verbose=False).train[: args.records]
    rows = []
    if not args.skip_gemma:
        from helpers.registry import load_model

        model, tokenizer = load_model("gemma-3-270m", device="cpu")
        rows += compare("gemma-3-270m", model, tokenizer, records, args.batch_size, True, gflops)
        print("peak memory (RSS) after the Gemma 3 270M training steps: "
              f"{peak_rss_gb():.2f} GB (limit 16 GB)")
        del model
    if not args.skip_gpt2:
        set_seed(123)
        model = GPTModel(gpt2_config("gpt2-small-124m"))
        rows += compare("gpt2-124m shape", model, get_tokenizer("gpt2"), records,
                        args.batch_size, False, gflops)
    print(f"\n{args.records} records, batch {args.batch_size}, one pass per arm, CPU fp32; ratio = "
          "book time / course time")
    print_table(rows, ["model", "masking", "loop", "sup tok/s", "ratio", "MFU %", "positions", "padding %"])
    print(f"peak memory (RSS) of this process: {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main(sys.argv[1:])
