"""Fine-tuning runs never lose or mislabel a result silently (issue: no silent corruption).

Each test reproduces one way a run used to go wrong without anyone noticing, mostly through
``python -m helpers finetune`` (``helpers.__main__.main``), which is how a user meets it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest
import torch
from torch.utils.data import DataLoader

from helpers import checkpoints as ckpt
from helpers import course
from helpers.__main__ import main
from helpers.batching import InstructionDataset, supervision_report
from helpers.config import REPO_ROOT
from helpers.data import RecordError, load_course_data, load_records
from helpers.tokenizers import get_tokenizer
from helpers.training import train
from test_training import RECORDS, collate, make_loaders, tiny_model

FAST_RUN = ["finetune", "--model", "tiny-gpt", "--fast", "--no-test-responses"]


def strict_load(path):
    """json.load that fails on NaN / Infinity literals (what other JSON readers reject)."""
    def refuse(name):
        raise ValueError(f"{path} holds the non-standard literal {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def write_records(path, records):
    path.write_text(json.dumps(records))
    return path


@pytest.fixture
def no_model(monkeypatch):
    """Fail loudly if the pipeline gets as far as loading the model."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the settings and data were checked")

    monkeypatch.setattr(course, "load_model", refuse)


# ---- 1. resume ignores data and format ----------------------------------------------------------------


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*FAST_RUN, "--out", str(out)]) == 0
    weights = (out / "tiny-gpt.safetensors").read_bytes()
    capsys.readouterr()
    assert main([*FAST_RUN, "--out", str(out), "--style", "phi3", "--no-mask-instructions"]) == 2
    err = capsys.readouterr().err
    assert "Not resuming" in err and "style: saved 'alpaca', now 'phi3'" in err
    assert "mask_instructions: saved True, now False" in err and "--restart" in err and "--out" in err
    info = json.loads((out / "tiny-gpt.json").read_text())
    assert info["settings"]["style"] == "alpaca" and (out / "tiny-gpt.safetensors").read_bytes() == weights

    other = write_records(tmp_path / "other.json", [dict(r, output=r["output"] + " (other)")
                                                    for r in load_course_data()])
    assert main([*FAST_RUN, "--out", str(out), "--data", str(other)]) == 2
    assert "training records (sha256)" in capsys.readouterr().err
    assert main([*FAST_RUN, "--out", str(out), "--style", "phi3", "--restart"]) == 0
    assert json.loads((out / "tiny-gpt.json").read_text())["settings"]["style"] == "phi3"


# ---- 2. two runs into one folder ----------------------------------------------------------------------


