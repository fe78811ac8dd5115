"""Multiple-choice benchmarks (MMLU-style) scored by log-likelihood (taught in notebook 06).

    questions, report = load_mmlu_lm_eval()          # 282 MMLU questions shipped inside lm-eval's task YAMLs
    results = evaluate_multiple_choice(model, tok, questions, method="letter", k_shot=0)
    summary = accuracy_summary(results)                 # accuracy, Wilson 95 % interval, chance level
    plot_accuracy(summary)                              # bars with intervals and the chance line

How a question is scored (no text is generated; the model only *reads*):

- ``method="letter"``: the prompt lists the choices as ``A. ... B. ...`` and ends with ``Answer:``; each
  choice is scored by the log-probability of its letter (`` A``, `` B``, ...) right after the prompt.
- ``method="choice"``: the prompt ends with ``Answer:`` without listing the choices; each choice is scored
  by the log-probability of its full text as the continuation. This gives two scorings from one pass:
  ``choice`` (the sum over the choice's tokens) and ``choice_norm`` (that sum divided by the number of
  characters in the choice). The sum favours short choices, because every extra token multiplies in
  another probability below one; dividing by length removes that bias. We divide by characters rather
  than tokens so the score does not depend on the tokenizer (lm-eval's ``acc_norm`` does the same with bytes).

``k_shot`` puts k solved questions of the *same subject* (never the question itself) before the question.

Batching: all choices of one question share one body pass (one row per choice, right-padded; with a causal
model the padding after a row's last token cannot change that row's hidden states), and the output head runs
only at the positions that predict a choice token. When every choice is a single token (the letters), one
row suffices: one body pass of the prompt and one head call at its last position.

Online loaders for the full MMLU (and the other suites in ``helpers.suites``) read files placed locally
and download only when asked (``download=True``); offline they raise an error that says what to fetch and
where.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import pandas as pd
import torch

LETTERS = "ABCDEFGHIJ"
MMLU_TASK_SUBDIR = Path("tasks") / "mmlu" / "flan_cot_fewshot"
LM_EVAL_PIN = "lm-eval==0.4.13"


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MCQuestion:
    """One multiple-choice question: ``answer`` is the index of the right choice."""

    subject: str
    question: str
    choices: tuple[str, ...]
    answer: int
    source: str = ""  # where it came from, e.g. "mmlu_anatomy.yaml#2"

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer]


class BenchmarkDataMissing(FileNotFoundError):
    """Benchmark data is not installed or not placed locally; the message says what to fetch and where."""


def mmlu_task_dir() -> Path:
    """The folder of lm-eval's ``mmlu/flan_cot_fewshot`` YAMLs, found without importing lm-eval's code."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkDataMissing(
            "The MMLU questions ship inside the lm-eval package, which is not installed. We read its task "
            "files as data only, so install it without its heavy dependencies: pip install "
            f"--no-deps {LM_EVAL_PIN}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / MMLU_TASK_SUBDIR
    if not folder.is_dir():
        raise BenchmarkDataMissing(
            f"{folder} does not exist: this lm-eval version keeps its MMLU tasks elsewhere. "
            f"Install the version the course reads: pip install --no-deps {LM_EVAL_PIN}"
        )
    return folder


_CHOICE_MARK = re.compile(r"\(([A-J])\)\s*")
_ANSWER = re.compile(r"answer is \(?([A-J])\)?")


def parse_flan_sample(question_text: str, target: str, subject: str, source: str) -> MCQuestion:
    """One lm-eval few-shot sample -> :class:`MCQuestion`.

    ``question_text`` ends with a line ``(A) ... (B) ... (C) ... (D) ...``; ``target`` is a worked answer that
    ends ``The answer is (X).``. Raises ``ValueError`` naming ``source`` when either part does not parse.
    """
    start = question_text.rfind("(A)")
    if start < 0:
        raise ValueError(f"{source}: no '(A)' choice marker in the question text {question_text[-80:]!r}")
    stem, choice_text = question_text[:start].strip(), question_text[start:]
    pieces = _CHOICE_MARK.split(choice_text)  # ['', 'A', 'text', 'B', 'text', ...]
    letters, texts = pieces[1::2], [t.strip() for t in pieces[2::2]]
    if letters != list(LETTERS[: len(letters)]) or len(letters) < 2 or not all(texts):
        raise ValueError(f"{source}: choice markers {letters} are not A, B, C, ... in order "
                         "with text after each")
    answers = _ANSWER.findall(target)
    if not answers:
        raise ValueError(f"{source}: the target has no 'The answer is (X)': {target[-80:]!r}")
    answer = LETTERS.index(answers[-1])
    if answer >= len(texts):
        raise ValueError(f"{source}: answer ({answers[-1]}) but only {len(texts)} choices")
    if not stem:
        raise ValueError(f"{source}: empty question stem")
    return MCQuestion(subject=subject, question=stem, choices=tuple(texts), answer=answer, source=source)


