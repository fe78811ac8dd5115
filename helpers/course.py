"""The course as one job: fine-tune without notebooks, and run every notebook headless (notebook 04).

- :class:`FinetuneSettings`  the knobs of a fine-tuning run, with the course's defaults (full and FAST).
- :func:`finetune`           data -> splits -> model -> loaders -> :func:`helpers.training.train` -> saved
                             weights, history, loss plot, test-set responses. ``python -m helpers finetune``.
- :func:`load_finetuned`     this run's fine-tuned model, or None (notebooks 05 and 06 use it).
- :func:`finetuned_or_train` the fine-tuned model, training it first when it is missing.
- :func:`run_course`         ``make course``: notebooks 01..06 in order under ``runs/<timestamp>/``,
                             finished stages reused, ``summary.md`` at the end. ``python -m helpers course``.

Files of a fine-tuning run (``folder`` = ``run_path("finetuned")`` unless given):

    finetuned/<model>.safetensors   trained parameters (the frozen rest comes from the base model)
    finetuned/<model>.json          settings, history summary, best epoch, prompt style
    finetuned/<model>-history.json|csv   one row per evaluation;  finetuned/<model>-loss.png  the loss plot
    finetuned/checkpoints/<model>/  resumable checkpoints (``resume=True`` continues after a crash)
    finetuned/<model>-test_responses.json   the fine-tuned model's answers to the test split (CLI)
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from helpers.checkpoints import atomic_write_json, folder_lock, save_weights
from helpers.config import FAST, REPO_ROOT, RUNS_DIR, pick_device, run_path, set_seed
from helpers.data import PROMPT_STYLES
from helpers.plots import plot_losses
from helpers.registry import DEFAULT_MODEL, load_tokenizer
from helpers.training import knob_problems


@dataclass
class FinetuneSettings:
    """Everything that decides a fine-tuning run. ``FinetuneSettings.for_mode()`` picks FAST or full sizes."""

    model: str = DEFAULT_MODEL
    data: str | None = None  # a JSON/JSONL file; None = the course's data set (data/course-instructions.json)
    n_records: int | None = None  # use only about N records, taken from each split of the full split; None = all
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
    eval_batches: int | None = 5
    patience: int | None = 3
    freeze_embeddings: bool = True
    train_last_n_blocks: int | None = None
    max_steps: int | None = None
    seed: int = 123
    max_new_tokens: int = 96  # for the test-set responses
    n_test_responses: int | None = None  # None = the whole test split
    fast: bool = False  # FAST sizes (set by for_mode); saved with the results so they never pass for a full run

    @classmethod
    def for_mode(cls, fast: bool = FAST, **overrides) -> "FinetuneSettings":
        """Full-mode defaults, or FAST-mode sizes (a few steps on a handful of records; same code path)."""
        if fast:
            fast_sizes = dict(n_records=48, batch_size=4, epochs=1, max_steps=6, eval_every=3, eval_batches=2,
                              train_last_n_blocks=2, warmup_steps=0, lr=1e-4, allowed_max_length=128,
                              max_new_tokens=24, n_test_responses=4, patience=None)
            overrides = {**fast_sizes, **overrides}
        return cls(**{**overrides, "fast": fast})

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def problems(self) -> list[str]:
        """Settings that would make a run learn nothing or crash, each named by its command-line option."""
        found = knob_problems(self.as_dict())
        if self.style not in PROMPT_STYLES:
            found.append(f"style={self.style!r} is not one of {sorted(PROMPT_STYLES)}")
        return [f"{option_name(p.split('=')[0])} ({p})" for p in found]


class SettingsError(ValueError):
    """A setting or data file that would make a run learn nothing; the message names it and the fix."""


def option_name(setting: str) -> str:
    """The ``python -m helpers finetune`` option of a :class:`FinetuneSettings` field."""
    return {"allowed_max_length": "--max-length", "cosine": "--no-cosine"}.get(setting, "--" + setting.replace("_", "-"))


# ---- the pieces -----------------------------------------------------------------------------------


def load_model(name: str, device=None):
    """``(model, tokenizer)`` from the model registry (``helpers.registry``)."""
    from helpers.registry import load_model as registry_load

    return registry_load(name, device=device)


def load_splits(settings: FinetuneSettings, verbose: bool = True):
    """Records from ``settings.data`` (or the course's data set), split 85/5/10 as in notebook 01.

    ``settings.n_records`` (FAST mode) keeps a handful from *each* split of that same split, so a FAST run
    never trains on a record of the course's test split.
    """
    from helpers.data import Splits, load_course_data, load_records, split_records

    records = load_records(settings.data) if settings.data else load_course_data()
    splits = split_records(records, seed=settings.seed, verbose=verbose and not settings.n_records)
    if settings.n_records:
        n = settings.n_records
        splits = Splits(train=splits.train[: max(1, int(n * 0.85))], val=splits.val[: max(4, int(n * 0.05))],
                        test=splits.test[: max(4, int(n * 0.10))])
        if verbose:
            print(f"Using {n} records taken from each split of the full split: {splits.describe()}")
    empty = [name for name, size in splits.sizes().items() if size == 0]
    if empty:
        raise SettingsError(
            f"{settings.data or 'the course data set'}: {len(records)} record(s) leave the {' and '.join(empty)} "
            f"split(s) empty (split 85/5/10). Fine-tuning needs at least 10 records (a few hundred to learn "
            "anything): add records to the file.")
    return splits


def check_supervision(loaders, settings: FinetuneSettings) -> dict:
    """What ``allowed_max_length`` and masking leave to learn in each split; fails when nothing is left.

    Returns :meth:`helpers.batching.Loaders.supervision` (saved with the run) and prints what truncation cuts.
    """
    report = loaders.supervision()
    for split in ("train", "val"):
        if report[split]["supervised_targets"] == 0:
            longest = max(getattr(getattr(loaders, split).dataset, "lengths", [0]))
            raise SettingsError(
                f"The {split} split has no token to learn from: {option_name('allowed_max_length')} "
                f"{settings.allowed_max_length} cuts every example inside its prompt (the longest example has "
                f"{longest} tokens{', prompt masked' if settings.mask_instructions else ''}). Raise --max-length.")
    for split, r in report.items():
        if r["records_cut"]:
            print(f"{split}: --max-length {settings.allowed_max_length} cuts {r['records_cut']} of {r['records']} "
                  f"records, losing {r['targets_cut']:,} of {r['targets_cut'] + r['supervised_targets']:,} "
                  f"supervised target tokens ({r['records_without_targets']} records keep none).")
    return report


def build_loaders(splits, tokenizer, settings: FinetuneSettings):
    from helpers.batching import make_loaders

    return make_loaders(splits, tokenizer, batch_size=settings.batch_size, style=settings.style,
                        mask_instructions=settings.mask_instructions,
                        allowed_max_length=settings.allowed_max_length, seed=settings.seed)


def train_with_settings(model, loaders, settings: FinetuneSettings, checkpoint_dir=None, resume=True,
                        device=None, progress=True, live_plot=False):
    """:func:`helpers.training.train` with the knobs of ``settings``."""
    from helpers.training import train

    return train(model, loaders, epochs=settings.epochs, lr=settings.lr, weight_decay=settings.weight_decay,
                 warmup_steps=settings.warmup_steps, cosine=settings.cosine, grad_clip=settings.grad_clip,
                 grad_accum=settings.grad_accum, seed=settings.seed, eval_every=settings.eval_every,
                 eval_batches=settings.eval_batches, patience=settings.patience,
                 freeze_embeddings=settings.freeze_embeddings, train_last_n_blocks=settings.train_last_n_blocks,
                 checkpoint_dir=checkpoint_dir, resume=resume, device=device, progress=progress,
                 live_plot=live_plot, max_steps=settings.max_steps)


def finetuned_folder(folder=None) -> Path:
    return Path(folder) if folder is not None else run_path("finetuned", "x").parent


def checkpoints_folder(model_name: str, folder=None) -> Path:
    """Where the resumable checkpoints of ``model_name``'s fine-tuning run live."""
    return finetuned_folder(folder) / "checkpoints" / model_name


def save_finetuned(model, history, settings: FinetuneSettings, folder=None, extra: dict | None = None) -> Path:
    """Save the trained weights, history (JSON + CSV), loss plot and a JSON description; returns the weights path."""
    folder = finetuned_folder(folder)
    with folder_lock(folder, f"saving fine-tuned {settings.model}"):
        return _save_finetuned(model, history, settings, folder, extra)


def _save_finetuned(model, history, settings, folder: Path, extra) -> Path:
    weights = folder / f"{settings.model}.safetensors"
    save_weights(weights, model, {"model": settings.model})
    history.save(folder / f"{settings.model}-history.json")
    history.to_frame().to_csv(folder / f"{settings.model}-history.csv", index=False)
    import matplotlib.pyplot as plt

    fig = plot_losses(history, path=folder / f"{settings.model}-loss.png", title=f"Fine-tuning {settings.model}")
    plt.close(fig)
    first, last = history.rows[0], history.final
    atomic_write_json(folder / f"{settings.model}.json", {
        "model": settings.model, "weights": weights.name, "settings": settings.as_dict(),
        "initial_val_loss": first["val_loss"], "initial_train_loss": first["train_loss"],
        "best_val_loss": history.best_val_loss, "best_step": history.best_step, "best_epoch": history.best_epoch,
        "overfit_epoch": history.overfit_epoch, "stopped_early": history.stopped_early,
        "final_train_loss": last["train_loss"], "final_val_loss": last["val_loss"], "steps": last["step"],
        "epochs": last["epoch"], "tokens_seen": last["tokens_seen"], "train_seconds": last["seconds"],
        "fast": settings.fast, **(extra or {}),
    })
    return weights


def load_finetuned(model_name: str = DEFAULT_MODEL, device=None, folder=None):
    """The fine-tuned ``model_name`` saved by this run (notebook 04 / ``make course``), or None if missing.

    The base model comes from the registry and the trained parameters are copied over it. The returned
    model carries ``model.tokenizer`` and ``model.finetune_info`` (the settings and losses of the run,
    including the prompt ``style`` to use when asking it something).
    """
    from helpers.checkpoints import load_weights

    folder = finetuned_folder(folder)
    weights, info_path = folder / f"{model_name}.safetensors", folder / f"{model_name}.json"
    if not (weights.exists() and info_path.exists()):
        return None
    model, tokenizer = load_model(model_name, device=device)
    load_weights(weights, model)
    model.eval()
    model.tokenizer = tokenizer
    model.finetune_info = json.loads(info_path.read_text())
    return model


def finetuned_or_train(model_name: str = DEFAULT_MODEL, device=None, folder=None, **overrides):
    """:func:`load_finetuned`, or fine-tune first (FAST-sized in FAST mode) when nothing is saved. Prints which."""
    model = load_finetuned(model_name, device=device, folder=folder)
    where = finetuned_folder(folder)
    if model is not None:
        info = model.finetune_info
        print(f"Using the fine-tuned {model_name} from {where} (best val loss {info['best_val_loss']:.3f} "
              f"at epoch {info['best_epoch']:.2f}).")
        return model
    print(f"No fine-tuned {model_name} in {where}: training it now ({'FAST' if FAST else 'full'} mode).")
    finetune(FinetuneSettings.for_mode(model=model_name, **overrides), folder=folder, device=device,
             test_responses=False)
    return load_finetuned(model_name, device=device, folder=folder)


def answer_test_split(model, tokenizer, records, settings: FinetuneSettings, path=None, batch_size: int = 8) -> list[dict]:
    """Greedy answers to ``records`` in ``helpers.review``'s response format; saved as JSON when ``path`` is given."""
    from helpers.review import generate_responses, save_responses

    rows = generate_responses(model, tokenizer, records, style=settings.style, model_name=f"{settings.model} (fine-tuned)",
                              max_new_tokens=settings.max_new_tokens, batch_size=batch_size, progress=False)
    if path is not None:
        save_responses(rows, path)
    return rows


def finetune(settings: FinetuneSettings, folder=None, device=None, resume: bool = True, progress: bool = True,
             test_responses: bool = True) -> dict:
    """The whole fine-tuning pipeline without notebooks; returns the JSON description it saved.

    Settings, data and what truncation leaves to learn are checked before the model loads; the output
    folder is locked for the whole run; the weights are saved before the steps that come after training.
    """
    problems = settings.problems()
    if problems:
        raise SettingsError("These settings would make the run learn nothing or crash:\n  - " + "\n  - ".join(problems))
    folder = finetuned_folder(folder)
    with folder_lock(folder, f"fine-tuning {settings.model}"):
        return _finetune(settings, folder, device, resume, progress, test_responses)


def _finetune(settings: FinetuneSettings, folder: Path, device, resume: bool, progress: bool, test_responses: bool) -> dict:
    from helpers.training import evaluate

    device = device or pick_device()
    t0 = time.perf_counter()
    set_seed(settings.seed)
    splits = load_splits(settings)
    loaders = build_loaders(splits, load_tokenizer(settings.model), settings)
    supervision = check_supervision(loaders, settings)
    model, tokenizer = load_model(settings.model, device=device)
    print(f"{settings.model} on {device}; {loaders.describe()}")
    history = train_with_settings(model, loaders, settings, checkpoint_dir=checkpoints_folder(settings.model, folder), resume=resume,
                                  device=device, progress=progress)
    history.data = supervision
    print(history.summary())
    extra = {"device": str(device), "records": splits.sizes(), "supervision": supervision,
             "test_responses": None, "test_responses_note": "not generated (test_responses=False, --no-test-responses)"}
    save_finetuned(model, history, settings, folder, extra)  # first: nothing after this can lose the weights
    extra["test_loss"] = evaluate(model, list(loaders.test), device)
    if test_responses:
        n = min(settings.n_test_responses or len(splits.test), len(splits.test))
        t_gen = time.perf_counter()
        answer_test_split(model, tokenizer, splits.test[:n], settings, path=folder / f"{settings.model}-test_responses.json")
        extra.update(test_responses=n, test_responses_note=f"{settings.model}-test_responses.json",
                     generation_seconds=round(time.perf_counter() - t_gen, 1))
    extra.update(peak_rss_gb=round(peak_rss_gb(), 2), total_seconds=round(time.perf_counter() - t0, 1))
    info = update_finetuned_info(folder, settings.model, extra)
    print(f"Saved to {folder}: {settings.model}.safetensors, .json, -history.json/csv, -loss.png"
          + (", -test_responses.json" if test_responses else ""))
    return info


def update_finetuned_info(folder, model_name: str, extra: dict) -> dict:
    """Merge ``extra`` into the run's ``<model>.json`` description; returns the new description."""
    path = finetuned_folder(folder) / f"{model_name}.json"
    info = {**json.loads(path.read_text()), **extra}
    atomic_write_json(path, info)
    return json.loads(path.read_text())


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (Linux/macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9


# ---- make course ----------------------------------------------------------------------------------

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def course_stages(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Notebooks 01..06 that exist (not the solutions), in order."""
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb") if not p.stem.endswith("-solutions"))
    return [p for p in found if 1 <= int(p.name[:2]) <= 6]


def _stage_key(path: Path) -> str:
    return path.name[:2]


def latest_run(fast: bool = False, runs_dir: Path | None = None) -> Path | None:
    """The newest ``runs/<timestamp>/`` of this mode (``-fast`` suffix or not) that has a ``course.json``."""
    for folder in sorted((runs_dir or RUNS_DIR).glob("20*"), reverse=True):
        if folder.name.endswith("-fast") == fast and (folder / "course.json").exists():
            return folder
    return None


def run_course(redo: list[str] | None = None, fast: bool = False, new: bool = False, run_dir=None,
               timeout: int | None = None, stages: list[Path] | None = None) -> Path:
    """Execute the notebooks in order, headless, into one run folder; returns the folder.

    ``redo``: stage numbers (``"04"`` or ``"4"``) or ``"all"`` to execute again although finished.
    ``fast``: COURSE_FAST=1 in the kernels (a quick check of the pipeline, into ``runs/<timestamp>-fast``).
    ``new``: start a new folder; otherwise the latest run of this mode is continued (finished or not), so
    finished stages are reused and only ``redo`` stages and unfinished ones run.
    """
    import nbformat
    from nbclient import NotebookClient

    stages = stages if stages is not None else course_stages()
    redo_keys = {"all"} if redo and "all" in redo else {r.zfill(2) for r in (redo or [])}
    if run_dir is None:
        run_dir = None if new else latest_run(fast)
        run_dir = run_dir or RUNS_DIR / (time.strftime("%Y%m%d-%H%M%S") + ("-fast" if fast else ""))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    status_path = run_dir / "course.json"
    status = json.loads(status_path.read_text()) if status_path.exists() else {"stages": {}, "finished": False}
    status["fast"] = fast
    print(f"Course run folder: {run_dir}  ({'FAST' if fast else 'full'} mode, {len(stages)} notebooks)")
    env_before = {k: os.environ.get(k) for k in ("COURSE_RUN_DIR", "COURSE_FAST")}
    os.environ["COURSE_RUN_DIR"] = str(run_dir.resolve())
    os.environ["COURSE_FAST"] = "1" if fast else "0"
    os.environ.setdefault("MPLBACKEND", "Agg")
    ran = False
    try:
        for path in stages:
            key = _stage_key(path)
            done = status["stages"].get(key, {}).get("ok")
            if done and "all" not in redo_keys and key not in redo_keys:
                print(f"[{key}] {path.stem}: done earlier in {status['stages'][key]['seconds']:.0f} s, reused")
                continue
            print(f"[{key}] {path.stem}: running ...", flush=True)
            ran = True
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}})
            start = time.perf_counter()
            error = None
            try:
                client.execute()
            except Exception as exc:  # noqa: BLE001 - reported, saved, and re-raised below
                error = f"{type(exc).__name__}: {str(exc)[-2000:]}"
            seconds = time.perf_counter() - start
            out = run_dir / "notebooks" / path.name
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out)
            status["stages"][key] = {"notebook": path.name, "seconds": round(seconds, 1), "ok": error is None,
                                     "executed": str(out.relative_to(run_dir)), "error": error}
            atomic_write_json(status_path, status)
            if error:
                print(f"[{key}] {path.stem}: FAILED after {seconds:.0f} s; executed notebook with the error: {out}")
                write_summary(run_dir, status)
                raise RuntimeError(f"Stage {key} ({path.name}) failed: {error.splitlines()[0] if error else ''}\n"
                                   f"Fix it and run `python -m helpers course` again; finished stages are reused.")
            print(f"[{key}] {path.stem}: done in {seconds:.0f} s")
        if not ran:
            print("Every stage was done earlier: `--redo 04` runs a stage again, `--new` starts a new run folder.")
        status["finished"] = True
        atomic_write_json(status_path, status)
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    summary = write_summary(run_dir, status)
    print(f"Summary: {summary}")
    return run_dir


def _evaluation_lines(run_dir: Path) -> list[str]:
    """The test-split review (notebook 05) and the benchmarks (notebook 06), from the files they saved."""
    import pandas as pd

    from helpers.evals import accuracy_summary
    from helpers.humaneval import pass_at_k_summary

    def pct(value, pair):  # 0.25, (0.2, 0.3) -> "25.0 % [20.0, 30.0]"
        return f"{value * 100:.1f} % [{pair[0] * 100:.1f}, {pair[1] * 100:.1f}]"

    lines = []
    judged = run_dir / "judge_summary.json"
    if judged.exists():
        info = json.loads(judged.read_text())
        lines += ["## Test split: reference answers and the judge (notebook 05)", "",
                  "| model | exact match | word-overlap F1 | judge mean (0–100) | n |", "|---|---|---:|---|---:|"]
        for name, mean in info.get("means", {}).items():
            ref = info.get("reference", {}).get(name)
            exact = pct(ref["exact_match"], ref["ci95"]) if ref else "–"
            f1 = f"{ref['mean_f1']:.3f}" if ref else "–"
            lines.append(f"| {name} | {exact} | {f1} | {mean['mean']:.1f} [{mean['ci95'][0]:.1f}, {mean['ci95'][1]:.1f}] | {mean['n']} |")
        cal, direct, scores = info.get("calibration", {}), info.get("pairwise_direct", {}), info.get("pairwise_from_scores", {})
        lines += ["", f"- judge {info.get('judge')}, prompt {info.get('prompt')}; {info.get('parse_failures')} unparsable",
                  f"- calibration: {cal.get('pairs_ordered', 0):.0%} of pairs ordered right, "
                  f"{cal.get('fully_ordered', 0):.0%} of {cal.get('records')} records fully ordered",
                  f"- win rate of the fine-tuned model: judged in both orders "
                  f"{pct(direct.get('win_rate_fine_tuned', 0), direct.get('ci95', (0, 0)))}, "
                  f"from the two scores per record {pct(scores.get('win_rate_fine_tuned', 0), scores.get('ci95', (0, 0)))}",
                  f"- judge start {info.get('judge_start_seconds')} s, {info.get('seconds_per_record')} s per record", ""]
    mmlu = run_dir / "06_mmlu_results.csv"
    if mmlu.exists():
        table = accuracy_summary(pd.read_csv(mmlu))
        lines += ["## MMLU questions from lm-eval (notebook 06)", "", "| model | scoring | shots | accuracy | n |",
                  "|---|---|---:|---|---:|"]
        lines += [f"| {r.model} | {r.scoring} | {r.k_shot} | {pct(r.accuracy, (r.ci_low, r.ci_high))} | {r.n} |"
                  for r in table.itertuples()]
        lines += ["", "Chance is 25 %.", ""]
    humaneval = run_dir / "06_humaneval_results.json"
    if humaneval.exists():
        table = pass_at_k_summary(pd.read_json(humaneval))
        lines += ["## HumanEval (notebook 06)", ""]
        lines += [f"- {r['model']}: pass@1 {pct(r['pass@1'], (r['ci_low'], r['ci_high']))} on {r['problems']} problems "
                  f"({r['passed']} passed, {r['failed']} failed, {r['timeout']} timed out)" for r in table.to_dict("records")]
        lines.append("")
    pairwise = run_dir / "06_pairwise.json"
    if pairwise.exists():
        lines += ["## Pairwise (notebook 06)", "", "- " + json.loads(pairwise.read_text())["summary"], ""]
    return lines


def write_summary(run_dir: Path, status: dict) -> Path:
    """``summary.md``: time per stage, the fine-tuning figures, and every artifact of the run."""
    lines = [f"# Course run {run_dir.name}", "",
             f"Mode: {'FAST' if status.get('fast') else 'full'}; finished: {status.get('finished', False)}", "",
             "## Stages", "", "| stage | notebook | seconds | status |", "|---|---|---:|---|"]
    total = 0.0
    for key, stage in sorted(status.get("stages", {}).items()):
        total += stage["seconds"]
        lines.append(f"| {key} | {stage['notebook']} | {stage['seconds']:.0f} | {'ok' if stage['ok'] else 'FAILED'} |")
    lines += [f"| | total | {total:.0f} | |", ""]
    for info_path in sorted((run_dir / "finetuned").glob("*.json")):
        info = json.loads(info_path.read_text())
        if not isinstance(info, dict) or "initial_val_loss" not in info:  # only the <model>.json descriptions
            continue
        lines += [f"## Fine-tuning {info['model']}", "",
                  f"- validation loss: {info['initial_val_loss']:.3f} before training, best {info['best_val_loss']:.3f} "
                  f"at epoch {info['best_epoch']:.2f} (step {info['best_step']})",
                  f"- final: train {info['final_train_loss']:.3f}, val {info['final_val_loss']:.3f}"
                  + (f", test {info['test_loss']:.3f}" if info.get("test_loss") is not None else ""),
                  f"- stopped early: {info['stopped_early']}; overfitting from epoch: {info['overfit_epoch']}",
                  f"- {info['steps']} steps, {info['epochs']:.2f} epochs, {info['tokens_seen']:,} tokens, "
                  f"{info['train_seconds']:.0f} s of training on {info.get('device', '?')}"
                  + (f"; peak memory {info['peak_rss_gb']:.1f} GB" if info.get("peak_rss_gb") else ""), ""]
    lines += _evaluation_lines(run_dir)
    lines += ["## Artifacts", ""]
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file() and "checkpoints" not in p.parts):
        lines.append(f"- `{path.relative_to(run_dir)}` ({path.stat().st_size / 1e6:.2f} MB)")
    summary = run_dir / "summary.md"
    summary.write_text("\n".join(lines) + "\n")
    return summary
