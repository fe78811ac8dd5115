"""Tokenize, collate (pad, shift, mask), group by length and load batches (taught in notebook 02).

Public API (stable; notebook 02 and the training loop import these names):

    dataset = InstructionDataset(records, tokenizer, style="alpaca")  # pre-tokenized; dataset[i] is a dict
    inputs, targets = collate(batch, pad_id=tok.pad_id, eos_id=tok.eos_id)   # (B, T) each, torch.long
    check_batch(inputs, targets, eos_id=tok.eos_id, prompt_lengths=...)  # self-check; AssertionError if wrong
    check_loader(loader)                        # check_batch on every batch of a loader, prompt lengths known
    LengthGroupedSampler(lengths, batch_size)   # batch sampler: shuffled buckets of similar length
    RandomBatchSampler(len(dataset), batch_size)  # the book's plain random batches, same interface
    padding_fraction(loader_or_batches)         # share of (B, T) positions that are padding
    loaders = make_loaders(splits, tok)         # Loaders(train, val, test) of torch DataLoaders
    loaders.train.collate_stats                 # CollateStats: rows truncated, targets dropped, ...

What ``collate`` does to each row, for token ids ``x1 … xL`` of prompt + response (no id is hard-coded;
they come from the tokenizer's ``eos_id`` / ``pad_id``)::

    sequence  x1 x2 … xL  eos  pad … pad        (append one end-of-text, pad to the longest row + 1)
    inputs    x1 x2 … xL  eos  pad …            (sequence without its last position)
    targets   x2 …  xL  eos  -100 -100 …        (sequence shifted left by one; the first end-of-text target
                                                 is kept, every padding target after it becomes -100)

With ``mask_instructions=True`` the targets that are prompt tokens (the first ``prompt_length - 1``) also
become -100, so the loss only sees the response and the end-of-text. ``allowed_max_length`` cuts both
tensors to that many positions; a row longer than that loses its tail (and its end-of-text target) and is
counted in :class:`CollateStats`.

Toy batch of notebook 02 (pad = eos = 50256 for GPT-2)::

    collate([[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]], pad_id=50256, eos_id=50256)
    inputs  [[0, 1, 2, 3, 4], [5, 6, 50256, 50256, 50256], [7, 8, 9, 50256, 50256]]
    targets [[1, 2, 3, 4, 50256], [6, 50256, -100, -100, -100], [8, 9, 50256, -100, -100]]

Samplers and epochs: both batch samplers draw epoch ``e``'s order from ``(seed, e)`` alone. Each pass over
the loader uses the current epoch and then advances it by one; ``loader.batch_sampler.set_epoch(e)`` pins
it, so a run is repeatable whether or not the training loop calls ``set_epoch``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from helpers.data import format_prompt, format_response, get_style

# --------------------------------------------------------------------------------------------------
# Pre-tokenized dataset
# --------------------------------------------------------------------------------------------------


class InstructionDataset(Dataset):
    """Records tokenized once, up front (notebook 02).

    ``dataset[i]`` is ``{"token_ids": [...], "prompt_length": P}``: the ids of prompt + response and how
    many of them belong to the prompt. Prompt and response are tokenized separately and concatenated, so
    the boundary is exact (token ``P`` is the first response token) whatever the tokenizer merges.
    A tokenizer with a start-of-text token (Gemma's ``<bos>``, ``tokenizer.bos_id``) gets it in front of
    every prompt, exactly as :func:`helpers.generation.generate` does, so training and generation see the
    same sequences; GPT-2 has none.
    """

    def __init__(self, records: Sequence[dict], tokenizer, style: str = "alpaca"):
        self.records = list(records)
        self.tokenizer = tokenizer
        self.style = get_style(style).name
        self.examples: list[dict] = []
        start = [] if getattr(tokenizer, "bos_id", None) is None else [tokenizer.bos_id]
        for record in self.records:
            prompt_ids = start + tokenizer.encode(format_prompt(record, self.style))
            response_ids = tokenizer.encode(format_response(record, self.style))
            self.examples.append({"token_ids": prompt_ids + response_ids, "prompt_length": len(prompt_ids)})

    @property
    def lengths(self) -> list[int]:
        """Number of token ids of each example (without the end-of-text that collate appends)."""
        return [len(example["token_ids"]) for example in self.examples]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        return self.examples[index]

    def __repr__(self) -> str:
        return (f"InstructionDataset({len(self)} records, style={self.style!r}, "
                f"tokenizer={getattr(self.tokenizer, 'name', '?')!r})")


# --------------------------------------------------------------------------------------------------
# Collate
# --------------------------------------------------------------------------------------------------


@dataclass
class CollateStats:
    """Running counts kept by :func:`collate` when given ``stats=`` (notebook 02; each loader has one).

    Counted in the process that collates: with ``num_workers > 0`` each worker counts in its own copy
    and these numbers stay at zero.
    """

    batches: int = 0
    rows: int = 0
    truncated_rows: int = 0  # rows longer than allowed_max_length (they lose their tail and end-of-text)
    dropped_targets: int = 0  # real targets (tokens + end-of-text) cut off by truncation
    fully_masked_rows: int = 0  # rows with no target left (prompt longer than allowed_max_length)

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, 0)

    def __str__(self) -> str:
        return (f"{self.batches} batches, {self.rows} rows, {self.truncated_rows} truncated "
                f"({self.dropped_targets} targets dropped), {self.fully_masked_rows} fully masked")


def _token_ids_and_prompt_length(item) -> tuple[list[int], int]:
    """Accept a dataset example dict, a plain list/tuple/tensor of ids (prompt length 0)."""
    if isinstance(item, dict):
        ids, prompt_length = item["token_ids"], item.get("prompt_length", 0)
    else:
        ids, prompt_length = item, 0
    ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    if not ids:
        raise ValueError("collate got an empty item; every example needs at least one token id")
    return ids, int(prompt_length)


def collate(batch, *, pad_id: int, eos_id: int, ignore_index: int = -100,
            allowed_max_length: int | None = None,
            mask_instructions: bool = False, device="cpu", stats: CollateStats | None = None):
    """Turn a list of examples into ``(inputs, targets)``, each (B, T) ``torch.long`` (notebook 02).

    Items are :class:`InstructionDataset` examples or plain lists of ids. See the module docstring for
    what happens to each row; ``stats`` (a :class:`CollateStats`) counts truncations.
    """
    items = [_token_ids_and_prompt_length(item) for item in batch]
    width = max(len(ids) for ids, _ in items) + 1  # longest row plus its end-of-text
    input_rows, target_rows = [], []
    for ids, prompt_length in items:
        sequence = ids + [eos_id] + [pad_id] * (width - len(ids) - 1)  # (width,)
        inputs, targets = sequence[:-1], sequence[1:]  # (width - 1,) each, targets shifted by one
        n_real = len(ids)  # targets 0 … n_real-1 are real tokens ending with the end-of-text
        targets = targets[:n_real] + [ignore_index] * (len(targets) - n_real)  # padding after the first eos
        if mask_instructions:
            n_prompt_targets = max(prompt_length - 1, 0)  # targets that are prompt tokens
            targets[:n_prompt_targets] = [ignore_index] * n_prompt_targets
        if allowed_max_length is not None:
            inputs, targets = inputs[:allowed_max_length], targets[:allowed_max_length]
            if stats is not None and n_real > allowed_max_length:
                stats.truncated_rows += 1
                stats.dropped_targets += n_real - allowed_max_length
        if stats is not None and all(t == ignore_index for t in targets):
            stats.fully_masked_rows += 1
        input_rows.append(inputs)
        target_rows.append(targets)
    if stats is not None:
        stats.batches += 1
        stats.rows += len(items)
    inputs = torch.tensor(input_rows, dtype=torch.long)  # (B, T)
    targets = torch.tensor(target_rows, dtype=torch.long)  # (B, T)
    return inputs.to(device), targets.to(device)


# --------------------------------------------------------------------------------------------------
# Self-check
# --------------------------------------------------------------------------------------------------


def check_batch(inputs: torch.Tensor, targets: torch.Tensor, eos_id: int, ignore_index: int = -100,
                prompt_lengths: Sequence[int] | None = None, mask_instructions: bool | None = None,
                allowed_max_length: int | None = None) -> dict:
    """Check a batch the way :func:`collate` promises to build it; raise AssertionError naming the row.

    Taught in notebook 02. For every row:
      - wherever the target is not ``ignore_index`` it equals the next input token;
      - exactly one end-of-text target, and only ``ignore_index`` after it (padding); a row may lack the
        end-of-text only when it fills a batch exactly ``allowed_max_length`` wide (it was truncated);
      - ignored targets before the end-of-text form one block at the start (the masked prompt);
      - with ``prompt_lengths``: no response token's target is masked, and with ``mask_instructions=True``
        every prompt token's target is (``False``: none is).
    Returns a small summary dict of counts.
    """
    assert inputs.dim() == 2 and inputs.shape == targets.shape, (
        f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must both be (batch, time)")
    n_rows, width = inputs.shape
    inputs, targets = inputs.cpu().tolist(), targets.cpu().tolist()
    summary = {"rows": n_rows, "width": width, "trained_targets": 0, "masked_prompt_targets": 0,
               "padding_targets": 0, "truncated_rows": 0}
    for row, (x, y) in enumerate(zip(inputs, targets)):
        for t in range(width - 1):
            assert y[t] == ignore_index or y[t] == x[t + 1], (
                f"row {row}: target at position {t} is {y[t]} but the next input token is {x[t + 1]}; "
                "targets must be the inputs shifted left by one")
        eos_positions = [t for t, v in enumerate(y) if v == eos_id]
        truncated = (not eos_positions and allowed_max_length is not None and width == allowed_max_length
                     and (y[-1] != ignore_index or all(v == ignore_index for v in y)))  # cut, or prompt-only
        assert len(eos_positions) == 1 or truncated, (
            f"row {row}: {len(eos_positions)} end-of-text targets (id {eos_id}) at positions "
            f"{eos_positions}; expected exactly one (padding targets after the first end-of-text must be "
            f"{ignore_index})" + ("" if eos_positions else
                                  "; a row without one is only allowed when it was truncated to "
                                  "allowed_max_length (pass allowed_max_length= to check_batch)"))
        end = eos_positions[0] if eos_positions else width - 1  # last real target
        after = y[end + 1:]
        assert all(v == ignore_index for v in after), (
            f"row {row}: targets after the end-of-text at position {end} must all be {ignore_index} "
            f"(padding), got {after}")
        prefix = 0  # ignored targets at the start: the masked prompt
        while prefix <= end and y[prefix] == ignore_index:
            prefix += 1
        holes = [t for t in range(prefix, end + 1) if y[t] == ignore_index]
        assert not holes, (
            f"row {row}: targets at positions {holes} are {ignore_index} between the first kept target "
            f"and the end-of-text; only the prompt (at the start) and padding (at the end) may be masked")
        if prompt_lengths is not None:
            n_prompt_targets = max(int(prompt_lengths[row]) - 1, 0)
            assert prefix <= n_prompt_targets, (
                f"row {row}: {prefix - n_prompt_targets} response target(s) masked: the first "
                f"{prefix} targets are {ignore_index} but the prompt has only {n_prompt_targets + 1} tokens "
                f"(response starts at target position {n_prompt_targets})")
            if mask_instructions is True:
                expected = min(n_prompt_targets, width)
                assert prefix >= expected, (
                    f"row {row}: instruction masking should set the first {expected} targets (the prompt) "
                    f"to {ignore_index}, but only {prefix} are")
        if mask_instructions is False:
            assert prefix == 0, (
                f"row {row}: the first {prefix} targets are {ignore_index} although "
                "instruction masking is off")
        summary["trained_targets"] += end + 1 - prefix
        summary["masked_prompt_targets"] += prefix
        summary["padding_targets"] += len(after)
        summary["truncated_rows"] += int(truncated)
    return summary


def check_loader(loader: DataLoader) -> dict:
    """Run :func:`check_batch` on every batch of a loader from :func:`make_loaders` (notebook 02).

    Rebuilds each batch from the loader's own batch sampler and collate settings so that every row's
    prompt length is known, which lets the check prove that no response token is masked. Returns the
    summed summary; the loader's sampler epoch and collate counts are left as they were.
    """
    if not isinstance(loader.collate_fn, partial) or "eos_id" not in loader.collate_fn.keywords:
        raise TypeError("check_loader needs a loader from make_loaders (its collate_fn is a partial of "
                        "collate); for other loaders call check_batch on each (inputs, targets) batch")
    settings = dict(loader.collate_fn.keywords)  # the functools.partial built by make_loaders
    settings.pop("stats", None)
    sampler = loader.batch_sampler
    saved_epoch = getattr(sampler, "epoch", None)
    total: dict = {}
    for indices in sampler:
        batch = [loader.dataset[i] for i in indices]
        inputs, targets = collate(batch, **settings)
        summary = check_batch(inputs, targets, eos_id=settings["eos_id"],
                              ignore_index=settings.get("ignore_index", -100),
                              prompt_lengths=[example["prompt_length"] for example in batch],
                              mask_instructions=settings.get("mask_instructions", False),
                              allowed_max_length=settings.get("allowed_max_length"))
        summary["batches"] = 1
        for key, value in summary.items():
            total[key] = max(total.get(key, 0), value) if key == "width" else total.get(key, 0) + value
    if saved_epoch is not None:
        sampler.set_epoch(saved_epoch)
    return total


# --------------------------------------------------------------------------------------------------
# Batch samplers and padding
# --------------------------------------------------------------------------------------------------


class _EpochBatchSampler(Sampler):
    """Shared epoch handling: epoch ``e``'s order depends on ``(seed, e)`` only."""

    def __init__(self, n: int, batch_size: int, seed: int = 123, drop_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.n, self.batch_size, self.seed, self.drop_last = n, batch_size, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use epoch ``epoch``'s order."""
        self.epoch = int(epoch)

    def _rng(self) -> random.Random:
        return random.Random(f"{self.seed}-{self.epoch}")  # str seeds hash deterministically across runs

    def _batches(self, rng: random.Random) -> list[list[int]]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches(self._rng())
        self.epoch += 1
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        return iter(batches)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)


class RandomBatchSampler(_EpochBatchSampler):
    """Plain random batches, as the book's ``DataLoader(shuffle=True)`` (notebook 02)."""

    def __init__(self, n: int, batch_size: int, seed: int = 123, drop_last: bool = False):
        super().__init__(n, batch_size, seed, drop_last)

    def _batches(self, rng: random.Random) -> list[list[int]]:
        order = list(range(self.n))
        rng.shuffle(order)
        return [order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)]