def load_mmlu_lm_eval(subjects: list[str] | None = None) -> tuple[list[MCQuestion], dict]:
    """The MMLU questions inside lm-eval's ``flan_cot_fewshot`` task YAMLs, parsed as data.

    Each of the 57 subject files holds a handful of solved examples (282 in all in lm-eval 0.4.13); we take
    question, choices and answer letter and drop the worked reasoning. Returns ``(questions, report)`` with
    ``report = {"files", "samples", "parsed", "skipped": [(source, reason), ...], "folder"}``.
    """
    import yaml

    folder = mmlu_task_dir()
    files = sorted(folder.glob("mmlu_*.yaml"))
    if not files:
        raise BenchmarkDataMissing(f"No mmlu_*.yaml files in {folder}; reinstall: pip install "
                                   f"--no-deps {LM_EVAL_PIN}")
    questions, skipped, n_samples = [], [], 0
    for path in files:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        subject = spec.get("dataset_name") or path.stem.removeprefix("mmlu_")
        if subjects is not None and subject not in subjects:
            continue
        for i, sample in enumerate((spec.get("fewshot_config") or {}).get("samples") or []):
            n_samples += 1
            source = f"{path.name}#{i}"
            try:
                questions.append(parse_flan_sample(sample["question"], sample["target"], subject, source))
            except (KeyError, ValueError) as err:
                skipped.append((source, str(err)))
    report = {"files": len(files), "samples": n_samples, "parsed": len(questions), "skipped": skipped,
              "folder": str(folder)}
    return questions, report


def subject_title(subject: str) -> str:
    return subject.replace("_", " ")


# ----------------------------------------------------------------------------------------------------------
# Prompts
# ----------------------------------------------------------------------------------------------------------


def pick_shots(question: MCQuestion, pool: list[MCQuestion], k: int) -> list[MCQuestion]:
    """The first ``k`` other questions of the same subject in ``pool`` (deterministic; never the question
    itself)."""
    if k <= 0:
        return []
    same = [q for q in pool if q.subject == question.subject and q != question]
    return same[:k]


def _letter_block(q: MCQuestion) -> str:
    lines = [q.question] + [f"{LETTERS[i]}. {choice}" for i, choice in enumerate(q.choices)]
    return "\n".join(lines) + "\nAnswer:"


def _cloze_block(q: MCQuestion) -> str:
    return f"Question: {q.question}\nAnswer:"


def mc_prompt(question: MCQuestion, shots: list[MCQuestion] = (),
              method: str = "letter") -> tuple[str, list[str]]:
    """``(prompt, continuations)`` for one question; continuation i is what choice i would add after the
    prompt.

    ``letter``: the choices are listed and the continuations are `` A``, `` B``, ...;
    ``choice``: the choices are not listed and the continuations are `` <choice text>``.
    Solved shots come first, separated by blank lines, under one line naming the subject.
    """
    if method == "letter":
        header = ("The following are multiple choice questions (with answers) about "
                  f"{subject_title(question.subject)}.\n\n")
        solved = [f"{_letter_block(s)} {s.answer_letter}\n\n" for s in shots]
        return (header + "".join(solved) + _letter_block(question),
                [f" {LETTERS[i]}" for i in range(len(question.choices))])
    if method == "choice":
        header = f"The following are questions (with answers) about {subject_title(question.subject)}.\n\n"
        solved = [f"{_cloze_block(s)} {s.choices[s.answer]}\n\n" for s in shots]
        return header + "".join(solved) + _cloze_block(question), [f" {c}" for c in question.choices]
    raise ValueError(f"Unknown method {method!r}; choose 'letter' or 'choice'.")


# ----------------------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------------------


