"""The headless pipeline: finetune CLI, load_finetuned / finetuned_or_train, and the course runner."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
import torch

from helpers import course
from helpers.config import REPO_ROOT


def test_cli_help_explains_every_option():
    out = subprocess.run([sys.executable, "-m", "helpers", "finetune", "--help"], capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=120, check=True).stdout
    for option in ("--model", "--data", "--epochs", "--mask-instructions", "--no-mask-instructions", "--lr",
                   "--patience", "--freeze-embeddings", "--train-last-n-blocks", "--grad-accum",
                   "--val-batches", "--out", "--lora-rank", "--lora-alpha", "--lora-targets",
                   "--lora-dropout"):
        assert option in out
    parser = __import__("helpers.__main__", fromlist=["build_parser"]).build_parser()
    finetune_parser = parser._subparsers._group_actions[0].choices["finetune"]
    for action in finetune_parser._actions:
        assert action.help, f"option {action.option_strings} has no help text"


@pytest.fixture(scope="module")
def finetuned_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run") / "finetuned"
    from helpers.__main__ import main

    assert main(["finetune", "--model", "tiny-gpt", "--fast", "--max-steps", "4", "--out", str(folder)]) == 0
    return folder


def test_finetune_writes_its_artifacts(finetuned_folder):
    for name in ("tiny-gpt.safetensors", "tiny-gpt.json", "tiny-gpt-history.json", "tiny-gpt-history.csv",
                 "tiny-gpt-loss.png", "tiny-gpt-test_responses.json", "checkpoints/tiny-gpt/latest.json"):
        assert (finetuned_folder / name).exists(), name
    info = json.loads((finetuned_folder / "tiny-gpt.json").read_text())
    assert info["steps"] == 4 and info["settings"]["mask_instructions"] is True
    responses = json.loads((finetuned_folder / "tiny-gpt-test_responses.json").read_text())
    assert responses and all("response" in r and "instruction" in r for r in responses)


def test_load_finetuned_returns_trained_weights(finetuned_folder):
    from safetensors.torch import load_file

    model = course.load_finetuned("tiny-gpt", device="cpu", folder=finetuned_folder)
    saved = load_file(str(finetuned_folder / "tiny-gpt.safetensors"))
    params = dict(model.named_parameters())
    assert saved and all(torch.equal(params[k], v) for k, v in saved.items())
    base, _ = course.load_model("tiny-gpt", device="cpu")
    name = next(iter(saved))
    assert not torch.equal(dict(base.named_parameters())[name], params[name])  # training changed it
    assert model.finetune_info["model"] == "tiny-gpt" and model.tokenizer.eos_id is not None
    assert course.load_finetuned("tiny-gpt", folder=finetuned_folder.parent / "nothing-here") is None


def test_finetuned_or_train_reuses_then_trains(finetuned_folder, tmp_path, capsys):
    assert course.finetuned_or_train("tiny-gpt", device="cpu", folder=finetuned_folder) is not None
    assert "Using the fine-tuned tiny-gpt" in capsys.readouterr().out
    model = course.finetuned_or_train("tiny-gpt", device="cpu", folder=tmp_path / "ft", max_steps=2)
    assert "training it now" in capsys.readouterr().out
    assert model is not None and (tmp_path / "ft" / "tiny-gpt.safetensors").exists()


def test_cli_lora_finetune_saves_a_merged_model_that_loads_as_any_other(tmp_path):
    from helpers.__main__ import main

    folder = tmp_path / "lora"
    assert main(["finetune", "--model", "tiny-gpt", "--fast", "--max-steps", "3", "--lora-rank", "4",
                 "--lora-targets", "attention", "--no-test-responses", "--out", str(folder)]) == 0
    info = json.loads((folder / "tiny-gpt.json").read_text())
    assert info["settings"]["lora_rank"] == 4 and info["lora"]["targets"] == "attention"
    n_layers = 2 * len(course.load_model("tiny-gpt", device="cpu")[0].blocks)  # qkv and out_proj per block
    assert info["lora"]["merged_layers"] == n_layers and info["lora"]["trainable_parameters"] > 0
    model = course.load_finetuned("tiny-gpt", device="cpu", folder=folder)
    base, _ = course.load_model("tiny-gpt", device="cpu")
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, dict(base.named_parameters())[n])]
    assert changed and all(".att." in n and n.endswith("weight") for n in changed)  # only the adapted ones


def test_cli_dpo_saves_the_tuned_model_where_load_finetuned_finds_it(finetuned_folder, tmp_path, capsys):
    from helpers.__main__ import main

    out = tmp_path / "dpo"
    args = ["dpo", "--model", "tiny-gpt", "--sft", str(finetuned_folder), "--out", str(out),
            "--pairs-train", "8", "--pairs-val", "4", "--max-steps", "2", "--eval-every", "1",
            "--max-new-tokens", "8", "--no-judge", "--lr", "1e-3", "--device", "cpu"]
    assert main(args) == 0
    assert "pairs" in capsys.readouterr().out
    tuned = course.load_finetuned("tiny-gpt", device="cpu", folder=out)
    sft = course.load_finetuned("tiny-gpt", device="cpu", folder=finetuned_folder)
    assert tuned.finetune_info["dpo_settings"]["max_steps"] == 2 and tuned.finetune_info["steps"] == 2
    assert tuned.finetune_info["settings"] == sft.finetune_info["settings"]  # the prompt style goes with it
    history = json.loads((out / "tiny-gpt-dpo-history.json").read_text())
    assert history["rows"][0]["val_loss"] == pytest.approx(0.6931, abs=1e-4)
    assert (out / "pair_answers.json").exists() and (out / "checkpoints" / "latest.json").exists()
    assert main(["dpo", "--model", "tiny-gpt", "--sft", str(tmp_path / "nothing"), "--no-judge"]) == 2
    assert "DPO starts from a supervised fine-tuned model" in capsys.readouterr().err


def _notebook(path, code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Toy stage"), nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_run_course_executes_reuses_and_redoes(tmp_path, capsys):
    stages = [
        _notebook(tmp_path / "01_first.ipynb",
                  "from helpers.config import run_path, FAST\n"
                  "p = run_path('stage1.txt'); n = int(p.read_text()) if p.exists() else 0\n"
                  "p.write_text(str(n + 1)); print(FAST)"),
        _notebook(tmp_path / "02_second.ipynb",
                  "from helpers.config import run_path\nrun_path('stage2.txt').write_text('ok')"),
    ]
    run_dir = tmp_path / "run"
    course.run_course(fast=True, run_dir=run_dir, stages=stages, timeout=120)
    status = json.loads((run_dir / "course.json").read_text())
    assert status["finished"] and set(status["stages"]) == {"01", "02"}
    assert (run_dir / "stage1.txt").read_text() == "1" and (run_dir / "stage2.txt").read_text() == "ok"
    executed = nbformat.read(run_dir / "notebooks" / "01_first.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"].strip() == "True"  # the kernel ran in FAST mode
    course.run_course(fast=True, run_dir=run_dir, stages=stages, redo=["2"], timeout=120)
    assert (run_dir / "stage1.txt").read_text() == "1"  # reused, not run again
    out = capsys.readouterr().out
    assert "[01] 01_first: done earlier" in out and "[02] 02_second: done in" in out
    assert "| 01 | 01_first.ipynb |" in (run_dir / "summary.md").read_text()


def test_run_course_reports_a_failing_stage(tmp_path):
    stages = [_notebook(tmp_path / "01_broken.ipynb", "raise ValueError('boom')")]
    with pytest.raises(RuntimeError, match="Stage 01"):
        course.run_course(fast=True, run_dir=tmp_path / "run", stages=stages, timeout=120)
    status = json.loads((tmp_path / "run" / "course.json").read_text())
    assert (not status["finished"] and not status["stages"]["01"]["ok"]
            and "boom" in status["stages"]["01"]["error"])


def test_summary_reports_the_evaluations_the_notebooks_saved(tmp_path):
    judged = {"judge": "embedded:qwen", "prompt": "rubric", "parse_failures": 0,
              "seconds_per_record": 1.5, "judge_start_seconds": 5.0,
              "calibration": {"records": 14, "pairs_ordered": 0.97, "fully_ordered": 0.86},
              "means": {"base": {"mean": 20.0, "ci95": [15.0, 25.0], "n": 150},
                        "fine-tuned": {"mean": 70.0, "ci95": [65.0, 75.0], "n": 150}},
              "reference": {"base": {"exact_match": 0.0, "ci95": [0.0, 0.025], "mean_f1": 0.1, "n": 150},
                            "fine-tuned": {"exact_match": 0.5, "ci95": [0.42, 0.58],
                                           "mean_f1": 0.8, "n": 150}},
              "pairwise_direct": {"win_rate_fine_tuned": 0.6, "ci95": [0.55, 0.65]},
              "pairwise_from_scores": {"win_rate_fine_tuned": 0.9, "ci95": [0.85, 0.95]},
              "by_family_kind": {"fine-tuned · out-of-family": {"n": 40, "exact_match": 0.1,
                                                                "exact_ci95": [0.04, 0.23],
                                                                "mean_f1": 0.3, "judge_mean": 33.3,
                                                                "judge_ci95": [25.0, 41.2]},
                                 "base · out-of-family": {"n": 40, "exact_match": 0.0,
                                                          "exact_ci95": [0.0, 0.09], "mean_f1": 0.1}}}
    (tmp_path / "judge_summary.json").write_text(json.dumps(judged))
    rows = [{"model": m, "scoring": "letter", "k_shot": 0, "subject": "s", "source": f"q{i}", "answer": 0,
             "predicted": 0 if i < right else 1, "correct": i < right, "n_choices": 4, "scores": "[]"}
            for m, right in [("base", 1), ("fine-tuned", 2)] for i in range(4)]
    import pandas as pd

    pd.DataFrame(rows).to_csv(tmp_path / "06_mmlu_results.csv", index=False)
    text = course.write_summary(tmp_path, {"stages": {}, "finished": True}).read_text()
    assert "| fine-tuned | 50.0 % [42.0, 58.0] | 0.800 | 70.0 [65.0, 75.0] | 150 |" in text
    assert "| fine-tuned · out-of-family | 10.0 % [4.0, 23.0] | 0.300 | 33.3 [25.0, 41.2] | 40 |" in text
    assert "| base · out-of-family | 0.0 % [0.0, 9.0] | 0.100 | – | 40 |" in text
    assert "judged in both orders 60.0 % [55.0, 65.0]" in text and "97% of pairs" in text
    assert "| base | letter | 0 | 25.0 % [" in text and "| fine-tuned | letter | 0 | 50.0 % [" in text
    assert "HumanEval" not in text  # nothing saved, nothing claimed


def test_run_course_continues_the_latest_run_of_its_mode(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    for name, finished in [("20260101-000000", True), ("20260102-000000", True),
                           ("20260103-000000-fast", False)]:
        (runs / name).mkdir(parents=True)
        (runs / name / "course.json").write_text(json.dumps({"stages": {}, "finished": finished}))
    (runs / "20260104-000000").mkdir()  # no course.json: not a course run
    monkeypatch.setattr(course, "RUNS_DIR", runs)
    assert course.latest_run(fast=False) == runs / "20260102-000000"
    assert course.latest_run(fast=True) == runs / "20260103-000000-fast"
    stages = [_notebook(tmp_path / "01_only.ipynb", "print('ran')")]
    first = course.run_course(stages=stages, timeout=120)  # the newest full-mode run, although finished
    assert first == runs / "20260102-000000" and "[01] 01_only: done in" in capsys.readouterr().out
    again = course.run_course(stages=stages, timeout=120)
    out = capsys.readouterr().out
    assert again == first and "done earlier" in out and "Every stage was done earlier" in out
    fresh = course.run_course(stages=stages, timeout=120, new=True)
    assert fresh != first and fresh.parent == runs
