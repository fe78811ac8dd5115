"""New tokens per second: the course's batched KV-cache generation against the book's decoder.

The reference is the book's approach, written here faithfully: one prompt at a time (batch 1), no KV
cache, the whole context recomputed every step, full logits at every position, then the last row taken:

    for _ in range(max_new_tokens):
        logits = model(idx[:, -context_size:])[:, -1]
        idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)

Both run greedy decoding on the same GPT-2-124M-shaped model (random weights, fp32) and the
Alpaca-formatted prompts of the course's test split, in one run, for exactly ``--max-new-tokens`` tokens
each (end-of-text does not stop either decoder, so both produce the same number of tokens). The reference
is slow, so it runs on ``--reference-prompts`` prompts spread evenly over the set; tokens per second is a
rate, so the two are comparable. A check confirms both decoders produce the same tokens.

Then greedy tokens per second of Gemma 3 270M (real weights) at batch 1 and batch 16.

What limits the ratio: the book's decoder does far more FLOPs (the whole context and full logits for
every token) but in large matrix products that run near the machine's matmul peak (high MFU). Batched
decoding does only the needed FLOPs, but each step multiplies just ``batch`` rows by every weight matrix, so
it is bound by reading the weights from memory (lower MFU); the prefill of the prompts is a fixed cost.
A larger ``--batch-size``, longer answers or longer prompts raise the ratio; shorter ones lower it.

    python -m benchmarks generation                                   # defaults below
    python -m benchmarks generation --prompts 4 --max-new-tokens 8 --reference-prompts 1 --skip-gemma
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import Timer, forward_flops, machine_info, measure_matmul_gflops, print_table
from helpers.config import pick_device, set_seed
from helpers.generation import generate
from helpers.models import GPTModel, gpt2_config
from helpers.tokenizers import get_tokenizer

DESCRIPTION = "new tokens/s: batched KV-cache generation vs the book's batch-1 no-cache decoder; Gemma 3 270M"


def book_generate(model, idx: torch.Tensor, max_new_tokens: int, context_size: int) -> torch.Tensor:
    """The book's greedy decoder: no cache, whole context recomputed, full logits every step. (1, T + new)"""
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]  # (1, T)
        with torch.no_grad():
            logits = model(idx_cond)  # (1, T, V): logits at every position
        logits = logits[:, -1, :]  # (1, V)
        idx_next = torch.argmax(logits, dim=-1, keepdim=True)  # (1, 1)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


class _NoEndOfText:
    """The tokenizer with an end-of-text id no token has, so every row runs ``max_new_tokens`` steps."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self.eos_id = -1

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


FALLBACK_RECORDS = [  # used only while data/course-instructions.json is missing
    {"instruction": "Rewrite the sentence in passive voice.", "input": "The chef cooked a delicious meal."},
    {"instruction": "Name three primary colors.", "input": ""},
    {"instruction": "Convert 45 kilometers to meters.", "input": ""},
    {"instruction": "Give a synonym for the word.", "input": "rapid"},
    {"instruction": "Summarize the text in one sentence.",
     "input": "The library will close early on Friday because the heating system is being repaired. "
              "Books can still be returned through the slot at the front door."},
    {"instruction": "What is the plural of 'mouse'?", "input": ""},
    {"instruction": "Classify the animal as mammal, bird or fish.", "input": "salmon"},
    {"instruction": "Write a short haiku about autumn.", "input": ""},
]


def test_prompts(n: int | None) -> tuple[list[str], str]:
    """Alpaca-formatted prompts (instruction + input, no response) of the course's test split."""
    from helpers.data import DataFileMissing, format_prompt, load_course_data, split_records

    try:
        records, source = split_records(load_course_data(), verbose=False).test, "the course's test split"
    except DataFileMissing as error:
        records, source = FALLBACK_RECORDS, f"FALLBACK prompts in this file ({error.__class__.__name__})"
    prompts = [format_prompt(record) for record in records]
    return (prompts if n is None else prompts[:n]), f"{source}: {len(records)} records"