def _encode_context(tokenizer, text: str) -> list[int]:
    """Token ids of a prompt; models trained with a start token (Gemma's ``<bos>``) get it in front."""
    ids = list(tokenizer.encode(text))
    bos = getattr(tokenizer, "bos_id", None)
    if bos is not None and (not ids or ids[0] != bos):
        ids = [bos] + ids
    return ids


def _encode_continuation(tokenizer, text: str) -> list[int]:
    ids = list(tokenizer.encode(text))
    bos = getattr(tokenizer, "bos_id", None)
    if bos is not None and ids and ids[0] == bos:  # a tokenizer that adds <bos> by itself
        ids = ids[1:]
    if not ids:
        raise ValueError(f"The continuation {text!r} encodes to no tokens")
    return ids


def _context_limit(model) -> int | None:
    cfg = getattr(model, "cfg", None)
    return cfg.get("context_length") if isinstance(cfg, dict) else None


@torch.no_grad()
def continuation_logprobs(model, context_ids: list[int], continuations: list[list[int]],
                          pad_id: int = 0) -> list[float]:
    """Sum of log p(continuation tokens | context) for each continuation, in one body pass.

    Rows are ``context + continuation[:-1]`` (right-padded with ``pad_id``); the head runs only at the
    positions whose next token belongs to a continuation. If every continuation is one token, the rows are
    identical, so a single row is run and one head call at the last position scores them all.
    Contexts longer than the model's context length lose tokens from the left.
    """
    device = next(model.parameters()).device
    limit = _context_limit(model)
    longest = max(len(c) for c in continuations)
    if limit is not None and len(context_ids) + longest - 1 > limit:
        # the end of the prompt matters most
        context_ids = context_ids[len(context_ids) + longest - 1 - limit :]
    n_ctx = len(context_ids)
    if longest == 1:
        idx = torch.tensor([context_ids], device=device)  # (1, T)
        hidden = model.body(idx)[0, -1]  # (C,)
        logprobs = torch.log_softmax(model.head(hidden).float(), dim=-1)  # (V,)
        return [logprobs[c[0]].item() for c in continuations]

    rows = [context_ids + c[:-1] for c in continuations]
    width = max(len(r) for r in rows)
    idx = torch.full((len(rows), width), pad_id, dtype=torch.long, device=device)  # (B, T)
    for i, r in enumerate(rows):
        idx[i, : len(r)] = torch.tensor(r, device=device)
    hidden = model.body(idx)  # (B, T, C)
    row_of, pos_of, target_of = [], [], []
    for i, c in enumerate(continuations):
        for j, token in enumerate(c):
            row_of.append(i)
            pos_of.append(n_ctx - 1 + j)  # the position whose output predicts token j of the continuation
            target_of.append(token)
    row_t = torch.tensor(row_of, device=device)
    picked = hidden[row_t, torch.tensor(pos_of, device=device)]  # (N, C): only the positions we need
    logprobs = torch.log_softmax(model.head(picked).float(), dim=-1)  # (N, V)
    token_lp = logprobs.gather(1, torch.tensor(target_of, device=device)[:, None])[:, 0]  # (N,)
    sums = torch.zeros(len(continuations), device=device).index_add_(0, row_t, token_lp)
    return sums.tolist()


def score_question(model, tokenizer, question: MCQuestion, method: str = "letter",
                   shots: list[MCQuestion] = ()) -> dict:
    """Log-likelihood of every choice of one question; returns ``{scoring: list of scores}``.

    ``letter`` -> ``{"letter": [...]}``; ``choice`` -> ``{"choice": [...], "choice_norm": [...]}``.
    """
    prompt, continuations = mc_prompt(question, shots, method)
    context_ids = _encode_context(tokenizer, prompt)
    cont_ids = [_encode_continuation(tokenizer, c) for c in continuations]
    sums = continuation_logprobs(model, context_ids, cont_ids, pad_id=getattr(tokenizer, "pad_id", 0))
    if method == "letter":
        return {"letter": sums}
    return {"choice": sums, "choice_norm": [s / len(c.strip()) for s, c in zip(sums, continuations)]}


