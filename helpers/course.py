"""The course as one job: fine-tune without notebooks, and run every notebook headless (notebook 04).

- :class:`FinetuneSettings`  the knobs of a fine-tuning run, with the course's defaults (full and FAST);
                             defined in ``helpers.training`` (``train`` takes it), re-exported here.
- :func:`finetune`           data -> splits -> model -> loaders -> :func:`helpers.training.train` -> saved
                             weights, history, loss plot, test-set responses. ``python -m helpers finetune``.
- :func:`load_finetuned`     this run's fine-tuned model, or None (notebooks 05 and 06 use it).
- :func:`finetuned_or_train` the fine-tuned model, training it first when it is missing.
- :func:`run_course`         ``make course``: notebooks 01..06 in order under ``runs/<timestamp>/``,
                             finished stages reused, ``summary.md`` at the end. ``python -m helpers course``.
- :func:`publish`           ``docs/``: the executed notebooks of the latest finished full run, widgets made
                             static, stamped with the git commit. ``python -m helpers course --publish``.

Files of a fine-tuning run (``folder`` = ``run_path("finetuned")`` unless given):

    finetuned/<model>.safetensors   trained parameters (the frozen rest comes from the base model)
    finetuned/<model>.json          settings, history summary, best epoch, prompt style
    finetuned/<model>-history.json|csv   one row per evaluation;  finetuned/<model>-loss.png  the loss plot
    finetuned/checkpoints/<model>/  resumable checkpoints (``resume=True`` continues after a crash)
    finetuned/<model>-test_responses.json   the fine-tuned model's answers to the test split (CLI)
"""

from __future__ import annotations

import html
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pandas as pd
from nbclient import NotebookClient

from helpers import distributed
from helpers.batching import make_loaders
from helpers.checkpoints import atomic_write_json, folder_lock, load_weights, save_weights
from helpers.config import FAST, GENERATION_BATCH_SIZE, REPO_ROOT, RUNS_DIR, pick_device, run_path, set_seed
from helpers.data import COURSE_DATA, HOLDOUT_FAMILIES, Splits, load_course_data, load_records, split_records
from helpers.evals import accuracy_summary
from helpers.humaneval import pass_at_k_summary
from helpers.lora import count_lora_parameters, lora_layers, merge_lora
from helpers.plots import plot_losses
from helpers.registry import DEFAULT_MODEL, load_model, load_tokenizer
from helpers.review import generate_responses, save_responses
from helpers.training import FinetuneSettings, evaluate, option_name, train


class SettingsError(ValueError):
    """A setting or data file that would make a run learn nothing; the message names it and the fix."""


# ---- the pieces -----------------------------------------------------------------------------------


def load_splits(settings: FinetuneSettings, verbose: bool = True):
    """Records from ``settings.data`` (or the course's data set), split 85/5/10 as in notebook 01.

    ``settings.n_records`` (FAST mode) keeps a handful from *each* split of that same split, so a FAST run
    never trains on a record of the course's test split. The course's data set keeps the families in
    ``helpers.data.HOLDOUT_FAMILIES`` out of training and validation (test only, mixed into every prefix of
    the test split); other files are split without holding anything out.
    """
    course_data = not settings.data or Path(settings.data).expanduser().resolve() == COURSE_DATA.resolve()
    records = load_records(settings.data) if settings.data else load_course_data()
    splits = split_records(records, seed=settings.seed,
                           holdout_families=HOLDOUT_FAMILIES if course_data else None,
                           verbose=verbose and not settings.n_records)
    if settings.n_records:
        n = settings.n_records
        splits = Splits(train=splits.train[: max(1, int(n * 0.85))], val=splits.val[: max(4, int(n * 0.05))],
                        test=splits.test[: max(4, int(n * 0.10))])
        if verbose:
            print(f"Using {n} records taken from each split of the full split: {splits.describe()}")
    empty = [name for name, size in splits.sizes().items() if size == 0]
    if empty:
        raise SettingsError(
            f"{settings.data or 'the course data set'}: {len(records)} record(s) leave the "
            f"{' and '.join(empty)} split(s) empty (split 85/5/10). Fine-tuning needs at least 10 records (a "
            "few hundred to learn anything): add records to the file.")
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
                f"{settings.allowed_max_length} cuts every example inside its prompt (the longest example "
                f"has {longest} tokens{', prompt masked' if settings.mask_instructions else ''}). "
                "Raise --max-length.")
    for split, r in report.items():
        if r["records_cut"]:
            print(f"{split}: --max-length {settings.allowed_max_length} cuts {r['records_cut']} of "
                  f"{r['records']} records, losing {r['targets_cut']:,} of "
                  f"{r['targets_cut'] + r['supervised_targets']:,} supervised target tokens "
                  f"({r['records_without_targets']} records keep none).")
    return report


