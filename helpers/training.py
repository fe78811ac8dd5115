"""Fine-tuning: the loss on supervised tokens, the training loop, early stopping, resume (notebook 04).

Notebook 04 writes the loss and a 30-line loop (``train_simple``) itself; :func:`train` is its production
twin, driven by one :class:`FinetuneSettings` object (the course's one vocabulary of run settings, also
behind ``python -m helpers finetune``). What :func:`train` adds to the plain loop:

- :func:`supervised_loss`   logits only where ``targets != -100`` (Gemma's head is 262,144 wide)
- :func:`evaluate`          mean loss per supervised token; :func:`record_losses` + :func:`bootstrap_se`
                            give its noise (standard error over validation records), kept in every row
- :func:`set_trainable`     freeze the embedding/output head, train only the last N blocks
- :func:`learning_rate_at`  linear warmup, then constant or cosine decay
- :class:`History`          one row per evaluation: step, epoch, tokens seen, train/val loss (+ its noise),
                            lr, seconds

Early stopping restores the best weights; checkpoints (``helpers.checkpoints``) are written at every
evaluation into a locked folder, and ``resume=True`` continues an interrupted run to exactly the result
of an uninterrupted one, but only a run of the same data and settings (the fingerprint).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import checkpoints as ckpt
from helpers import distributed
from helpers.config import FAST, autocast
from helpers.lora import TARGETS as LORA_TARGETS
from helpers.lora import add_lora, lora_layers, lora_parameters
from helpers.models import transformer_blocks
from helpers.registry import DEFAULT_MODEL

IGNORE_INDEX = -100


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite."""


# ---- the settings --------------------------------------------------------------------------------


@dataclass
class FinetuneSettings:
    """Everything that decides a fine-tuning run. ``FinetuneSettings.for_mode()`` picks FAST or full sizes.

    :func:`train` reads the training knobs (:data:`TRAIN_KNOBS`); ``helpers.course`` reads the rest
    (data, prompt style, masking, batching, test answers). ``python -m helpers finetune`` has one option each.
    """

    model: str = DEFAULT_MODEL
    data: str | None = None  # a JSON/JSONL file; None = the course's data set (data/course-instructions.json)
    # use only about N records, taken from each split of the full split; None = all
    n_records: int | None = None
    style: str = "alpaca"  # prompt format: "alpaca" or "phi3"
    mask_instructions: bool = True  # learn the response only (prompt targets are -100)
    allowed_max_length: int = 256  # cut longer examples (tokens)
    batch_size: int = 8
    epochs: int = 2
    lr: float = 5e-5
    weight_decay: float = 0.1
    warmup_steps: int = 10
    cosine: bool = True
    grad_clip: float = 1.0
    grad_accum: int = 1
    eval_every: int = 20
    eval_batches: int | None = 5  # training batches whose loss is reported at each evaluation; None = all
    # validation batches per evaluation; None = the whole split (early stopping watches it)
    val_batches: int | None = None
    patience: int | None = 3
    freeze_embeddings: bool = True
    train_last_n_blocks: int | None = None
    # LoRA (helpers.lora, notebook 08): train rank-r adapters on these linear layers instead of the weights
    lora_rank: int | None = None  # None = full fine-tuning
    lora_alpha: float | None = None  # None = 2 * lora_rank
    lora_targets: str = "all"  # "attention", "feedforward" or "all"
    lora_dropout: float = 0.0
    max_steps: int | None = None
    seed: int = 123
    max_new_tokens: int = 96  # for the test-set responses
    n_test_responses: int | None = None  # None = the whole test split
    # FAST sizes (set by for_mode); saved with the results so they never pass for a full run
    fast: bool = False

    @classmethod
    def for_mode(cls, fast: bool = FAST, **overrides) -> FinetuneSettings:
        """Full-mode defaults, or FAST-mode sizes (a few steps on a handful of records, on the model you
        name)."""
        if fast:
            fast_sizes = dict(n_records=48, batch_size=4, epochs=1, max_steps=6, eval_every=3, eval_batches=2,
                              train_last_n_blocks=2, warmup_steps=0, lr=1e-4, allowed_max_length=128,
                              max_new_tokens=24, n_test_responses=4, patience=None)
            overrides = {**fast_sizes, **overrides}
        return cls(**{**overrides, "fast": fast})

    def as_dict(self) -> dict:
        return asdict(self)

    def problems(self) -> list[str]:
        """Settings that would make a run learn nothing or crash, each named by its command-line option."""
        from helpers.data import PROMPT_STYLES

        found = knob_problems(self.as_dict())
        if self.style not in PROMPT_STYLES:
            found.append(f"style={self.style!r} is not one of {sorted(PROMPT_STYLES)}")
        return [f"{option_name(p.split('=')[0])} ({p})" for p in found]