def evaluate_multiple_choice(
    model,
    tokenizer,
    questions: list[MCQuestion],
    *,
    method: str = "letter",
    k_shot: int = 0,
    shot_pool: list[MCQuestion] | None = None,
    model_name: str = "model",
    progress: bool = False,
) -> pd.DataFrame:
    """Score every question; one row per (question, scoring) with the predicted choice and whether it is
    right.

    Columns: ``model, scoring, k_shot, subject, source, answer, predicted, correct, n_choices, scores``.
    Shots come from ``shot_pool`` (default: ``questions``), same subject, never the question itself.
    """
    pool = questions if shot_pool is None else shot_pool
    was_training = model.training
    model.eval()
    rows = []
    iterator = questions
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(questions, desc=f"{model_name} {method} {k_shot}-shot")
    try:
        for q in iterator:
            shots = pick_shots(q, pool, k_shot)
            for scoring, scores in score_question(model, tokenizer, q, method, shots).items():
                predicted = max(range(len(scores)), key=scores.__getitem__)
                rows.append(
                    {
                        "model": model_name,
                        "scoring": scoring,
                        "k_shot": len(shots),
                        "subject": q.subject,
                        "source": q.source,
                        "answer": q.answer,
                        "predicted": predicted,
                        "correct": predicted == q.answer,
                        "n_choices": len(q.choices),
                        "scores": [round(s, 4) for s in scores],
                    }
                )
    finally:
        model.train(was_training)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# Statistics and plots
# ----------------------------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (stays inside [0, 1], sensible at 0 or n successes)."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must lie between 0 and n={n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the edges (no rounding residue)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def accuracy_summary(results: pd.DataFrame, by: tuple[str, ...] = ("model", "scoring", "k_shot"),
                     confidence: float = 0.95) -> pd.DataFrame:
    """Accuracy per group with a Wilson interval and the chance level (mean of 1 / number of choices)."""
    by = [c for c in by if c in results.columns]
    out = []
    for key, group in results.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        n, right = len(group), int(group["correct"].sum())
        low, high = wilson_interval(right, n, confidence)
        out.append({**dict(zip(by, key)), "n": n, "correct": right, "accuracy": right / n, "ci_low": low,
                    "ci_high": high, "chance": float((1 / group["n_choices"]).mean())})
    return pd.DataFrame(out)


def paired_counts(results: pd.DataFrame, model_a: str, model_b: str, scoring: str,
                  k_shot: int | None = None) -> dict:
    """On the same questions: how many both got right, only A, only B, neither (a paired view of A vs B)."""
    sel = results[results["scoring"] == scoring]
    if k_shot is not None:
        sel = sel[sel["k_shot"] == k_shot]
    a = sel[sel["model"] == model_a].set_index("source")["correct"]
    b = sel[sel["model"] == model_b].set_index("source")["correct"]
    common = a.index.intersection(b.index)
    a, b = a[common], b[common]
    return {"questions": len(common), "both": int((a & b).sum()), f"only {model_a}": int((a & ~b).sum()),
            f"only {model_b}": int((~a & b).sum()), "neither": int((~a & ~b).sum())}


def letter_distribution(results: pd.DataFrame, scoring: str = "letter") -> pd.DataFrame:
    """How often each letter is predicted, per (model, k_shot), next to how often it is the right answer.

    One row per letter; columns ``"<model> <k>-shot"`` (predicted shares) and ``"true answers"``. A model that
    picks one letter on most questions scores about that letter's share of right answers, knowledge or not.
    """
    sel = results[results["scoring"] == scoring]
    n_letters = int(sel["n_choices"].max())
    table = {}
    for (model, k), group in sel.groupby(["model", "k_shot"], sort=False):
        counts = group["predicted"].value_counts(normalize=True)
        table[f"{model} {k}-shot"] = [float(counts.get(i, 0.0)) for i in range(n_letters)]
    first = sel.drop_duplicates("source")
    truth = first["answer"].value_counts(normalize=True)
    table["true answers"] = [float(truth.get(i, 0.0)) for i in range(n_letters)]
    return pd.DataFrame(table, index=list(LETTERS[:n_letters]))