class LengthGroupedSampler(_EpochBatchSampler):
    """Batches of examples with similar lengths, to cut padding (notebook 02).

    Each epoch: shuffle all indices, cut them into buckets of ``batch_size * batches_per_bucket``, sort each
    bucket by length, cut it into batches, and shuffle the order of all batches. Larger buckets mean less
    padding and less randomness in which examples share a batch. Pass ``lengths`` (``dataset.lengths``).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 123, batches_per_bucket: int = 16,
                 drop_last: bool = False):
        super().__init__(len(lengths), batch_size, seed, drop_last)
        self.lengths = list(lengths)
        self.bucket_size = batch_size * max(1, batches_per_bucket)

    def _batches(self, rng: random.Random) -> list[list[int]]:
        order = list(range(self.n))
        rng.shuffle(order)
        batches = []
        for start in range(0, self.n, self.bucket_size):
            bucket = sorted(order[start:start + self.bucket_size], key=lambda i: self.lengths[i])
            batches += [bucket[i:i + self.batch_size] for i in range(0, len(bucket), self.batch_size)]
        rng.shuffle(batches)
        return batches


def padding_fraction(loader_or_batches: Iterable, ignore_index: int = -100) -> float:
    """Share of all (row, position) slots in the batches that are padding (notebook 02).

    A row's padding is the run of ``ignore_index`` targets at its end (after its end-of-text target), so
    this works for any pad id and with or without instruction masking. A loader whose batch sampler has
    an epoch counter gets it restored, so measuring does not shift the training order.
    """
    sampler = getattr(loader_or_batches, "batch_sampler", None)
    saved_epoch = getattr(sampler, "epoch", None)
    padded = total = 0
    for _, targets in loader_or_batches:
        kept = targets != ignore_index  # (B, T)
        positions = torch.arange(1, targets.shape[1] + 1, device=targets.device)  # (T,)
        last_kept = (kept * positions).amax(dim=1)  # (B,) 1-based position of the last kept target, 0 if none
        padded += int((targets.shape[1] - last_kept).sum())
        total += targets.numel()
    if saved_epoch is not None:
        sampler.set_epoch(saved_epoch)
    return padded / total if total else 0.0


# --------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------


def supervision_report(dataset: InstructionDataset, *, allowed_max_length: int | None = None,
                       mask_instructions: bool = False) -> dict:
    """What :func:`collate` will make of every example, counted up front (no batch is built).

    ``supervised_targets``: targets the loss sees; ``records_cut`` / ``targets_cut``: examples longer than
    ``allowed_max_length`` and the supervised targets they lose (their end-of-text among them);
    ``records_without_targets``: examples left with nothing to learn (a prompt longer than the limit).
    """
    report = dict(records=len(dataset), supervised_targets=0, records_cut=0, targets_cut=0,
                  records_without_targets=0)
    for example in dataset.examples:
        n_real = len(example["token_ids"])  # real targets: every token after the first, then the end-of-text
        n_masked = max(example["prompt_length"] - 1, 0) if mask_instructions else 0
        kept = n_real if allowed_max_length is None else min(n_real, allowed_max_length)
        supervised = max(kept - n_masked, 0)
        report["supervised_targets"] += supervised
        report["records_cut"] += int(kept < n_real)
        report["targets_cut"] += max(n_real - n_masked, 0) - supervised
        report["records_without_targets"] += int(supervised == 0)
    return report


class Loaders(NamedTuple):
    """Train / validation / test data loaders (notebook 02); each has a ``collate_stats`` attribute."""

    train: DataLoader
    val: DataLoader
    test: DataLoader

    def describe(self) -> str:
        return " | ".join(f"{name} {len(loader.dataset):,} records in {len(loader):,} batches"
                          for name, loader in self._asdict().items())

    def supervision(self) -> dict[str, dict]:
        """:func:`supervision_report` of each split, with the loaders' own collate settings."""
        return {name: supervision_report(loader.dataset,
                                         allowed_max_length=loader.collate_fn.keywords["allowed_max_length"],
                                         mask_instructions=loader.collate_fn.keywords["mask_instructions"])
                for name, loader in self._asdict().items()}