def spread(items: list, k: int) -> list:
    """``k`` items spread evenly over ``items`` (first and last included)."""
    if k >= len(items):
        return list(items)
    if k == 1:
        return [items[len(items) // 2]]
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def run_gpt2(args, prompts: list[str], device: torch.device, peak_gflops: float) -> dict:
    tokenizer = get_tokenizer("gpt2")
    set_seed(123)
    model = GPTModel(gpt2_config("gpt2-small-124m")).to(device).eval()
    context = model.cfg["context_length"]
    lengths = [len(tokenizer.encode(p)) for p in prompts]
    print(f"GPT-2 124M shape, random weights, fp32; {len(prompts)} prompts of {min(lengths)}-{max(lengths)} "
          f"tokens (mean {sum(lengths) / len(lengths):.0f}); {args.max_new_tokens} new tokens each")
    no_stop = _NoEndOfText(tokenizer)
    generate(model, no_stop, prompts[:2], max_new_tokens=2, device=device)  # warm-up

    rows = []
    M = args.max_new_tokens

    def course_flops(prompt_lengths: list[int]) -> float:
        flops = 0.0
        for p in prompt_lengths:
            flops += forward_flops(model, p, (p + 1) / 2, logits_tokens=1)  # prefill, logits of the last only
            flops += sum(forward_flops(model, 1, p + s + 1, logits_tokens=1) for s in range(M - 1))
        return flops

    # Course: batched, KV cache, logits at the last position only.
    with Timer(device) as t:
        _, course_ids = generate(model, no_stop, prompts, max_new_tokens=M, batch_size=args.batch_size,
                                 return_ids=True)
    tokens = sum(len(ids) for ids in course_ids)
    course_rate = tokens / t.seconds
    rows.append({"decoder": f"course, KV cache, batch {args.batch_size}", "prompts": len(prompts),
                 "new tokens": tokens, "seconds": f"{t.seconds:.1f}", "tokens/s": f"{course_rate:.1f}",
                 "MFU": f"{course_flops(lengths) / t.seconds / 1e9 / peak_gflops:.1%}"})

    # Reference: the book's decoder on a spread of the same prompts.
    chosen = spread(list(range(len(prompts))), args.reference_prompts)
    ref_tokens, ref_seconds, ref_flops, same = 0, 0.0, 0.0, 0
    for i in chosen:
        idx = torch.tensor([tokenizer.encode(prompts[i])], device=device)
        with Timer(device) as t:
            out = book_generate(model, idx, M, context)
        ref_seconds += t.seconds
        new = out[0, idx.shape[1]:].tolist()
        ref_tokens += len(new)
        same += new == course_ids[i]
        ref_flops += sum(forward_flops(model, min(lengths[i] + s, context),
                                       (min(lengths[i] + s, context) + 1) / 2)
                         for s in range(M))
    ref_rate = ref_tokens / ref_seconds
    rows.append({"decoder": "book: batch 1, no cache, full logits", "prompts": len(chosen),
                 "new tokens": ref_tokens, "seconds": f"{ref_seconds:.1f}", "tokens/s": f"{ref_rate:.2f}",
                 "MFU": f"{ref_flops / ref_seconds / 1e9 / peak_gflops:.1%}"})

    # Course at batch 1 on the reference's prompts: how much comes from the cache alone.
    subset = [prompts[i] for i in chosen]
    with Timer(device) as t:
        _, ids_b1 = generate(model, no_stop, subset, max_new_tokens=M, batch_size=1, return_ids=True)
    b1_rate = sum(len(ids) for ids in ids_b1) / t.seconds
    rows.append({"decoder": "course, KV cache, batch 1", "prompts": len(chosen),
                 "new tokens": sum(len(ids) for ids in ids_b1), "seconds": f"{t.seconds:.1f}",
                 "tokens/s": f"{b1_rate:.1f}",
                 "MFU": f"{course_flops([lengths[i] for i in chosen]) / t.seconds / 1e9 / peak_gflops:.1%}"})

    print_table(rows, ["decoder", "prompts", "new tokens", "seconds", "tokens/s", "MFU"])
    print(f"same tokens as the book's decoder: {same}/{len(chosen)} prompts")
    print(f"ratio course (batch {args.batch_size}) / book: {course_rate / ref_rate:.1f}x   "
          f"(KV cache alone, batch 1: {b1_rate / ref_rate:.1f}x)")
    return {"course_tokens_per_s": course_rate, "book_tokens_per_s": ref_rate, "batch1_tokens_per_s": b1_rate,
            "ratio": course_rate / ref_rate, "same_tokens": f"{same}/{len(chosen)}"}


def run_gemma(args, prompts: list[str], device: torch.device) -> dict:
    try:
        from helpers.registry import load_model

        with Timer() as load:
            model, tokenizer = load_model("gemma-3-270m", device=device)
    except Exception as error:  # not installed or not landed: say so, keep the GPT-2 result
        print(f"Gemma 3 270M skipped: {type(error).__name__}: {error}")
        return {}
    model.eval()
    no_stop = _NoEndOfText(tokenizer)
    M = args.max_new_tokens
    print(f"\nGemma 3 270M (real weights), greedy, {M} new tokens per prompt; loaded in {load.seconds:.1f} s")
    generate(model, no_stop, prompts[:1], max_new_tokens=2)  # warm-up
    batch16 = (prompts * 16)[:16]
    results, rows = {}, []
    for batch_size, batch_prompts in ((1, spread(prompts, args.gemma_batch1_prompts)), (16, batch16)):
        with Timer(device) as t:
            _, ids = generate(model, no_stop, batch_prompts, max_new_tokens=M, batch_size=batch_size,
                              return_ids=True)
        tokens = sum(len(i) for i in ids)
        results[f"gemma_batch{batch_size}_tokens_per_s"] = tokens / t.seconds
        rows.append({"batch": batch_size, "prompts": len(batch_prompts), "new tokens": tokens,
                     "seconds": f"{t.seconds:.1f}", "tokens/s": f"{tokens / t.seconds:.1f}"})
    print_table(rows, ["batch", "prompts", "new tokens", "seconds", "tokens/s"])
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks generation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=32, help="test-split prompts for the course decoder")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--reference-prompts", type=int, default=4,
                        help="prompts for the (slow) book decoder")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--gemma-batch1-prompts", type=int, default=2)
    parser.add_argument("--skip-gemma", action="store_true")
    parser.add_argument("--device", default=None, help="default: CUDA, then MPS, then CPU")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); 1 is steadier on a "
                             "busy shared machine")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = pick_device(args.device)
    print(machine_info(device))
    peak = measure_matmul_gflops(device=device)
    print(f"fp32 matmul rate (1024x1024 @ 1024x1024, best of 5): {peak:.0f} GFLOP/s  (MFU is against this)")
    prompts, source = test_prompts(args.prompts)
    print(f"prompts: {source}")
    results = run_gpt2(args, prompts, device, peak)
    if not args.skip_gemma:
        results.update(run_gemma(args, prompts, device))
    results["matmul_gflops"] = peak
    return results


if __name__ == "__main__":
    main()