def build_loaders(splits, tokenizer, settings: FinetuneSettings):
    return make_loaders(splits, tokenizer, batch_size=settings.batch_size, style=settings.style,
                        mask_instructions=settings.mask_instructions,
                        allowed_max_length=settings.allowed_max_length, seed=settings.seed)


def finetuned_folder(folder=None) -> Path:
    return Path(folder) if folder is not None else run_path("finetuned", "x").parent


def checkpoints_folder(model_name: str, folder=None) -> Path:
    """Where the resumable checkpoints of ``model_name``'s fine-tuning run live."""
    return finetuned_folder(folder) / "checkpoints" / model_name


def save_finetuned(model, history, settings: FinetuneSettings, folder=None,
                   extra: dict | None = None) -> Path:
    """Save the trained weights, history (JSON + CSV), loss plot and a JSON description; returns the weights
    path."""
    folder = finetuned_folder(folder)
    with folder_lock(folder, f"saving fine-tuned {settings.model}"):
        return _save_finetuned(model, history, settings, folder, extra)


def _save_finetuned(model, history, settings, folder: Path, extra) -> Path:
    weights = folder / f"{settings.model}.safetensors"
    save_weights(weights, model, {"model": settings.model})
    history.save(folder / f"{settings.model}-history.json")
    history.to_frame().to_csv(folder / f"{settings.model}-history.csv", index=False)

    fig = plot_losses(history, path=folder / f"{settings.model}-loss.png",
                      title=f"Fine-tuning {settings.model}")
    plt.close(fig)
    first, last = history.rows[0], history.final
    atomic_write_json(folder / f"{settings.model}.json", {
        "model": settings.model, "weights": weights.name, "settings": settings.as_dict(),
        "initial_val_loss": first["val_loss"], "initial_train_loss": first["train_loss"],
        "best_val_loss": history.best_val_loss, "best_step": history.best_step,
        "best_epoch": history.best_epoch,
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
    """:func:`load_finetuned`, or fine-tune first (FAST-sized in FAST mode) when nothing is saved. Prints
    which."""
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


def answer_test_split(model, tokenizer, records, settings: FinetuneSettings, path=None,
                      batch_size: int = GENERATION_BATCH_SIZE) -> list[dict]:
    """Greedy answers to ``records`` in ``helpers.review``'s response format; saved as JSON when ``path`` is
    given."""
    rows = generate_responses(model, tokenizer, records, style=settings.style,
                              model_name=f"{settings.model} (fine-tuned)",
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
        raise SettingsError("These settings would make the run learn nothing or crash:\n  - "
                            + "\n  - ".join(problems))
    folder = finetuned_folder(folder)
    # under torchrun (helpers.distributed) every rank trains, and rank 0 alone locks and writes the folder
    lock = folder_lock(folder, f"fine-tuning {settings.model}") if distributed.is_main() else nullcontext()
    with lock:
        return _finetune(settings, folder, device, resume, progress, test_responses)


def _finetune(settings: FinetuneSettings, folder: Path, device, resume: bool, progress: bool,
              test_responses: bool) -> dict:
    device = device or distributed.device_for_rank() or pick_device()
    t0 = time.perf_counter()
    set_seed(settings.seed)
    splits = load_splits(settings)
    loaders = build_loaders(splits, load_tokenizer(settings.model), settings)
    supervision = check_supervision(loaders, settings)
    model, tokenizer = load_model(settings.model, device=device)
    print(f"{settings.model} on {device}; {loaders.describe()}")
    history = train(model, loaders, settings, checkpoint_dir=checkpoints_folder(settings.model, folder),
                    resume=resume, device=device, progress=progress)
    history.data = supervision
    rank, world_size = distributed.world()
    if rank != 0:  # the other ranks trained their shards; rank 0 saves, evaluates and answers
        return {"rank": rank, "world_size": world_size, "steps": history.final["step"]}
    print(history.summary())
    extra = {"device": str(device), "records": splits.sizes(), "supervision": supervision,
             "test_responses": None,
             "test_responses_note": "not generated (test_responses=False, --no-test-responses)"}
    if lora_layers(model):  # saved merged: a plain model with the base model's parameter names
        extra["lora"] = {**model.lora_settings, "trainable_parameters": count_lora_parameters(model),
                         "merged_layers": len(merge_lora(model))}
    save_finetuned(model, history, settings, folder, extra)  # first: nothing after this can lose the weights
    extra["test_loss"] = evaluate(model, list(loaders.test), device)
    if test_responses:
        n = min(settings.n_test_responses or len(splits.test), len(splits.test))
        t_gen = time.perf_counter()
        answer_test_split(model, tokenizer, splits.test[:n], settings,
                          path=folder / f"{settings.model}-test_responses.json")
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
    import resource  # Unix only: imported where it is used so the module still imports elsewhere

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9


# ---- make course ----------------------------------------------------------------------------------

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def course_stages(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered notebooks (01, 02, ...; not the solutions), in order."""
    return sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb") if not p.stem.endswith("-solutions"))


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
    stages = stages if stages is not None else course_stages()
    redo_keys = {"all"} if redo and "all" in redo else {r.zfill(2) for r in (redo or [])}
    if run_dir is None:
        run_dir = None if new else latest_run(fast)
        run_dir = run_dir or RUNS_DIR / (time.strftime("%Y%m%d-%H%M%S") + ("-fast" if fast else ""))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    status_path = run_dir / "course.json"
    status = (json.loads(status_path.read_text()) if status_path.exists()
              else {"stages": {}, "finished": False})
    status["fast"] = fast
    status.update(git_state())  # the code this start runs; each stage below records it too (docs/README.md)
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
                print(f"[{key}] {path.stem}: done earlier in "
                      f"{status['stages'][key]['seconds']:.0f} s, reused")
                continue
            print(f"[{key}] {path.stem}: running ...", flush=True)
            ran = True
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3", coalesce_streams=True,
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
                                     "executed": str(out.relative_to(run_dir)), "error": error,
                                     "commit": status["commit"], "dirty": status["dirty"]}
            atomic_write_json(status_path, status)
            if error:
                print(f"[{key}] {path.stem}: FAILED after {seconds:.0f} s; executed notebook "
                      f"with the error: {out}")
                write_summary(run_dir, status)
                raise RuntimeError(f"Stage {key} ({path.name}) failed: "
                                   f"{error.splitlines()[0] if error else ''}\nFix it and run `python -m "
                                   "helpers course` again; finished stages are reused.")
            print(f"[{key}] {path.stem}: done in {seconds:.0f} s")
        if not ran:
            print("Every stage was done earlier: `--redo 04` runs a stage again, `--new` "
                  "starts a new run folder.")
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
    def pct(value, pair):  # 0.25, (0.2, 0.3) -> "25.0 % [20.0, 30.0]"
        return f"{value * 100:.1f} % [{pair[0] * 100:.1f}, {pair[1] * 100:.1f}]"

    lines = []
    judged = run_dir / "judge_summary.json"
    if judged.exists():
        info = json.loads(judged.read_text())
        lines += ["## Test split: reference answers and the judge (notebook 05)", "",
                  "| model | exact match | word-overlap F1 | judge mean (0–100) | n |",
                  "|---|---|---:|---|---:|"]
        for name, mean in info.get("means", {}).items():
            ref = info.get("reference", {}).get(name)
            exact = pct(ref["exact_match"], ref["ci95"]) if ref else "–"
            f1 = f"{ref['mean_f1']:.3f}" if ref else "–"
            lines.append(f"| {name} | {exact} | {f1} | {mean['mean']:.1f} [{mean['ci95'][0]:.1f}, "
                         f"{mean['ci95'][1]:.1f}] | {mean['n']} |")
        if info.get("by_family_kind"):  # in-family (template siblings in training) vs held-out families
            lines += ["", "| model · test records | exact match | word-overlap F1 | judge mean (0–100) | n |",
                      "|---|---|---:|---|---:|"]
            for name, row in info["by_family_kind"].items():
                judge_mean = (f"{row['judge_mean']:.1f} [{row['judge_ci95'][0]:.1f}, "
                              f"{row['judge_ci95'][1]:.1f}]"
                              if "judge_mean" in row else "–")
                lines.append(f"| {name} | {pct(row['exact_match'], row['exact_ci95'])} | "
                             f"{row['mean_f1']:.3f} | {judge_mean} | {row['n']} |")
        cal, direct = info.get("calibration", {}), info.get("pairwise_direct", {})
        scores = info.get("pairwise_from_scores", {})
        lines += ["", f"- judge {info.get('judge')}, prompt {info.get('prompt')}; "
                      f"{info.get('parse_failures')} unparsable",
                  f"- calibration: {cal.get('pairs_ordered', 0):.0%} of pairs ordered right, "
                  f"{cal.get('fully_ordered', 0):.0%} of {cal.get('records')} records fully ordered",
                  f"- win rate of the fine-tuned model: judged in both orders "
                  f"{pct(direct.get('win_rate_fine_tuned', 0), direct.get('ci95', (0, 0)))}, "
                  "from the two scores per record "
                  f"{pct(scores.get('win_rate_fine_tuned', 0), scores.get('ci95', (0, 0)))}",
                  f"- judge start {info.get('judge_start_seconds')} s, " + (
                      f"{info['seconds_per_record']} s per record" if info.get("seconds_per_record")
                      else "every score read from the cache (no request timed)"), ""]
    mmlu = run_dir / "06_mmlu_results.csv"
    if mmlu.exists():
        table = accuracy_summary(pd.read_csv(mmlu))
        lines += ["## MMLU questions from lm-eval (notebook 06)", "",
                  "| model | scoring | shots | accuracy | n |", "|---|---|---:|---|---:|"]
        lines += [f"| {r.model} | {r.scoring} | {r.k_shot} | "
                  f"{pct(r.accuracy, (r.ci_low, r.ci_high))} | {r.n} |"
                  for r in table.itertuples()]
        lines += ["", "Chance is 25 %.", ""]
    circular = run_dir / "06_mmlu_circular.json"
    if circular.exists():  # letter scoring with the right answer rotated through every position
        lines += ["| model | letter 0-shot | mean over rotations | circular (right in every rotation) |",
                  "|---|---:|---|---|"]
        lines += [f"| {r['model']} | {r['plain'] * 100:.1f} % | "
                  f"{pct(r['mean_over_rotations'], r['mean_ci'])} "
                  f"| {pct(r['circular'], r['circular_ci'])} (chance {r['circular_chance'] * 100:.1f} %) |"
                  for r in json.loads(circular.read_text())]
        lines.append("")
    humaneval = run_dir / "06_humaneval_results.json"
    if humaneval.exists():
        table = pass_at_k_summary(pd.read_json(humaneval))
        lines += ["## HumanEval (notebook 06)", ""]
        lines += [f"- {r['model']}: pass@1 {pct(r['pass@1'], (r['ci_low'], r['ci_high']))} on "
                  f"{r['problems']} problems ({r['passed']} passed, {r['failed']} failed, {r['timeout']} "
                  "timed out)" for r in table.to_dict("records")]
        lines.append("")
    pairwise = run_dir / "06_pairwise.json"
    if pairwise.exists():
        lines += ["## Pairwise (notebook 06)", "", "- " + json.loads(pairwise.read_text())["summary"], ""]
    return lines


def write_summary(run_dir: Path, status: dict) -> Path:
    """``summary.md``: time per stage, the fine-tuning figures, and every artifact of the run."""
    lines = [f"# Course run {run_dir.name}", "",
             f"Mode: {'FAST' if status.get('fast') else 'full'}; finished: {status.get('finished', False)}; "
             f"commit: {status.get('commit') or 'unknown'}"
             f"{' (with uncommitted changes)' if status.get('dirty') else ''}", "",
             "## Stages", "", "| stage | notebook | seconds | status |", "|---|---|---:|---|"]
    total = 0.0
    for key, stage in sorted(status.get("stages", {}).items()):
        total += stage["seconds"]
        lines.append(f"| {key} | {stage['notebook']} | {stage['seconds']:.0f} | "
                     f"{'ok' if stage['ok'] else 'FAILED'} |")
    lines += [f"| | total | {total:.0f} | |", ""]
    for info_path in sorted((run_dir / "finetuned").glob("*.json")):
        info = json.loads(info_path.read_text())
        if not isinstance(info, dict) or "initial_val_loss" not in info:  # only the <model>.json descriptions
            continue
        lines += [f"## Fine-tuning {info['model']}", "",
                  f"- validation loss: {info['initial_val_loss']:.3f} before training, best "
                  f"{info['best_val_loss']:.3f} at epoch {info['best_epoch']:.2f} (step {info['best_step']})",
                  f"- final: train {info['final_train_loss']:.3f}, val {info['final_val_loss']:.3f}"
                  + (f", test {info['test_loss']:.3f}" if info.get("test_loss") is not None else ""),
                  f"- stopped early: {info['stopped_early']}; overfitting from epoch: "
                  f"{info['overfit_epoch']}",
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


# ---- docs/: the executed notebooks of a full run, readable without running ------------------------

DOCS_DIR = REPO_ROOT / "docs"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class PublishError(RuntimeError):
    """A run that must not become ``docs/``: missing, unfinished, FAST, or run with other code."""


def git_state(repo: Path = REPO_ROOT) -> dict:
    """``{"commit": git rev-parse HEAD, "dirty": git status --porcelain is not empty}``; None when not in
    git."""
    def git(*args) -> str:
        return subprocess.run(["git", "--no-optional-locks", "-C", str(repo), *args], capture_output=True,
                              text=True, timeout=60, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def code_cells(nb) -> list[str]:
    """The sources of a notebook's code cells, in order (what docs/ must share with notebooks/)."""
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def _widget_state(nb) -> dict:
    saved = nb.metadata.get("widgets", {})
    return saved.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})


def _progress_text(state: dict, model_id) -> str | None:
    """The final text of a tqdm.auto bar (an HBox of HTML, progress, HTML), or None for another widget."""
    model = state.get(str(model_id).removeprefix("IPY_MODEL_"), {})
    children = [state.get(c.removeprefix("IPY_MODEL_"), {})
                for c in model.get("state", {}).get("children", [])]
    kinds = [c.get("model_name") for c in children]
    if model.get("model_name") != "HBoxModel" or len(kinds) != 3 or kinds[0] != "HTMLModel" \
            or kinds[1] not in ("FloatProgressModel", "IntProgressModel"):
        return None

    left, bar, right = (c.get("state", {}) for c in children)
    done = round(10 * bar.get("value", 0) / bar["max"]) if bar.get("max") else 0
    text = (f"{html.unescape(left.get('value', ''))}|{'█' * done}{' ' * (10 - done)}|"
            f"{html.unescape(right.get('value', ''))}")
    return text.replace("\u2007", " ").strip()


def _widget_html(state: dict, model_id, depth: int = 0) -> str:
    """What a widget showed, as static HTML: its HTML and labels, buttons as [name], boxes nested."""
    model = state.get(str(model_id).removeprefix("IPY_MODEL_"), {})
    name, values = model.get("model_name", ""), model.get("state", {})
    if "children" in values and depth < 10:
        parts = [part for part in (_widget_html(state, c, depth + 1) for c in values["children"]) if part]
        return f"<div>{' '.join(parts)}</div>" if parts else ""
    if name in ("HTMLModel", "HTMLMathModel"):
        return values.get("value", "")
    if name == "LabelModel":
        return html.escape(values.get("value", ""))
    if name in ("ButtonModel", "ToggleButtonModel"):
        return f"<code>[{html.escape(values.get('description', ''))}]</code>"
    return ""


def static_widgets(nb) -> int:
    """Give every widget output a static picture for GitHub and nbviewer; returns how many it changed.

    nbclient saves a widget output as a view id (``application/vnd.jupyter.widget-view+json``, no picture)
    plus the widget's ``text/plain`` repr, which for a tqdm.auto bar is its *first* state ("0%|"); the final
    state lives only in the notebook's saved widget state. Each such output becomes HTML and text: a tqdm
    bar its final text, any other widget a note ("run the notebook to use it") and what it showed.
    """
    state = _widget_state(nb)
    changed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            model_id = data.pop(WIDGET_VIEW).get("model_id")
            bar = _progress_text(state, model_id)
            if bar is not None:
                data["text/plain"], data["text/html"] = bar, f"<pre>{html.escape(bar)}</pre>"
            else:
                shown = _widget_html(state, model_id)
                note = "Interactive widget: run the notebook to use it."
                data["text/plain"] = note
                data["text/html"] = f"<p><em>{note}</em>" + (f" It showed:</p>{shown}" if shown else "</p>")
            changed += 1
    nb.metadata.pop("widgets", None)  # no view refers to it any more
    return changed


def coalesce_streams(nb) -> int:
    """Join each run of stdout (stderr) pieces of a cell into one output; returns how many pieces went.

    A streamed answer arrives as one output per token; HTML shows each in its own block, one per line.
    """
    merged = 0
    for cell in nb.cells:
        outputs = []
        for output in cell.get("outputs", []):
            last = outputs[-1] if outputs else None
            if (output.get("output_type") == "stream" and last is not None
                    and last.get("output_type") == "stream" and last.get("name") == output.get("name")):
                last["text"] += output["text"]
                merged += 1
            else:
                outputs.append(output)
        if "outputs" in cell:
            cell["outputs"] = outputs
    return merged


def relink(nb, published: set[str], sources: str = "../../notebooks") -> int:
    """Point relative markdown links and images that leave ``docs/notebooks/`` (solutions, figures, data) at
    the sources, so they still open from docs/; links to ``published`` notebooks stay. Returns how many."""
    count = 0

    def fix(match):
        nonlocal count
        target = match.group(1)
        if re.match(r"[a-zA-Z][a-zA-Z+.-]*:|[#/]", target) or target.split("#")[0] in published:
            return match.group(0)
        count += 1
        return f"]({posixpath.normpath(posixpath.join(sources, target))})"

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = re.sub(r"\]\(([^)\s]+)\)", fix, cell.source)
    return count


def publish(run_dir=None, docs_dir: Path = DOCS_DIR, sources_dir: Path = NOTEBOOKS_DIR) -> Path:
    """Copy the executed notebooks and ``summary.md`` of a finished full run into ``docs/``; returns docs/.

    ``run_dir``: the run to publish; default the latest full one (:func:`latest_run`). Refuses a run that
    is missing, unfinished or FAST, or whose notebooks' code differs from ``sources_dir`` (the run used
    other code than the sources: tests/test_docs.py would fail). Widget outputs get a static fallback
    (:func:`static_widgets`), links to solutions and figures point back at notebooks/ (:func:`relink`), and
    ``docs/README.md`` names the run and the git commit each stage ran at.
    """
    run_dir = Path(run_dir) if run_dir is not None else latest_run(fast=False)
    if run_dir is None or not (run_dir / "course.json").exists():
        raise PublishError("No finished full course run "
                           f"{'in ' + str(RUNS_DIR) if run_dir is None else 'at ' + str(run_dir)}"
                           ": run `make course` first (about an hour on a 2-core CPU), then publish again.")
    status = json.loads((run_dir / "course.json").read_text())
    if status.get("fast") or run_dir.name.endswith("-fast"):
        raise PublishError(f"{run_dir.name} is a FAST run (tiny random model, a handful of records): its "
                           "outputs would pass for real results. Publish a full run: `make course`.")
    stages = status.get("stages", {})
    sources = {p.name: p for p in course_stages(sources_dir)}
    ran = {stage["notebook"]: stage for stage in stages.values() if stage.get("ok")}
    missing = [name for name in sources if name not in ran]
    if not status.get("finished") or missing:
        raise PublishError(f"{run_dir.name} is unfinished (not done: "
                           f"{', '.join(missing) or 'the run did not end'}): "
                           "run `make course` to finish it (finished stages are reused), then publish again.")
    executed = {name: nbformat.read(run_dir / ran[name]["executed"], as_version=4) for name in sources}
    drifted = [name for name, nb in executed.items()
               if code_cells(nb) != code_cells(nbformat.read(sources[name], as_version=4))]
    if drifted:
        redo = " ".join(f"--redo {name[:2]}" for name in drifted)
        raise PublishError(f"The code of {', '.join(drifted)} changed since {run_dir.name} ran it: run "
                           f"`python -m helpers course {redo}`, then publish again.")
    out = Path(docs_dir) / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.ipynb"):
        old.unlink()
    widgets = 0
    for name, nb in executed.items():
        widgets += static_widgets(nb)
        coalesce_streams(nb)
        relink(nb, set(executed))
        nbformat.write(nb, out / name)
    summary = run_dir / "summary.md"
    shutil.copyfile(summary if summary.exists() else write_summary(run_dir, status),
                    Path(docs_dir) / "summary.md")
    (Path(docs_dir) / "README.md").write_text(_docs_readme(run_dir, status, [ran[name] for name in sources]))
    print(f"Published {len(executed)} executed notebooks of {run_dir.name} to {out} "
          f"({widgets} widget outputs given a static fallback), summary.md and README.md.")
    return Path(docs_dir)


def _docs_readme(run_dir: Path, status: dict, stages: list[dict]) -> str:
    def commit(entry) -> str:
        return f"`{entry['commit'][:12]}`" + (" + uncommitted changes" if entry.get("dirty") else "") \
            if entry.get("commit") else "unknown (run before commits were recorded)"

    commits = sorted({commit(stage) for stage in stages})
    lines = ["# The course, executed", "",
             "The notebooks of [`notebooks/`](../notebooks/) with their outputs, as the full `make course` "
             f"run `{run_dir.name}` left them (Gemma 3 270M, the course's data set): read them here without "
             "running anything. Interactive widgets appear as a static note; progress bars as "
             "their final text.", "",
             f"- run: `runs/{run_dir.name}`; its times and results: [summary.md](summary.md)",
             f"- code: commit {commits[0] if len(commits) == 1 else 'per stage, see the table'}",
             "- refresh: `make course`, then `.venv/bin/python -m helpers course --publish`; "
             "`tests/test_docs.py` fails when the code here differs from `notebooks/`", "",
             "| stage | executed notebook | seconds | commit |", "|---|---|---:|---|"]
    lines += [f"| {stage['notebook'][:2]} | [{stage['notebook']}](notebooks/{stage['notebook']}) | "
              f"{stage['seconds']:.0f} | {commit(stage)} |" for stage in stages]
    return "\n".join(lines) + "\n"
