"""benchmarks/gpu_check.py runs end to end (CPU smoke run, tiny model); it refuses a CPU by default."""

import pytest

from benchmarks import gpu_check


def test_gpu_check_smoke_run_on_cpu_passes_and_prints_its_table(capsys):
    assert gpu_check.main(["--dry-run", "--model", "tiny-gpt", "--steps", "3", "--prompts", "2",
                           "--new-tokens", "3"]) == 0
    out = capsys.readouterr().out
    for check in ("training float32", "training bf16 autocast", "batched generation", "data parallel"):
        assert check in out


def test_gpu_check_fails_when_bf16_drifts_beyond_the_tolerance(capsys):
    assert gpu_check.main(["--allow-cpu", "--model", "tiny-gpt", "--steps", "2", "--prompts", "1",
                           "--new-tokens", "2", "--tolerance", "-1"]) == 1
    assert "FAILED: training bf16 autocast" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is present")
def test_gpu_check_needs_a_gpu_unless_told(capsys):
    assert gpu_check.main(["--model", "tiny-gpt"]) == 2
    assert "No CUDA device" in capsys.readouterr().err