def plot_letter_distribution(distribution: pd.DataFrame, ax=None, title: str = "Which letter is predicted?"):
    """Grouped bars: the share of each predicted letter per run, and the share of right answers per letter."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    columns = list(distribution.columns)
    width = 0.8 / len(columns)
    for c_i, column in enumerate(columns):
        x = [i + (c_i - (len(columns) - 1) / 2) * width for i in range(len(distribution))]
        truth = column == "true answers"
        ax.bar(x, distribution[column], width, label=column, color="black" if truth else None,
               alpha=0.35 if truth else 0.85)
    ax.set_xticks(range(len(distribution)), distribution.index)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of questions")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def rotate_choices(question: MCQuestion, shift: int) -> MCQuestion:
    """The question with its choices moved ``shift`` places down (the last ones wrap to the top)."""
    n = len(question.choices)
    shift %= n
    choices = question.choices[n - shift :] + question.choices[: n - shift]
    return MCQuestion(question.subject, question.question, choices, (question.answer + shift) % n,
                      f"{question.source}@{shift}")


def evaluate_circular(model, tokenizer, questions: list[MCQuestion], model_name: str = "model",
                      results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Letter scoring, 0-shot, with every question asked once per position of its right answer.

    Rotation 0 is the question as written; its rows are taken from ``results`` (an earlier letter 0-shot run
    of this model) when given, so that run is not repeated. One row per (question, rotation), with the
    columns of :func:`evaluate_multiple_choice` plus ``question`` (the unrotated source) and ``rotation``.
    """
    parts = []
    for shift in range(max(len(q.choices) for q in questions)):
        asked = [q for q in questions if shift < len(q.choices)]
        earlier = None
        if shift == 0 and results is not None:
            earlier = results[(results["model"] == model_name) & (results["scoring"] == "letter")
                              & (results["k_shot"] == 0)]
            earlier = earlier if set(earlier["source"]) >= {q.source for q in asked} else None
        if earlier is not None:
            part = earlier[earlier["source"].isin({q.source for q in asked})].copy()
            part["question"] = part["source"]
        else:
            rotated = [rotate_choices(q, shift) for q in asked]
            part = evaluate_multiple_choice(model, tokenizer, rotated, method="letter", model_name=model_name)
            part["question"] = [q.source for q in asked]
        part["rotation"] = shift
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def circular_summary(circular: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per model: plain accuracy (rotation 0), *circular* accuracy (right in every rotation, Wilson interval)
    and the mean accuracy over rotations (percentile bootstrap over questions), with their chance levels."""
    import numpy as np

    out = []
    for model, group in circular.groupby("model", sort=False):
        per_question = group.groupby("question")["correct"]
        all_right, mean_right = per_question.all(), per_question.mean()
        n, right = len(all_right), int(all_right.sum())
        plain = group[group["rotation"] == 0]
        n_choices = group.groupby("question")["n_choices"].first()
        rng = np.random.default_rng(123)
        values = mean_right.to_numpy(dtype=float)
        boots = values[rng.integers(0, n, size=(2000, n))].mean(axis=1)
        tail = (1 - confidence) / 2
        out.append({
            "model": model, "questions": n,
            "plain": float(plain["correct"].mean()),
            "circular": right / n, "circular_ci": wilson_interval(right, n, confidence),
            "circular_chance": float((1.0 / n_choices ** n_choices).mean()),
            "mean_over_rotations": float(values.mean()),
            "mean_ci": (float(np.quantile(boots, tail)), float(np.quantile(boots, 1 - tail))),
            "chance": float((1.0 / n_choices).mean()),
        })
    return pd.DataFrame(out)


def plot_accuracy(summary: pd.DataFrame, label_cols: tuple[str, ...] = ("model", "scoring", "k_shot"),
                  ax=None, title: str = "Multiple-choice accuracy"):
    """Horizontal bars of accuracy with their intervals, and the chance line drawn on top."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(summary) + 1.2))
    cols = [c for c in label_cols if c in summary.columns]
    labels = [" · ".join(f"{v}-shot" if c == "k_shot" else str(v) for c, v in zip(cols, row))
              for row in summary[cols].itertuples(index=False)]
    y = range(len(summary))
    acc = summary["accuracy"].to_numpy()
    err = [acc - summary["ci_low"].to_numpy(), summary["ci_high"].to_numpy() - acc]
    ax.barh(list(y), acc, xerr=err, color="tab:blue", alpha=0.75, capsize=3)
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    chance = float(summary["chance"].mean()) if "chance" in summary else 0.25
    ax.axvline(chance, color="tab:red", linestyle="--", label=f"chance ({chance:.0%})")
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy (bars: 95 % Wilson interval)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return ax


def plot_subject_accuracy(results: pd.DataFrame, scoring: str = "letter", ax=None, title: str | None = None):
    """Accuracy per subject (one marker per model) with intervals and the chance line; few questions -> wide
    bars."""
    import matplotlib.pyplot as plt

    sel = results[results["scoring"] == scoring]
    per = accuracy_summary(sel, by=("subject", "model"))
    subjects = list(dict.fromkeys(per["subject"]))
    models = list(dict.fromkeys(per["model"]))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.22 * len(subjects) + 1.5))
    for m_i, model in enumerate(models):
        part = per[per["model"] == model].set_index("subject").reindex(subjects)
        y = [s + (m_i - (len(models) - 1) / 2) * 0.3 for s in range(len(subjects))]
        acc = part["accuracy"].to_numpy()
        ax.errorbar(acc, y, xerr=[acc - part["ci_low"].to_numpy(), part["ci_high"].to_numpy() - acc], fmt="o",
                    ms=3, capsize=2, label=model)
    ax.set_yticks(range(len(subjects)), [subject_title(s) for s in subjects], fontsize=7)
    ax.invert_yaxis()
    chance = float((1 / sel["n_choices"]).mean())
    ax.axvline(chance, color="tab:red", linestyle="--", label=f"chance ({chance:.0%})")
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy per subject (95 % Wilson interval)")
    ax.set_title(title or f"Per-subject accuracy ({scoring})")
    ax.legend(loc="lower right", fontsize=8)
    return ax


