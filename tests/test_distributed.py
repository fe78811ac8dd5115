"""Data parallel on the CPU (gloo, 2 processes): the same losses and weights as one process with the same
global batch, rank 0 the only writer, and a resume after one rank died mid-run."""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from helpers import distributed
from helpers.training import train
from test_training import PLAIN, RECORDS, make_loaders, tiny_model

TRAIN, VAL = RECORDS * 2, RECORDS[8:]  # 24 training rows: 3 global batches of 8 per epoch
KNOBS = dict(epochs=2, lr=1e-3, eval_every=2, eval_batches=None, warmup_steps=1, cosine=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(folder, resume=False, crash_rank=None, crash_at=None, grad_accum=1, batch_size=8):
    model = tiny_model()
    rank = distributed.world()[0]

    def on_step(step, loss):
        if rank == crash_rank and step == crash_at:
            raise KeyboardInterrupt(f"rank {rank} killed at step {step}")

    history = train(model, make_loaders(TRAIN, VAL, batch_size=batch_size), PLAIN, checkpoint_dir=folder,
                    resume=resume, progress=False, on_step=on_step, grad_accum=grad_accum, **KNOBS)
    return model, history


def _rank(rank, world_size, port, folder, out, resume, crash_rank, crash_at, grad_accum):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timedelta(seconds=60))
    try:
        if rank != 0:  # every file the course writes goes through atomic_write_bytes: rank 1 must not call it
            import helpers.checkpoints as checkpoints

            def refuse(*args, **kwargs):
                raise AssertionError(f"rank {rank} tried to write {args[0]}")

            checkpoints.atomic_write_bytes = refuse
        model, history = run(folder, resume, crash_rank, crash_at, grad_accum)
        os.makedirs(out, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.safetensors")
        with open(f"{out}/rank{rank}.json", "w") as f:
            json.dump(history.rows, f)
    finally:
        dist.destroy_process_group()


def launch(folder, out, resume=False, crash_rank=None, crash_at=None, grad_accum=1):
    mp.spawn(_rank, args=(2, free_port(), str(folder), str(out), resume, crash_rank, crash_at, grad_accum),
             nprocs=2, join=True)


def same_rows(a, b):
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_loss", "tokens_seen", "supervised_tokens", "lr"):
            assert ra[key] == pytest.approx(rb[key], abs=1e-5), (ra["step"], key)


def same_weights(model, path, atol=1e-5):
    theirs = load_file(str(path))
    for name, value in model.state_dict().items():
        gap = (value - theirs[name]).abs().max().item()
        assert gap <= atol, (name, gap)


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_two_ranks_train_like_one_process_with_the_same_global_batch(tmp_path, grad_accum):
    single_model, single = run(tmp_path / "single", grad_accum=grad_accum)
    launch(tmp_path / "ddp", tmp_path / "out", grad_accum=grad_accum)
    rows = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in (0, 1)]
    same_rows(single.rows, rows[0])
    same_rows(rows[0], rows[1])
    # Both ranks hold the single-process weights. The gradients agree to float rounding (sums in another
    # order); AdamW divides by sqrt(v), which lets the rounding grow to about 1e-5 over accumulated steps.
    for r in (0, 1):
        same_weights(single_model, tmp_path / "out" / f"rank{r}.safetensors", atol=1e-5 * grad_accum ** 2)
    assert (tmp_path / "ddp" / "latest.json").exists()  # rank 0 wrote the checkpoints


def test_a_run_killed_on_one_rank_resumes_to_the_uninterrupted_result(tmp_path):
    full_model, full = run(tmp_path / "single")
    with pytest.raises(mp.ProcessRaisedException):  # rank 1 dies at step 5; rank 0 loses its peer too
        launch(tmp_path / "ddp", tmp_path / "crashed", crash_rank=1, crash_at=5)
    assert json.loads((tmp_path / "ddp" / "latest.json").read_text())["step"] == 4
    launch(tmp_path / "ddp", tmp_path / "resumed", resume=True)
    same_rows(full.rows, json.loads((tmp_path / "resumed" / "rank0.json").read_text()))
    same_weights(full_model, tmp_path / "resumed" / "rank1.safetensors")


def test_single_process_helpers_are_no_ops():
    inputs, targets = torch.zeros(3, 4), torch.ones(3, 4)
    assert distributed.world() == (0, 1) and distributed.is_main()
    assert distributed.shard(inputs, targets)[0] is inputs and distributed.sum_over_ranks(7) == 7
    assert distributed.any_over_ranks(False) is False


def test_torchrun_finetune_command_trains_on_two_processes(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "ft"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           f"--master_port={free_port()}", "-m", "helpers", "finetune", "--model", "tiny-gpt",
                           "--fast", "--max-steps", "3", "--no-test-responses", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((out / "tiny-gpt.json").read_text())
    assert info["steps"] == 3 and (out / "tiny-gpt.safetensors").exists()
    from helpers.__main__ import main

    assert main(["finetune", "--model", "tiny-gpt", "--fast", "--max-steps", "3", "--no-test-responses",
                 "--out", str(tmp_path / "single")]) == 0  # the same run in one process
    two = json.loads((out / "tiny-gpt-history.json").read_text())["rows"]
    one = json.loads((tmp_path / "single" / "tiny-gpt-history.json").read_text())["rows"]
    same_rows(one, two)
