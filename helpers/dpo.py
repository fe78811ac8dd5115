"""Preference tuning with DPO (Rafailov et al. 2023): prefer the chosen answer to the rejected one.

For a prompt x with a chosen answer y+ and a rejected one y-, DPO raises the policy's log-probability of
y+ relative to y-, measured against a frozen reference model (the supervised fine-tuned model):

    loss = -log sigmoid( beta * [ (log p(y+|x) - log p_ref(y+|x)) - (log p(y-|x) - log p_ref(y-|x)) ] )

``log p(y|x)`` is summed over the answer's tokens only (prompt and padding masked with -100, as in
notebook 02). At the start policy = reference, so the bracket is 0 and the loss is ln 2 for any beta.

Notebook 09 writes :func:`sequence_logprobs` and :func:`dpo_loss` itself; this is their production twin.
What it adds:

- :func:`make_pairs`        preference pairs from the course's own records: the model's own wrong answer
                            as the rejected one, or a controlled corruption (:func:`corrupt`) of the
                            reference answer where the model was right
- :func:`pair_batches`      chosen and rejected rows in one padded batch, collated like training batches
- :func:`train_dpo`         the loop: reference log-probabilities computed once, AdamW, clipping, warmup,
                            evaluation on validation pairs (loss, reward margin, preference accuracy,
                            chosen/rejected log-probabilities), best weights kept, checkpoints and an exact
                            resume (``helpers.checkpoints``), one :class:`DPOSettings` object
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from helpers import checkpoints as ckpt
from helpers.batching import InstructionDataset, collate
from helpers.config import autocast
from helpers.course import load_finetuned, load_splits
from helpers.judge import Judge
from helpers.review import normalize_answer, saved_or_generated
from helpers.training import IGNORE_INDEX, FinetuneSettings, learning_rate_at, set_trainable

# ---- pairs ----------------------------------------------------------------------------------------


def _change_number(text: str) -> str | None:
    """The last number in ``text`` changed by one (``12`` -> ``13``; ``0`` -> ``1``), else None."""
    numbers = list(re.finditer(r"\d+", text))
    if not numbers:
        return None
    last = numbers[-1]
    value = int(last.group())
    return text[: last.start()] + str(value + 1 if value % 2 == 0 else value - 1) + text[last.end():]


WORD_FORM_RULES = (("ies", "y"), ("est", ""), ("ing", ""), ("ed", ""), ("er", ""), ("es", ""), ("s", ""))


def _change_word_form(text: str) -> str | None:
    """The last word of ``text`` in another form: a suffix taken off (cities -> city, faster -> fast),
    or an ``s`` added when it has none of them; None when there is no word."""
    words = list(re.finditer(r"[A-Za-z]{3,}", text))
    if not words:
        return None
    word = words[-1]
    stem = word.group()
    for suffix, replacement in WORD_FORM_RULES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix) + 2:
            changed = stem[: -len(suffix)] + replacement
            break
    else:
        changed = stem + "s"
    return text[: word.start()] + changed + text[word.end():]


def corrupt(record: Mapping) -> tuple[str, str] | None:
    """A wrong answer made from the reference one: ``(answer, kind)``.

    A number changed by one where the answer has a number ("wrong number"), else the last word in another
    form ("wrong word form"). None when neither changes the answer.
    """
    output = record["output"]
    for kind, change in (("wrong number", _change_number), ("wrong word form", _change_word_form)):
        wrong = change(output)
        if wrong is not None and normalize_answer(wrong) != normalize_answer(output):
            return wrong, kind
    return None


def make_pairs(records: Sequence[Mapping], responses: Sequence[Mapping],
               judge_scores: Sequence[float | None] | None = None, wrong_below: float = 50.0) -> list[dict]:
    """One preference pair per record: ``chosen`` = the reference answer, ``rejected`` = a wrong answer.

    The rejected answer is the model's own (``responses[i]["response"]``) when it is wrong: it differs from
    the reference after :func:`helpers.review.normalize_answer`, and, when ``judge_scores`` are given,
    the judge scored it below ``wrong_below``. Otherwise (the model was right, or the judge says its
    different wording is right) it is :func:`corrupt` of the reference. Records with neither are left
    out. Each pair keeps ``source`` ("model" or the corruption kind) and the record's family.
    """
    if len(records) != len(responses) or (judge_scores is not None and len(judge_scores) != len(records)):
        raise ValueError(f"make_pairs: {len(records)} records, {len(responses)} responses and "
                         f"{len(judge_scores) if judge_scores is not None else 'no'} judge scores must match")
    pairs = []
    for i, (record, response) in enumerate(zip(records, responses)):
        answer = response["response"].strip()
        wrong = normalize_answer(answer) != normalize_answer(record["output"]) and bool(answer)
        if wrong and judge_scores is not None:
            wrong = judge_scores[i] is not None and judge_scores[i] < wrong_below
        rejected = (answer, "model") if wrong else corrupt(record)
        if rejected is None:
            continue
        pairs.append({"instruction": record["instruction"], "input": record.get("input", ""),
                      "chosen": record["output"], "rejected": rejected[0], "source": rejected[1],
                      "family": record.get("family")})
    return pairs


def pair_batches(pairs: Sequence[Mapping], tokenizer, *, batch_size: int, style: str = "alpaca",
                 allowed_max_length: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of ``(inputs, targets)``, each (2B, T): the B chosen rows, then the B rejected rows.

    Rows are collated exactly as training batches (``helpers.batching.collate`` with the prompt masked),
    so the log-probabilities count the answer tokens and the end-of-text only.
    """
    def dataset(answer_field):
        return InstructionDataset([{"instruction": p["instruction"], "input": p.get("input", ""),
                                    "output": p[answer_field]} for p in pairs], tokenizer, style)

    chosen, rejected = dataset("chosen"), dataset("rejected")
    batches = []
    for start in range(0, len(pairs), batch_size):
        rows = [chosen[i] for i in range(start, min(start + batch_size, len(pairs)))]
        rows += [rejected[i] for i in range(start, min(start + batch_size, len(pairs)))]
        batches.append(collate(rows, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id, mask_instructions=True,
                               allowed_max_length=allowed_max_length))
    return batches