# ----------------------------------------------------------------------------------------------------------
# Online loaders (full MMLU; see helpers.suites for the other suites)
# ----------------------------------------------------------------------------------------------------------

MMLU_FULL_URL = "https://people.eecs.berkeley.edu/~hendrycks/data.tar"


def fetch_file(url: str, destination: Path, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``destination`` (only when a caller passed ``download=True``)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(destination.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise BenchmarkDataMissing(
            f"Could not download {url} ({err}). Without internet, download it on a connected machine and "
            f"place it at {destination}"
        ) from err
    partial.replace(destination)
    return destination


def load_mmlu_full(path: str | Path | None = None, split: str = "test",
                   download: bool = False) -> list[MCQuestion]:
    """The full MMLU (14,042 test questions) from the original CSV release (Hendrycks et al.).

    ``path``: the release's ``data.tar`` or the folder it unpacks to (holding ``test/*_test.csv``);
    default ``cache_dir("benchmarks")/mmlu/data.tar``. With ``download=True`` a missing file is fetched
    from ``MMLU_FULL_URL``; otherwise a missing file raises an error naming the URL and the place to put it.
    """
    from helpers.config import cache_dir

    target = Path(path) if path is not None else cache_dir("benchmarks", "mmlu") / "data.tar"
    if not target.exists():
        if not download:
            raise BenchmarkDataMissing(
                f"Full MMLU is not here: {target} does not exist. It is an online-only download (166 MB): "
                f"fetch {MMLU_FULL_URL} and put it at {target} (or pass path= to the unpacked folder), or "
                "call load_mmlu_full(download=True) on a machine with internet. The 282 questions inside "
                "lm-eval work offline: load_mmlu_lm_eval()."
            )
        fetch_file(MMLU_FULL_URL, target)

    def parse_rows(name: str, text: str) -> list[MCQuestion]:
        subject = Path(name).name.removesuffix(f"_{split}.csv")
        out = []
        for i, row in enumerate(csv.reader(io.StringIO(text))):
            if len(row) != 6 or row[5].strip() not in "ABCD":
                raise ValueError(f"{name} row {i}: expected question, 4 choices and a "
                                 f"letter, got {row!r:.120}")
            out.append(MCQuestion(subject, row[0], tuple(row[1:5]), "ABCD".index(row[5].strip()),
                                  f"{Path(name).name}#{i}"))
        return out

    questions: list[MCQuestion] = []
    if target.is_dir():
        files = (sorted((target / split).glob(f"*_{split}.csv"))
                 or sorted(target.glob(f"**/{split}/*_{split}.csv")))
        for f in files:
            questions += parse_rows(f.name, f.read_text(encoding="utf-8"))
    else:
        with tarfile.open(target) as tar:
            members = sorted((m for m in tar.getmembers() if m.isfile() and Path(m.name).parent.name == split
                              and m.name.endswith(f"_{split}.csv")), key=lambda m: m.name)
            for m in members:
                questions += parse_rows(m.name, tar.extractfile(m).read().decode("utf-8"))
    if not questions:
        raise BenchmarkDataMissing(f"No '{split}/*_{split}.csv' files found in {target}; is it the "
                                   "MMLU data.tar release?")
    return questions


def read_records(path: Path) -> list[dict]:
    """Records from a local ``.json`` (a list, or ``{"data": [...]}``), ``.jsonl``, ``.csv`` or ``.parquet``
    file."""
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".jsonl.gz") else path.suffix
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, list) else data.get("data", [data])
    if suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if suffix == ".jsonl.gz":
        import gzip

        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if suffix == ".csv":
        return pd.read_csv(path).to_dict("records")
    if suffix == ".parquet":
        try:
            return pd.read_parquet(path).to_dict("records")
        except ImportError as err:
            raise ImportError(f"Reading {path} needs a parquet engine: pip install pyarrow") from err
    raise ValueError(f"{path}: unsupported file type {suffix!r} (use .json, .jsonl, "
                     ".jsonl.gz, .csv or .parquet)")