# The knobs train() reads; they enter the run's fingerprint (a checkpoint resumes only if they all match).
TRAIN_KNOBS = ("epochs", "lr", "weight_decay", "warmup_steps", "cosine", "grad_clip", "grad_accum", "seed",
               "eval_every", "eval_batches", "val_batches", "patience", "freeze_embeddings",
               "train_last_n_blocks", "max_steps", "lora_rank", "lora_alpha", "lora_targets", "lora_dropout")


def option_name(setting: str) -> str:
    """The ``python -m helpers finetune`` option of a :class:`FinetuneSettings` field."""
    return ({"allowed_max_length": "--max-length", "cosine": "--no-cosine"}
            .get(setting, "--" + setting.replace("_", "-")))


def with_overrides(settings: FinetuneSettings, overrides: dict) -> FinetuneSettings:
    """``settings`` with the training knobs in ``overrides`` replaced; any other name is refused by name."""
    known = {f.name for f in fields(FinetuneSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"train() got unknown setting(s) {unknown}; FinetuneSettings has: {sorted(known)}")
    fixed = sorted(set(overrides) - set(TRAIN_KNOBS))
    if fixed:
        raise TypeError(f"train() cannot change {fixed}: they are fixed when the data and loaders are built "
                        "(helpers.course.build_loaders). train() reads only: " + ", ".join(TRAIN_KNOBS))
    return replace(settings, **overrides)


# ---- the loop -------------------------------------------------------------------------------------


def train(model, loaders, settings: FinetuneSettings | None = None, *, checkpoint_dir=None, resume=False,
          device=None, progress=True, live_plot=False, on_step=None, **overrides) -> History:
    """Fine-tune ``model`` on ``loaders.train``, evaluating on ``loaders.val``; returns a :class:`History`.

    The knobs come from ``settings`` (default ``FinetuneSettings()``, the full-mode course settings); a
    keyword overrides one of them: ``train(model, loaders, SETTINGS, lr=1e-4, patience=None)``.
    ``patience``: stop after that many evaluations without a better validation loss; the best weights
    are restored at the end in every case. ``on_step(step, loss)`` is called after each optimizer step.
    With ``checkpoint_dir`` the folder is locked for the run (a second run there fails at once) and
    ``resume=True`` continues the checkpoint there only when it was made with the same data and settings.
    """
    settings = with_overrides(settings or FinetuneSettings(), overrides)
    knobs = {name: getattr(settings, name) for name in TRAIN_KNOBS}
    problems = knob_problems(knobs) + [f"{name}: the split is empty" for name in ("train", "val")
                                       if len(getattr(loaders, name)) == 0]
    if problems:
        raise ValueError("train() cannot learn anything with these settings: " + "; ".join(problems))
    # under torchrun only rank 0 writes, so only rank 0 holds the folder's lock
    locked = checkpoint_dir and distributed.is_main()
    lock = ckpt.folder_lock(checkpoint_dir, "training") if locked else contextlib.nullcontext()
    with lock:
        return _train(model, loaders, knobs, checkpoint_dir, resume, device, progress, live_plot, on_step)


def _train(model, loaders, knobs, checkpoint_dir, resume, device, progress, live_plot, on_step) -> History:
    epochs, lr, seed, grad_accum = knobs["epochs"], knobs["lr"], knobs["seed"], knobs["grad_accum"]
    eval_every, patience, max_steps = knobs["eval_every"], knobs["patience"], knobs["max_steps"]
    device = torch.device(device or next(model.parameters()).device)
    model.to(device)
    if knobs["lora_rank"] and not lora_layers(model):
        wrapped = add_lora(model, knobs["lora_rank"], knobs["lora_alpha"], knobs["lora_targets"],
                           knobs["lora_dropout"], seed=seed)
        print(f"LoRA rank {knobs['lora_rank']} on {len(wrapped)} linear layers ({knobs['lora_targets']}).")
    trainable = set_trainable(model, knobs["freeze_embeddings"], knobs["train_last_n_blocks"])
    distributed.broadcast_parameters(model)  # under torchrun: every rank starts from rank 0's weights
    writes = checkpoint_dir if distributed.is_main() else None  # the folder rank 0 writes to; None elsewhere
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=knobs["weight_decay"])
    steps_per_epoch = math.ceil(len(loaders.train) / grad_accum)
    total_steps = min(epochs * steps_per_epoch, max_steps or 10**12)
    train_eval = fixed_batches(loaders.train, knobs["eval_batches"], seed)  # a fixed sample: the train loss
    val_eval = fixed_batches(loaders.val, knobs["val_batches"], seed)  # by default the whole validation split
    if not any(bool((t != IGNORE_INDEX).any()) for _, t in val_eval):
        raise ValueError("The validation batches hold no supervised token (every target is -100), so the "
                         "validation loss is undefined: raise allowed_max_length "
                         "(--max-length) or check the data.")
    run = RunState(total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    run.fingerprint = run_fingerprint(model, trainable, loaders, knobs)
    if resume and checkpoint_dir and resumable(checkpoint_dir, run.fingerprint):
        run = resume_from(checkpoint_dir, model, optimizer, run)  # every rank reads the same checkpoint
    elif writes:
        # starting over: no step of an earlier run may be resumed later
        ckpt.remove_checkpoints(writes)
    distributed.barrier()
    if run.finished:
        return finish(model, run, writes)
    bar = progress_bar(progress and distributed.is_main(), total_steps, run.step)
    plot = live_loss_plot(live_plot and distributed.is_main(), run)
    started = time.perf_counter() - run.seconds
    if not run.rows:  # the losses before any training: the starting point of the curve
        record(run, model, train_eval, val_eval, device, lr=0.0, started=started,
               checkpoint_dir=writes, optimizer=optimizer, plot=plot)
    model.train()
    step_tokens = 0  # supervised tokens of the batches since the last optimizer step
    for epoch in range(run.epoch, epochs):
        for batch_index, (inputs, targets) in epoch_batches(loaders.train, seed, epoch,
                                                            skip=run.batch_index, run=run):
            run.tokens_seen += int(inputs.numel())  # of the global batch (all ranks together)
            run.supervised_tokens += int((targets != IGNORE_INDEX).sum())
            inputs, targets = distributed.shard(inputs, targets)  # this rank's rows (all in one process)
            inputs, targets = inputs.to(device), targets.to(device)
            n_supervised = int((targets != IGNORE_INDEX).sum())
            with autocast(device):
                # mean over this rank's supervised tokens (0 when it has none: an all-masked shard)
                loss = supervised_loss(model, inputs, targets)
            if distributed.any_over_ranks(not torch.isfinite(loss)):
                raise NonFiniteLossError(
                    f"Loss is {loss.item()} at step {run.step + 1} (epoch {epoch + 1}, batch {batch_index} "
                    f"of {len(loaders.train)}). Training stopped; the last good checkpoint stays in "
                    f"{checkpoint_dir or '(no checkpoint_dir given)'}. Try a lower lr or grad_clip.")
            # the sum over this batch's tokens; divided by the step's count below
            (loss * n_supervised).backward()
            step_tokens += n_supervised
            run.batch_index, run.epoch = batch_index + 1, epoch
            last_in_epoch = batch_index + 1 == len(loaders.train)
            if (batch_index + 1) % grad_accum and not last_in_epoch:
                continue  # gradient accumulation: step after every `grad_accum` batches
            # mean over every token of the step and every rank: exactly one batch grad_accum x as large
            distributed.all_reduce_gradients(trainable)  # sums of all ranks; nothing to do in one process
            step_tokens = distributed.sum_over_ranks(step_tokens)
            for p in trainable:
                if p.grad is not None:
                    p.grad.div_(max(step_tokens, 1))
            step_tokens = 0
            run.step += 1
            step_lr = learning_rate_at(run.step, total_steps, lr, knobs["warmup_steps"], knobs["cosine"])
            for group in optimizer.param_groups:
                group["lr"] = step_lr
            if knobs["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(trainable, knobs["grad_clip"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if last_in_epoch:
                run.epoch, run.batch_index = epoch + 1, 0
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", epoch=epoch + 1)
            if run.step % eval_every == 0 or last_in_epoch or run.step == total_steps:
                record(run, model, train_eval, val_eval, device, step_lr, started, writes, optimizer, plot)
                if patience is not None and run.evals_since_best >= patience:
                    run.stopped_early = True
            if on_step is not None:
                on_step(run.step, loss.item())
            if run.stopped_early or run.step >= total_steps:
                break
        if run.stopped_early or run.step >= total_steps:
            break
    bar.close()
    run.finished = True
    if writes:
        ckpt.save_checkpoint(writes, run.step, model, optimizer, run.to_json())
    distributed.barrier()  # no rank returns before rank 0 has written the last checkpoint
    return finish(model, run, writes)


# None = off/all for each of these
AT_LEAST_ONE = {"epochs", "grad_accum", "eval_every", "eval_batches", "val_batches", "max_steps", "patience",
                "train_last_n_blocks", "batch_size", "allowed_max_length", "max_new_tokens", "lora_rank"}
NOT_NEGATIVE = {"weight_decay", "grad_clip", "warmup_steps"}


def knob_problems(knobs: dict) -> list[str]:
    """Settings that make a run learn nothing or crash, as ``"name=value: why"`` (empty when all are
    usable)."""
    problems = []
    for name, value in knobs.items():
        if value is None or isinstance(value, bool):
            continue
        if name in AT_LEAST_ONE and value < 1:
            problems.append(f"{name}={value} must be at least 1")
        elif name in NOT_NEGATIVE and value < 0:
            problems.append(f"{name}={value} must not be negative")
        elif name in ("lr", "lora_alpha") and not value > 0:
            problems.append(f"{name}={value} must be positive")
        elif name == "lora_targets" and value not in LORA_TARGETS:
            problems.append(f"lora_targets={value!r} must be one of {', '.join(LORA_TARGETS)}")
        elif name == "lora_dropout" and not 0 <= value < 1:
            problems.append(f"lora_dropout={value} must be in [0, 1)")
    return problems


# ---- loss and evaluation --------------------------------------------------------------------------


def supervised_loss(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the supervised tokens of the batch (targets != -100).

    The output head runs only on those positions: with instruction masking most positions are prompt
    or padding, and the head (vocab_size x emb_dim) is the most expensive layer of a small model.
    """
    hidden = model.body(inputs)  # (B, T, C)
    supervised = targets != IGNORE_INDEX  # (B, T)
    if not supervised.any():  # every target masked: nothing to learn from this batch
        return hidden.sum() * 0.0
    logits = model.head(hidden[supervised])  # (N_supervised, vocab_size)
    return F.cross_entropy(logits.float(), targets[supervised])


def full_logits_loss(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The book's loss: logits at every position, then ``ignore_index=-100`` (same value, more compute)."""
    logits = model(inputs)  # (B, T, vocab_size)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX)


@torch.no_grad()
def record_losses(model, batches, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per record (row of each batch): the summed loss of its supervised tokens, and how many there are.

    Returns ``(sums, counts)``, float64 and int64 tensors on the CPU, one entry per record; the model is
    left in the mode it was in. ``sums.sum() / counts.sum()`` is the loss per supervised token.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums, counts = [torch.zeros(0, dtype=torch.float64)], [torch.zeros(0, dtype=torch.int64)]
    for inputs, targets in batches:
        inputs, targets = inputs.to(device), targets.to(device)
        supervised = targets != IGNORE_INDEX  # (B, T)
        with autocast(device):
            logits = model.head(model.body(inputs)[supervised])  # (N_supervised, vocab_size)
        losses = F.cross_entropy(logits.float(), targets[supervised], reduction="none")  # (N_supervised,)
        rows = supervised.nonzero()[:, 0]  # the record each supervised token belongs to
        per_record = torch.zeros(len(inputs), dtype=torch.float64,
                                 device=device).index_add_(0, rows, losses.double())
        sums.append(per_record.cpu())
        counts.append(supervised.sum(dim=1).cpu())
    model.train(was_training)
    return torch.cat(sums), torch.cat(counts)


def evaluate(model, batches, device=None) -> float:
    """Mean loss per supervised token over ``batches`` (a list of (inputs, targets)); NaN when there is
    none."""
    sums, counts = record_losses(model, batches, device)
    return float(sums.sum() / counts.sum()) if counts.sum() > 0 else float("nan")


def bootstrap_se(sums: torch.Tensor, counts: torch.Tensor, n_resamples: int = 1000, seed: int = 0) -> float:
    """Standard error of the loss per token ``sum(sums) / sum(counts)`` over records, by the bootstrap.

    Draw as many records as there are, with replacement, ``n_resamples`` times; the spread of the loss
    of those resamples is how much the number would move on another validation set of this size. Records
    without supervised tokens are left out. Uses its own generator: the training random state never moves.
    """
    keep = counts > 0
    sums, counts = sums[keep].double(), counts[keep].double()
    if len(sums) < 2:
        return float("nan")
    generator = torch.Generator().manual_seed(seed)
    # (n_resamples, n_records)
    picks = torch.randint(len(sums), (n_resamples, len(sums)), generator=generator)
    return (sums[picks].sum(dim=1) / counts[picks].sum(dim=1)).std().item()


def fixed_batches(loader, n: int | None, seed: int = 123) -> list:
    """The first ``n`` batches of ``loader`` in epoch 0's order for ``seed`` (all when n is None).

    The same batches whatever passes over the loader came before (a sampler counting its epochs, such
    as ``LengthGroupedSampler``, is put back where it was), drawn inside ``torch.random.fork_rng`` so
    evaluating never moves the training random state.
    """
    parts = [obj for obj in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None))
             if obj is not None]
    epochs = [(obj, obj.epoch) for obj in parts if isinstance(getattr(obj, "epoch", None), int)]
    generators = [(g, g.get_state()) for g in (getattr(obj, "generator", None) for obj in parts)
                  if isinstance(g, torch.Generator)]
    with torch.random.fork_rng(devices=[]):
        seed_epoch_order(loader, seed, 0)
        out = []
        for batch in loader:
            if n is not None and len(out) >= n:
                break
            out.append(batch)
    for obj, epoch in epochs:
        obj.epoch = epoch
    for generator, state in generators:
        generator.set_state(state)
    return out


# ---- what to train --------------------------------------------------------------------------------


def embedding_parameters(model) -> list[nn.Parameter]:
    """Token/position embeddings and the output head (a Linear as wide as the vocabulary)."""
    vocab = getattr(model, "cfg", {}).get("vocab_size")
    params = []
    for module in model.modules():
        if (isinstance(module, nn.Embedding)
                or (isinstance(module, nn.Linear) and module.out_features == vocab)):
            params.extend(module.parameters(recurse=False))
    return params


def set_trainable(model, freeze_embeddings: bool = False, train_last_n_blocks: int | None = None) -> list:
    """Set ``requires_grad`` and return the trainable parameters (each once, in a fixed order).

    - ``freeze_embeddings``: the embedding and the (often tied) output head stay as pretrained. For
      Gemma 3 270M that is 168 M of 268 M parameters, and AdamW keeps two more copies of each.
    - ``train_last_n_blocks=N``: blocks before the last N are frozen too (and the embedding with them).
      Autograd then builds no graph for the frozen part, so the backward pass is much shorter.
    - a model with LoRA layers (``helpers.lora.add_lora``) trains its A and B matrices only.
    """
    if lora_layers(model):
        model.requires_grad_(False)
        for p in lora_parameters(model):
            p.requires_grad_(True)
        return list(ckpt.trainable_state(model).values())
    for p in model.parameters():
        p.requires_grad_(True)
    if train_last_n_blocks is not None:
        blocks = transformer_blocks(model)
        for block in blocks[: max(len(blocks) - train_last_n_blocks, 0)]:
            block.requires_grad_(False)
        for module in model.modules():
            if isinstance(module, nn.Embedding):
                module.requires_grad_(False)
    if freeze_embeddings:
        for p in embedding_parameters(model):
            p.requires_grad_(False)
    return list(ckpt.trainable_state(model).values())


def learning_rate_at(step: int, total_steps: int, lr: float, warmup_steps: int = 0, cosine: bool = False,
                     min_ratio: float = 0.1) -> float:
    """Linear warmup over ``warmup_steps``, then ``lr`` (constant) or cosine decay to ``min_ratio * lr``."""
    if warmup_steps and step <= warmup_steps:
        return lr * step / warmup_steps
    if not cosine:
        return lr
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


# ---- the data order, reproducible after a restart -------------------------------------------------


def seed_epoch_order(loader, seed: int, epoch: int) -> None:
    """Make the shuffle of ``epoch`` a function of (seed, epoch) only, whatever ran before.

    Covers samplers with ``set_epoch`` (like DistributedSampler), samplers and loaders holding their own
    ``torch.Generator``, and the global generator that a plain ``DataLoader(shuffle=True)`` draws from.
    """
    epoch_seed = seed * 1000 + epoch
    torch.manual_seed(epoch_seed)
    for obj in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if obj is None:
            continue
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
        generator = getattr(obj, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(epoch_seed)


def epoch_batches(loader, seed: int, epoch: int, skip: int = 0, run: RunState | None = None):
    """Yield ``(batch_index, batch)`` for one epoch, skipping the first ``skip`` batches after a resume.

    After skipping, the random state saved in the checkpoint is restored, so dropout and everything
    else continue exactly where the interrupted run was.
    """
    pending = run.pending_rng if run is not None else None
    if run is not None:
        run.pending_rng = None
    if pending is not None and skip == 0:  # saved at an epoch end: the new epoch starts from that state
        ckpt.restore_rng(*pending)
    seed_epoch_order(loader, seed, epoch)
    iterator = iter(loader)
    for _ in range(skip):
        next(iterator)
    if pending is not None and skip > 0:  # saved mid-epoch: the state after these `skip` batches
        ckpt.restore_rng(*pending)
    yield from enumerate(iterator, start=skip)
    if run is not None:
        run.batch_index = 0


# ---- bookkeeping ----------------------------------------------------------------------------------


@dataclass
class RunState:
    """Everything about a run that is not a tensor: saved as JSON in every checkpoint."""

    total_steps: int = 0
    steps_per_epoch: int = 1
    step: int = 0
    epoch: int = 0  # epoch the next batch belongs to
    batch_index: int = 0  # next batch within that epoch
    tokens_seen: int = 0
    supervised_tokens: int = 0
    seconds: float = 0.0
    best_val_loss: float = float("inf")
    best_step: int = 0
    evals_since_best: int = 0
    stopped_early: bool = False
    finished: bool = False
    rows: list = field(default_factory=list)
    fingerprint: dict = field(default_factory=dict)  # what must match for a checkpoint to be resumed
    pending_rng: tuple | None = None
    best_weights: dict | None = None

    def to_json(self) -> dict:
        out = asdict(self)
        out.pop("pending_rng"), out.pop("best_weights")
        return out


def record(run, model, train_eval, val_eval, device, lr, started, checkpoint_dir, optimizer, plot) -> None:
    """Evaluate, append a history row, keep the best weights, write a checkpoint, update the live plot.

    ``val_loss_se`` is the bootstrap standard error of ``val_loss`` over the validation records: a rise
    of the validation loss much smaller than it may be noise of this validation set, not overfitting.
    """
    train_loss = evaluate(model, train_eval, device)
    sums, counts = record_losses(model, val_eval, device)
    val_loss = float(sums.sum() / counts.sum())
    run.seconds = time.perf_counter() - started
    run.rows.append({"step": run.step, "epoch": round(run.step / run.steps_per_epoch, 4),
                     "tokens_seen": run.tokens_seen, "supervised_tokens": run.supervised_tokens,
                     "train_loss": train_loss, "val_loss": val_loss,
                     "val_loss_se": bootstrap_se(sums, counts), "lr": lr, "seconds": round(run.seconds, 2)})
    if val_loss < run.best_val_loss:
        run.best_val_loss, run.best_step, run.evals_since_best = val_loss, run.step, 0
        run.best_weights = {k: v.detach().clone() for k, v in ckpt.trainable_state(model).items()}
        if checkpoint_dir:
            ckpt.save_best(checkpoint_dir, model, run.step, val_loss)
    else:
        run.evals_since_best += 1
    if checkpoint_dir:
        ckpt.save_checkpoint(checkpoint_dir, run.step, model, optimizer, run.to_json())
    if plot is not None:
        plot.update(run.rows)
    model.train()


class CheckpointMismatch(ValueError):
    """The checkpoint in the folder was made with other data or settings; it is never resumed."""


def _sha256_of_records(dataset) -> str:
    """A short hash of a dataset's records (the records of an InstructionDataset, else its items)."""
    records = getattr(dataset, "records", None)
    items = records if records is not None else [dataset[i] for i in range(len(dataset))]
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def run_fingerprint(model, trainable, loaders, knobs: dict) -> dict:
    """Everything that changes the trained result: model, what is trained, data, batching, every knob.

    A checkpoint is resumed only when its fingerprint equals this one (see :func:`resumable`).
    """
    collate_args = getattr(loaders.train.collate_fn, "keywords", {})  # a functools.partial of collate
    return {"model": f"{type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters",
            "trainable parameters": sum(p.numel() for p in trainable),
            "training records (sha256)": _sha256_of_records(loaders.train.dataset),
            "validation records (sha256)": _sha256_of_records(loaders.val.dataset),
            "style": getattr(loaders.train.dataset, "style", None),
            "mask_instructions": collate_args.get("mask_instructions"),
            "allowed_max_length": collate_args.get("allowed_max_length"),
            "batch_size": (loaders.train.batch_size
                           or getattr(loaders.train.batch_sampler, "batch_size", None)),
            "train batches": len(loaders.train), **knobs}


def resumable(checkpoint_dir, fingerprint: dict) -> bool:
    """True when ``checkpoint_dir`` holds a checkpoint of this very run, False when it holds none.

    A checkpoint of a *different* run raises :class:`CheckpointMismatch` naming every setting that
    differs: resuming it would mix two runs, and starting over silently would throw it away.
    """
    pointer = ckpt.latest_checkpoint(checkpoint_dir)
    if pointer is None:
        return False
    try:
        saved = ckpt.read_state(checkpoint_dir, pointer).get("fingerprint", {})
    except (OSError, ValueError):
        return True  # damaged: load_checkpoint verifies every file and falls back to an older one
    differs = {k: (saved.get(k, "(not recorded)"), v) for k, v in fingerprint.items() if saved.get(k) != v}
    if differs:
        raise CheckpointMismatch(
            f"Not resuming: the checkpoint in {checkpoint_dir} (step {pointer['step']}) is from a run with "
            f"other settings: {'; '.join(f'{k}: saved {a!r}, now {b!r}' for k, (a, b) in differs.items())}. "
            "Start over with --restart (resume=False), or write to another folder (--out).")
    return True


def resume_from(checkpoint_dir, model, optimizer, run: RunState) -> RunState:
    """Load the latest intact checkpoint and return the run state it saved (random state restored later)."""
    state = ckpt.load_checkpoint(checkpoint_dir, model, optimizer, restore_random=False)
    rng = (state.pop("_rng_tensors"), state.pop("rng"))
    state.pop("param_groups", None)
    known = {k: v for k, v in state.items() if k in RunState.__dataclass_fields__}
    known["total_steps"], known["steps_per_epoch"] = run.total_steps, run.steps_per_epoch
    known["fingerprint"] = run.fingerprint
    known["best_val_loss"] = float("inf") if known.get("best_val_loss") is None else known["best_val_loss"]
    resumed = RunState(**known)
    resumed.pending_rng = rng
    if resumed.rows:
        resumed.best_weights = ckpt.load_best(checkpoint_dir, resumed.best_step)
        if resumed.best_weights is None and resumed.rows:  # the resumed step's weights count as the best
            print(f"The best weights (step {resumed.best_step}) are lost; those of step {resumed.step} "
                  f"(val loss {resumed.rows[-1]['val_loss']:.3f}) count as the best from now on.")
            resumed.best_weights = {k: v.detach().clone() for k, v in ckpt.trainable_state(model).items()}
            resumed.best_step, resumed.best_val_loss = resumed.step, resumed.rows[-1]["val_loss"]
            resumed.evals_since_best = 0
    print(f"Resumed from {checkpoint_dir} at step {resumed.step} (epoch {resumed.epoch + 1}, batch "
          f"{resumed.batch_index}).")
    return resumed


def finish(model, run: RunState, checkpoint_dir) -> History:
    """Restore the best weights and turn the run state into a History (saved beside the checkpoints)."""
    if run.best_weights:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in run.best_weights.items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))
    history = History(rows=run.rows, best_step=run.best_step, best_val_loss=run.best_val_loss,
                      stopped_early=run.stopped_early, steps_per_epoch=run.steps_per_epoch)
    if checkpoint_dir:
        history.save(Path(checkpoint_dir) / "history.json")
    return history


@dataclass
class History:
    """The result of :func:`train`: one row per evaluation plus the best step and early-stopping facts."""

    rows: list
    best_step: int = 0
    best_val_loss: float = float("nan")
    stopped_early: bool = False
    steps_per_epoch: int = 1
    data: dict = field(default_factory=dict)  # e.g. what truncation cut (helpers.batching.supervision_report)

    @property
    def best_epoch(self) -> float:
        return round(self.best_step / self.steps_per_epoch, 4)

    @property
    def overfit_epoch(self) -> float | None:
        """Epoch after which validation loss rose while training loss kept falling (None if it never did)."""
        best = next((i for i, r in enumerate(self.rows) if r["step"] == self.best_step), None)
        if best is None or best == len(self.rows) - 1:
            return None
        later = self.rows[best + 1:]
        if (any(r["val_loss"] > self.best_val_loss for r in later)
                and later[-1]["train_loss"] < self.rows[best]["train_loss"]):
            return self.rows[best]["epoch"]
        return None

    @property
    def final(self) -> dict:
        return self.rows[-1] if self.rows else {}

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def summary(self) -> str:
        first, last = self.rows[0], self.final
        overfit = self.overfit_epoch
        best_se = next((r.get("val_loss_se") for r in self.rows if r["step"] == self.best_step), None)
        noise = f" (± {best_se:.3f} standard error over validation records)" if best_se is not None else ""
        return (f"{last['step']} steps, {last['epoch']:.2f} epochs, {last['tokens_seen']:,} tokens, "
                f"{last['seconds']:.0f} s. val loss {first['val_loss']:.3f} -> best "
                f"{self.best_val_loss:.3f}{noise} at epoch {self.best_epoch:.2f} "
                f"(step {self.best_step}); final train {last['train_loss']:.3f}, val {last['val_loss']:.3f}. "
                + (f"Overfitting starts after epoch {overfit:.2f}. " if overfit is not None
                   else "No overfitting seen. ")
                + ("Stopped early." if self.stopped_early else ""))

    def save(self, path) -> None:
        data = {**asdict(self), "best_epoch": self.best_epoch, "overfit_epoch": self.overfit_epoch}
        ckpt.atomic_write_json(Path(path), data)

    @classmethod
    def load(cls, path) -> History:
        data = json.loads(Path(path).read_text())
        return cls(**{k: data[k] for k in ("rows", "best_step", "best_val_loss", "stopped_early",
                                           "steps_per_epoch", "data")
                      if k in data})


# ---- progress -------------------------------------------------------------------------------------


class _NoBar:
    def update(self, n=1): ...
    def set_postfix(self, **kw): ...
    def close(self): ...


def progress_bar(show: bool, total: int, initial: int):
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="training", unit="step")


def live_loss_plot(enabled: bool, run: RunState):
    """A loss plot that redraws in place in a notebook (None outside IPython or when disabled)."""
    if not enabled:
        return None
    from helpers.plots import LiveLossPlot

    plot = LiveLossPlot.if_in_notebook()
    if plot is not None and run.rows:
        plot.update(run.rows)
    return plot