def test_a_second_run_into_a_busy_folder_fails_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom helpers.checkpoints import folder_lock\n"
         f"with folder_lock({str(out)!r}, 'a test run'):\n    print('held', flush=True)\n    time.sleep(60)"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.perf_counter()
        assert main([*FAST_RUN, "--out", str(out)]) == 2
        assert time.perf_counter() - started < 30  # at once, not after training
        err = capsys.readouterr().err
        assert f"PID {holder.pid}" in err and str(out) in err
        assert not (out / "tiny-gpt.json").exists()
        # notebook 04 trains into the run folder with train(checkpoint_dir=...): the same lock holds
        with pytest.raises(ckpt.FolderLocked, match=f"PID {holder.pid}"):
            with ckpt.folder_lock(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    with ckpt.folder_lock(out):  # released when the holder dies (no stale lock after kill -9)
        with ckpt.folder_lock(out):  # re-entrant inside one process
            pass


# ---- 3. runs that learn nothing --------------------------------------------------------------------------


@pytest.mark.parametrize("options,message", [
    (["--max-length", "5"], "--max-length 5 cuts every example inside its prompt"),
    (["--eval-every", "0"], "--eval-every (eval_every=0 must be at least 1)"),
    (["--grad-accum", "0"], "--grad-accum (grad_accum=0 must be at least 1)"),
    (["--eval-batches", "-1"], "--eval-batches (eval_batches=-1 must be at least 1)"),
    (["--batch-size", "0"], "--batch-size (batch_size=0 must be at least 1)"),
    (["--lr", "0"], "--lr (lr=0.0 must be positive)"),
])
def test_settings_that_learn_nothing_fail_before_the_model_loads(tmp_path, capsys, no_model, options,
                                                                 message):
    assert main([*FAST_RUN, "--out", str(tmp_path / "run"), *options]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("n_records,message", [
    (0, "the file holds no records"),
    (1, "leave the train and test split(s) empty"),
    (2, "split(s) empty"),
])
def test_data_too_small_to_split_fails_before_the_model_loads(tmp_path, capsys, no_model, n_records, message):
    data = write_records(tmp_path / "small.json", load_course_data()[:n_records])
    assert main([*FAST_RUN, "--out", str(tmp_path / "run"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert message in err and "small.json" in err


def test_a_validation_split_without_supervised_tokens_is_refused():
    def all_masked(batch):
        inputs, targets = collate(batch)
        return inputs, torch.full_like(targets, -100)

    loaders = make_loaders()
    loaders.val = DataLoader(RECORDS[8:], batch_size=2, collate_fn=all_masked)
    with pytest.raises(ValueError, match="validation batches hold no supervised token"):
        train(tiny_model(), loaders, epochs=1, eval_every=2, progress=False)


def test_truncation_is_counted_reported_and_saved(tmp_path, capsys):
    tokenizer = get_tokenizer("gpt2")
    huge = {"instruction": "Repeat the text.", "input": "", "output": "word " * 40_000}  # a 200 KB record
    short = {"instruction": "Say hi.", "input": "", "output": "hi"}
    dataset = InstructionDataset([huge, short], tokenizer)
    n_huge, prompt = len(dataset.examples[0]["token_ids"]), dataset.examples[0]["prompt_length"]
    report = supervision_report(dataset, allowed_max_length=256, mask_instructions=True)
    assert report["records_cut"] == 1 and report["records_without_targets"] == 0
    assert report["targets_cut"] == n_huge - 256 and report["targets_cut"] > 39_000
    assert report["supervised_targets"] == ((256 - (prompt - 1))
                                            + (len(dataset.examples[1]["token_ids"])
                                               - (dataset.examples[1]["prompt_length"] - 1)))

    out = tmp_path / "run"
    assert main([*FAST_RUN, "--out", str(out), "--max-length", "48"]) == 0
    printed = capsys.readouterr().out
    assert "--max-length 48 cuts" in printed and "supervised target tokens" in printed
    history = strict_load(out / "tiny-gpt-history.json")
    assert history["data"]["train"]["records_cut"] > 0 and history["data"]["train"]["targets_cut"] > 0
    assert strict_load(out / "tiny-gpt.json")["supervision"] == history["data"]


# ---- 4. checkpoints --------------------------------------------------------------------------------------


def _train_tiny(folder, resume=False, crash_at=None):
    model = tiny_model()

    def crash(step, loss):
        if step == crash_at:
            raise KeyboardInterrupt

    history = train(model, make_loaders(), epochs=3, lr=2e-3, eval_every=2, eval_batches=2, cosine=True,
                    checkpoint_dir=folder, resume=resume, progress=False, on_step=crash)
    return model, history


def test_two_checkpoints_are_kept_with_size_and_sha256(tmp_path):
    _train_tiny(tmp_path)
    pointer = strict_load(tmp_path / "latest.json")
    assert [c["step"] for c in pointer["checkpoints"]] == [12, 10]
    for entry in pointer["checkpoints"]:
        for f in entry["files"].values():
            assert ((tmp_path / f["name"]).stat().st_size == f["size"]
                    and ckpt.sha256_file(tmp_path / f["name"]) == f["sha256"])
    assert (strict_load(tmp_path / "best.json")["file"]["sha256"]
            == ckpt.sha256_file(tmp_path / "best.safetensors"))


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    full_model, full = _train_tiny(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        _train_tiny(tmp_path / "crashed", crash_at=7)  # checkpoints of steps 4 and 6 are on disk
    pointer = strict_load(tmp_path / "crashed" / "latest.json")
    assert [c["step"] for c in pointer["checkpoints"]] == [6, 4]
    newest = tmp_path / "crashed" / pointer["checkpoints"][0]["files"]["weights"]["name"]
    newest.write_bytes(newest.read_bytes()[:100])  # a copy cut short
    model, history = _train_tiny(tmp_path / "crashed", resume=True)
    out = capsys.readouterr().out
    assert "step 6" in out and "damaged" in out and "at step 4" in out
    assert [r["val_loss"] for r in history.rows] == [r["val_loss"] for r in full.rows]
    assert all(torch.equal(a, b)
               for a, b in zip(full_model.state_dict().values(), model.state_dict().values()))


def test_no_usable_checkpoint_names_the_folder_and_restart(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _train_tiny(tmp_path, crash_at=7)
    for entry in strict_load(tmp_path / "latest.json")["checkpoints"]:
        (tmp_path / entry["files"]["optimizer"]["name"]).write_bytes(b"not a safetensors file")
    with pytest.raises(ckpt.CheckpointDamaged, match="--restart") as error:
        _train_tiny(tmp_path, resume=True)
    assert str(tmp_path) in str(error.value) and "step 6" in str(error.value) and "step 4" in str(error.value)
    _train_tiny(tmp_path, resume=False)  # starting over works


def test_damaged_best_weights_are_reported_not_trusted(tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        _train_tiny(tmp_path, crash_at=7)
    (tmp_path / "best.safetensors").write_bytes(b"broken")
    _, history = _train_tiny(tmp_path, resume=True)
    assert "best weights (step" in capsys.readouterr().out and math.isfinite(history.best_val_loss)


# ---- 5. late crashes lose the weights ---------------------------------------------------------------------


def test_a_lone_surrogate_is_refused_up_front(tmp_path, capsys, no_model):
    records = load_course_data()[:60]
    records[7] = dict(records[7], output=records[7]["output"] + "\ud83d")
    data = tmp_path / "surrogate.json"
    data.write_text(json.dumps(records))  # JSON escapes it as \ud83d, as any JSON writer may
    assert main([*FAST_RUN, "--out", str(tmp_path / "run"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "record 7, field 'output'" in err and "UTF-8" in err and "surrogate.json" in err


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin1.json"
    data = '[{"instruction": "Say café.", "output": "ok"}]'.encode("latin-1")
    path.write_bytes(data)
    with pytest.raises(RecordError,
                       match=rf"(?s)latin1.json.*not UTF-8: byte {data.index(0xE9)} is b'\\xe9'"):
        load_records(path)


def test_a_family_that_is_not_a_string_is_named(tmp_path):
    path = write_records(tmp_path / "family.json", [{"instruction": "a", "output": "b", "family": ["x"]}])
    with pytest.raises(RecordError, match="record 0, field 'family': wrong type"):
        load_records(path)


def test_weights_are_saved_before_the_test_answers(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("generation failed")

    monkeypatch.setattr(course, "answer_test_split", broken)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="generation failed"):
        main(["finetune", "--model", "tiny-gpt", "--fast", "--out", str(out)])
    assert (out / "tiny-gpt.safetensors").exists() and strict_load(out / "tiny-gpt.json")["steps"] == 6


# ---- 6. saved metadata tells the truth ---------------------------------------------------------------------


def test_saved_metadata_is_strict_and_true(tmp_path):
    out = tmp_path / "run"
    assert main([*FAST_RUN, "--out", str(out)]) == 0
    info = strict_load(out / "tiny-gpt.json")
    assert info["fast"] is True and info["settings"]["fast"] is True
    assert info["test_responses"] is None and "not generated" in info["test_responses_note"]
    for path in out.rglob("*.json"):
        strict_load(path)
    ckpt.atomic_write_json(tmp_path / "x.json",
                           {"test_loss": float("nan"), "best": float("inf"), "rows": [float("nan")]})
    assert strict_load(tmp_path / "x.json") == {"test_loss": None, "test_loss_note": "not a number (NaN)",
                                                "best": None, "best_note": "inf (infinite)", "rows": [None]}


def test_interrupted_atomic_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "answers.json"
    ckpt.atomic_write_bytes(target, b"old")

    def crash(*args):
        raise KeyboardInterrupt  # an interruption between writing the temp file and renaming it

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["answers.json"]