# ---- the loss -------------------------------------------------------------------------------------


def sequence_logprobs(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N,) summed log-probability of each row's supervised targets (``targets != -100``).

    The output head runs on the supervised positions only, as in ``helpers.training.supervised_loss``.
    """
    hidden = model.body(inputs)  # (N, T, C)
    keep = targets != IGNORE_INDEX  # (N, T)
    logits = model.head(hidden[keep]).float()  # (S, V): S supervised positions
    picked = targets[keep].unsqueeze(1)  # (S, 1)
    token_logprobs = torch.gather(F.log_softmax(logits, dim=-1), 1, picked).squeeze(1)  # (S,)
    rows = torch.arange(len(inputs), device=inputs.device).unsqueeze(1).expand_as(targets)[keep]  # (S,)
    return torch.zeros(len(inputs), device=inputs.device).index_add(0, rows, token_logprobs)  # (N,)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor, beta: float = 0.1) -> tuple[torch.Tensor, dict]:
    """The mean DPO loss over pairs (each argument (B,)) and its diagnostics for the plots."""
    chosen_reward = beta * (policy_chosen - reference_chosen)  # (B,) implicit rewards
    rejected_reward = beta * (policy_rejected - reference_rejected)
    loss = -F.logsigmoid(chosen_reward - rejected_reward).mean()
    stats = {"reward_margin": (chosen_reward - rejected_reward).mean().item(),
             "accuracy": (chosen_reward > rejected_reward).float().mean().item(),
             "chosen_logp": policy_chosen.mean().item(), "rejected_logp": policy_rejected.mean().item()}
    return loss, stats


# ---- the loop -------------------------------------------------------------------------------------


@dataclass
class DPOSettings:
    """Everything that decides a DPO run (the policy starts from the supervised fine-tuned model)."""

    beta: float = 0.1
    lr: float = 5e-6
    weight_decay: float = 0.0
    epochs: int = 2
    batch_size: int = 4  # pairs per batch (2x as many rows)
    warmup_steps: int = 5
    cosine: bool = True
    grad_clip: float = 1.0
    eval_every: int = 10
    freeze_embeddings: bool = True
    max_steps: int | None = None
    seed: int = 123

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class DPOHistory:
    """One row per evaluation: step, train loss (mean since the last row) and the validation pairs' loss,
    reward margin, accuracy and chosen/rejected log-probabilities."""

    rows: list[dict] = field(default_factory=list)
    best_step: int = 0
    best_val_loss: float = float("inf")

    def to_frame(self):
        import pandas as pd  # pandas only for this table

        return pd.DataFrame(self.rows)


@torch.no_grad()
def batch_logprobs(model, batches, device) -> list[torch.Tensor]:
    """Summed answer log-probabilities of every row of every batch, in evaluation mode."""
    model.eval()
    out = []
    for inputs, targets in batches:
        with autocast(device):
            out.append(sequence_logprobs(model, inputs.to(device), targets.to(device)).float().cpu())
    return out


def evaluate_pairs(model, batches, reference: list[torch.Tensor], beta: float, device) -> dict:
    """Loss, reward margin, accuracy and mean chosen/rejected log-probabilities over every pair."""
    policy = torch.cat([lp.view(2, -1).T for lp in batch_logprobs(model, batches, device)])  # (P, 2)
    ref = torch.cat([lp.view(2, -1).T for lp in reference])  # (P, 2)
    loss, stats = dpo_loss(policy[:, 0], policy[:, 1], ref[:, 0], ref[:, 1], beta)
    return {"val_loss": loss.item(), **{f"val_{k}": v for k, v in stats.items()}}


def epoch_order(n_batches: int, seed: int, epoch: int) -> list[int]:
    """The batch order of one epoch: a permutation seeded by ``seed`` and the epoch (reproducible)."""
    return torch.randperm(n_batches, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()


def train_dpo(model, train_batches, val_batches, settings: DPOSettings | None = None, *, checkpoint_dir=None,
              resume: bool = False, device=None, on_step=None) -> DPOHistory:
    """DPO on ``train_batches`` (from :func:`pair_batches`), evaluated on ``val_batches``.

    The reference is ``model`` as it is now: its log-probabilities of every pair are computed once, before
    the first step (saved with the checkpoints, so a resumed run uses the same ones). Dropout is off
    throughout, so at step 0 policy = reference exactly. The best weights (lowest validation loss) are
    restored at the end. With ``checkpoint_dir``, every evaluation writes a checkpoint there and
    ``resume=True`` continues the latest one to the result of an uninterrupted run.
    """
    settings = settings or DPOSettings()
    if not train_batches or not val_batches:
        raise ValueError("train_dpo needs at least one training and one validation batch of pairs")
    lock = ckpt.folder_lock(checkpoint_dir, "DPO training") if checkpoint_dir else contextlib.nullcontext()
    with lock:
        return _train_dpo(model, train_batches, val_batches, settings, checkpoint_dir, resume, device,
                          on_step)


def _train_dpo(model, train_batches, val_batches, settings, checkpoint_dir, resume, device, on_step):
    device = torch.device(device or next(model.parameters()).device)
    model.to(device)
    trainable = set_trainable(model, settings.freeze_embeddings)
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    total_steps = min(settings.epochs * len(train_batches), settings.max_steps or 10**12)
    state = {"step": 0, "rows": [], "best_step": 0, "best_val_loss": None, "seconds": 0.0,
             "settings": settings.as_dict(), "train_batches": len(train_batches),
             "val_batches": len(val_batches)}
    pointer = ckpt.latest_checkpoint(checkpoint_dir) if checkpoint_dir and resume else None
    if pointer is not None:
        saved = ckpt.read_state(checkpoint_dir, pointer)
        mismatch = {k: (saved.get(k), state[k]) for k in ("settings", "train_batches", "val_batches")
                    if saved.get(k) != state[k]}
        if mismatch:
            raise _mismatch(checkpoint_dir, mismatch)
        state = ckpt.load_checkpoint(checkpoint_dir, model, optimizer, restore_random=False)
        for key in ("_rng_tensors", "rng", "param_groups"):  # no random state: dropout is off, order seeded
            state.pop(key, None)
        reference = _load_reference(checkpoint_dir)
        print(f"Resumed DPO from {checkpoint_dir} at step {state['step']}.")
    else:
        if checkpoint_dir:
            ckpt.remove_checkpoints(checkpoint_dir)
        reference = {"train": batch_logprobs(model, train_batches, device),
                     "val": batch_logprobs(model, val_batches, device)}
        if checkpoint_dir:
            _save_reference(checkpoint_dir, reference)
    best = ckpt.load_best(checkpoint_dir, state["best_step"]) if pointer is not None else None
    best = best or {k: v.detach().clone() for k, v in ckpt.trainable_state(model).items()}
    started = time.perf_counter() - state["seconds"]

    def evaluate_and_save(train_loss):
        row = {"step": state["step"], "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"],
               **evaluate_pairs(model, val_batches, reference["val"], settings.beta, device),
               "seconds": round(time.perf_counter() - started, 1)}
        state["rows"].append(row)
        if state["best_val_loss"] is None or row["val_loss"] < state["best_val_loss"]:
            state["best_val_loss"], state["best_step"] = row["val_loss"], state["step"]
            best.clear()
            best.update({k: v.detach().clone() for k, v in ckpt.trainable_state(model).items()})
            if checkpoint_dir:
                ckpt.save_best(checkpoint_dir, model, state["step"], row["val_loss"])
        state["seconds"] = time.perf_counter() - started
        if checkpoint_dir:
            ckpt.save_checkpoint(checkpoint_dir, state["step"], model, optimizer, state)

    if not state["rows"]:
        evaluate_and_save(train_loss=None)  # step 0: policy = reference, loss ln 2
    model.eval()  # dropout off: the policy is the reference model exactly at the start
    window = []
    while state["step"] < total_steps:
        epoch, index = divmod(state["step"], len(train_batches))
        batch_index = epoch_order(len(train_batches), settings.seed, epoch)[index]
        inputs, targets = train_batches[batch_index]
        inputs, targets = inputs.to(device), targets.to(device)
        with autocast(device):
            logprobs = sequence_logprobs(model, inputs, targets).float()  # (2B,)
        ref = reference["train"][batch_index].to(device)  # (2B,)
        half = len(logprobs) // 2
        loss, _ = dpo_loss(logprobs[:half], logprobs[half:], ref[:half], ref[half:], settings.beta)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"DPO loss is {loss.item()} at step {state['step'] + 1}: lower lr or "
                                     "beta; the last good checkpoint stays in the checkpoint folder")
        loss.backward()
        state["step"] += 1
        lr = learning_rate_at(state["step"], total_steps, settings.lr, settings.warmup_steps, settings.cosine)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, settings.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(loss.item())
        if state["step"] % settings.eval_every == 0 or state["step"] == total_steps:
            evaluate_and_save(train_loss=sum(window) / len(window))
            window = []
        if on_step is not None:
            on_step(state["step"], loss.item())
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in best.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))
    return DPOHistory(rows=state["rows"], best_step=state["best_step"], best_val_loss=state["best_val_loss"])


def _mismatch(folder, mismatch: dict) -> ValueError:
    return ValueError(f"Not resuming: the DPO checkpoint in {folder} is from a run with other settings or "
                      f"pairs: {mismatch}. Start over (resume=False) or write to another folder.")


def _save_reference(folder, reference: dict) -> None:
    tensors = {f"{split}.{i}": t for split, batches in reference.items() for i, t in enumerate(batches)}
    ckpt.atomic_save_tensors(Path(folder) / "reference_logprobs.safetensors", tensors)


def _load_reference(folder) -> dict:
    tensors = load_file(str(Path(folder) / "reference_logprobs.safetensors"))
    out = {"train": [], "val": []}
    for split in out:
        keys = sorted((k for k in tensors if k.startswith(split + ".")), key=lambda k: int(k.split(".")[1]))
        out[split] = [tensors[k] for k in keys]
    return out



def save_policy(folder, model, model_name: str, history: DPOHistory, settings: DPOSettings,
                sft_info: Mapping) -> Path:
    """Save the DPO-tuned weights where ``helpers.course.load_finetuned(model_name, folder=folder)`` finds
    them: ``<model>.safetensors`` (the trained parameters), ``<model>.json`` (the supervised run's settings,
    so the prompt style goes with it, plus the DPO settings and result) and ``<model>-dpo-history.json``."""
    folder = Path(folder)
    weights = folder / f"{model_name}.safetensors"
    with ckpt.folder_lock(folder, f"saving DPO-tuned {model_name}"):
        ckpt.save_weights(weights, model, {"model": model_name, "dpo": "true"})
        ckpt.atomic_write_json(folder / f"{model_name}-dpo-history.json", asdict(history))
        last = history.rows[-1] if history.rows else {"step": 0, "seconds": 0.0}
        ckpt.atomic_write_json(folder / f"{model_name}.json", {
            **{k: v for k, v in sft_info.items() if k in ("model", "settings", "records")},
            "weights": weights.name, "dpo_settings": settings.as_dict(),
            "best_val_loss": history.best_val_loss, "best_step": history.best_step, "steps": last["step"],
            "train_seconds": last["seconds"]})
    return weights


# ---- the whole pipeline (python -m helpers dpo) ---------------------------------------------------


class NoFinetunedModel(FileNotFoundError):
    """DPO starts from a supervised fine-tuned model, and there is none in the folder given."""


def run_dpo(model_name: str, sft_folder, out, settings: DPOSettings | None = None, *,
            n_pair_train: int = 200, n_pair_val: int = 48, max_new_tokens: int = 128, use_judge: bool = True,
            device=None) -> dict:
    """Notebook 09 without the notebook: the fine-tuned model answers training and validation records,
    the judge confirms its wrong answers (``use_judge``), :func:`make_pairs`, :func:`train_dpo` from the
    fine-tuned weights, :func:`save_policy` into ``out``. Returns the pair counts and the run's result.
    Answers, judge scores and checkpoints are saved in ``out``, so an interrupted run continues."""
    settings = settings or DPOSettings()
    model = load_finetuned(model_name, device=device, folder=sft_folder)
    if model is None:
        raise NoFinetunedModel(f"No fine-tuned {model_name} in {sft_folder}: DPO starts from a supervised "
                               "fine-tuned model. Run `python -m helpers finetune` (or notebook 04) "
                               "first, or pass --sft FOLDER.")
    out = Path(out)
    sft = FinetuneSettings(**{k: v for k, v in model.finetune_info["settings"].items()
                              if k in FinetuneSettings.__dataclass_fields__})
    splits = load_splits(sft, verbose=False)
    records = {"train": splits.train[:n_pair_train], "val": splits.val[:n_pair_val]}
    answers = {split: saved_or_generated(model, model.tokenizer, rows,
                                         model_name=f"{model_name} (fine-tuned)", style=sft.style,
                                         max_new_tokens=max_new_tokens, device=device,
                                         path=out / "pair_answers.json", progress=False)
               for split, rows in records.items()}
    scores = {split: None for split in records}
    if use_judge:
        with Judge() as judge:
            for split, rows in answers.items():
                disputed = [i for i, a in enumerate(rows)
                            if normalize_answer(a["response"]) != normalize_answer(a["output"])]
                scores[split] = [None] * len(rows)
                if disputed:
                    report = judge.score_records([rows[i] for i in disputed],
                                                 cache_path=out / "judge_scores.jsonl", progress=False)
                    for i, score in zip(disputed, report.scores):
                        scores[split][i] = score
    pairs = {split: make_pairs(records[split], answers[split], scores[split]) for split in records}
    batch = dict(batch_size=settings.batch_size, style=sft.style, allowed_max_length=sft.allowed_max_length)
    history = train_dpo(model, pair_batches(pairs["train"], model.tokenizer, **batch),
                        pair_batches(pairs["val"], model.tokenizer, **batch), settings,
                        checkpoint_dir=out / "checkpoints", resume=True, device=device)
    save_policy(out, model, model_name, history, settings, sft_info=model.finetune_info)
    counts = {split: {source: sum(p["source"] == source for p in ps) for source in {p["source"] for p in ps}}
              for split, ps in pairs.items()}
    first, last = history.rows[0], history.rows[-1]
    result = {"pairs": counts, "steps": last["step"], "seconds": last["seconds"],
              "val_loss": [first["val_loss"], history.best_val_loss],
              "val_accuracy": [first["val_accuracy"], last["val_accuracy"]], "best_step": history.best_step}
    print(f"DPO {model_name}: {sum(map(len, pairs.values()))} pairs {counts}; {last['step']} steps in "
          f"{last['seconds']:.0f} s; validation loss {first['val_loss']:.3f} -> best "
          f"{history.best_val_loss:.3f} (step {history.best_step}); saved to {out}")
    return result