# ----------------------------------------------------------------------------------------------------------
# Pairwise win rate by response length (AlpacaEval-style view of helpers.judge.pairwise_compare)
# ----------------------------------------------------------------------------------------------------------

LENGTH_BINS = ((0.0, 0.8, "B shorter (< 0.8x)"), (0.8, 1.25, "similar (0.8-1.25x)"),
               (1.25, float("inf"), "B longer (> 1.25x)"))


def win_rate_by_length(outcomes, responses_a, responses_b, bins=LENGTH_BINS,
                       confidence: float = 0.95) -> pd.DataFrame:
    """B's win rate within bins of the length ratio len(B) / len(A) (in words), plus a length-controlled mean.

    ``outcomes`` per record: 1 = B wins, 0 = A wins, 0.5 = tie (as in ``PairwiseResult.outcomes``). Judges
    tend to prefer longer answers; if B wins mostly where it is longer, its overall win rate measures length
    as much as quality. The last row, ``length-controlled``, averages the non-empty bins with equal weight
    (a simple stand-in for AlpacaEval 2.0's regression-based correction). Intervals: percentile bootstrap
    over the records of each bin, as for the overall win rate (outcomes may be soft preferences, not counts).
    """
    from helpers.judge import bootstrap_ci

    if not len(outcomes) == len(responses_a) == len(responses_b):
        raise ValueError(f"need one outcome per response pair: {len(outcomes)} outcomes, {len(responses_a)} "
                         f"A, {len(responses_b)} B")
    ratios = [max(len(b.split()), 1) / max(len(a.split()), 1) for a, b in zip(responses_a, responses_b)]
    rows = []
    for low, high, label in bins:
        inside = [o for o, r in zip(outcomes, ratios) if low <= r < high]
        n = len(inside)
        rate, ci_low, ci_high = bootstrap_ci(inside, level=confidence) if n else (float("nan"),) * 3
        rows.append({"bin": label, "n": n, "win_rate": rate, "ci_low": ci_low, "ci_high": ci_high})
    filled = [r["win_rate"] for r in rows if r["n"]]
    n_all = len(outcomes)
    rate, ci_low, ci_high = bootstrap_ci(outcomes, level=confidence)
    rows.append({"bin": "all records", "n": n_all, "win_rate": rate, "ci_low": ci_low, "ci_high": ci_high})
    rows.append({"bin": "length-controlled", "n": n_all, "win_rate": sum(filled) / len(filled),
                 "ci_low": float("nan"), "ci_high": float("nan")})
    return pd.DataFrame(rows)


def plot_win_rate_by_length(table: pd.DataFrame, name_b: str = "B", name_a: str = "A", ax=None):
    """Bars of B's win rate per length bin, overall and length-controlled, with the 50 % (no preference)
    line."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 * len(table) + 1.2))
    rates = table["win_rate"].fillna(0).to_numpy()
    low = (rates - table["ci_low"]).fillna(0).clip(lower=0).to_numpy()
    high = (table["ci_high"] - rates).fillna(0).clip(lower=0).to_numpy()
    labels = [f"{b} (n={n})" for b, n in zip(table["bin"], table["n"])]
    ax.barh(labels, rates, xerr=[low, high], color="tab:purple", alpha=0.75, capsize=3)
    ax.invert_yaxis()
    ax.axvline(0.5, color="tab:red", linestyle="--", label="no preference (50 %)")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"win rate of {name_b} against {name_a} (ties count half; 95 % bootstrap interval)")
    ax.set_title("Pairwise win rate, by response length ratio")
    ax.legend(loc="lower right")
    return ax