def make_loaders(splits, tokenizer, *, batch_size: int = 8, style: str = "alpaca",
                 mask_instructions: bool = False,
                 allowed_max_length: int | None = None, grouped: bool = True, seed: int = 123, device="cpu",
                 num_workers: int = 0, drop_last: bool = False, batches_per_bucket: int = 16) -> Loaders:
    """Tokenize the three splits and build their data loaders in one call (notebook 02).

    ``splits`` is a :class:`helpers.data.Splits` (or any ``(train, val, test)`` triple of record lists).
    Train batches are length-grouped (``grouped=True``, :class:`LengthGroupedSampler`) or plain random
    (:class:`RandomBatchSampler`), both seeded by ``seed`` and the epoch; validation and test keep their
    order. ``drop_last`` applies to train only. Ids come from ``tokenizer.pad_id`` / ``tokenizer.eos_id``.
    """
    train_records, val_records, test_records = splits
    collate_args = dict(pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id,
                        allowed_max_length=allowed_max_length,
                        mask_instructions=mask_instructions, device=device)

    def build(records, train: bool) -> DataLoader:
        dataset = InstructionDataset(records, tokenizer, style=style)
        stats = CollateStats()
        collate_fn = partial(collate, stats=stats, **collate_args)
        if train:
            if grouped:
                sampler = LengthGroupedSampler(dataset.lengths, batch_size, seed=seed,
                                               batches_per_bucket=batches_per_bucket, drop_last=drop_last)
            else:
                sampler = RandomBatchSampler(len(dataset), batch_size, seed=seed, drop_last=drop_last)
            loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn,
                                num_workers=num_workers)
        else:
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn,
                                num_workers=num_workers)
        loader.collate_stats = stats
        return loader

    return Loaders(train=build(train_records, True), val=build(val_records, False),
                   test=build(test_records, False))
