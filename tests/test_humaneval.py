"""HumanEval safe runner: right, wrong, hanging, flooding, exiting and escaping completions, each with its
outcome."""

import contextlib
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from helpers import humaneval
from helpers.humaneval import check_completion, pass_at_k


@pytest.fixture(scope="module")
def problems():
    return humaneval.load_humaneval()


@pytest.fixture()
def victim(tmp_path_factory):
    """A file outside any sandbox folder that a completion will try to destroy."""
    path = tmp_path_factory.mktemp("outside") / "precious.txt"
    path.write_text("keep me")
    return path


@pytest.fixture()
def outsider(monkeypatch):
    """A process outside the sandbox, started with a secret in its environment (as a notebook kernel holds a
    token)."""
    monkeypatch.setenv("HUMANEVAL_TEST_SECRET", "s3cret-" + os.urandom(4).hex())
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture()
def kernel_layer():
    """Skip where neither namespaces nor dropping root work here: the audit hook alone cannot stop these
    escapes."""
    layers = humaneval.sandbox_layers()
    if not {"namespaces", "nobody"} & set(layers):
        pytest.skip(f"this machine allows no kernel layer (sandbox layers: {layers})")


def test_the_package_ships_164_problems(problems):
    assert len(problems) == 164
    assert problems[0]["task_id"] == "HumanEval/0" and problems[0]["entry_point"] == "has_close_elements"


def test_correct_completion_passes(problems):
    for problem in problems[:3] + [problems[162]]:  # 162 imports hashlib: the standard library stays readable
        outcome = check_completion(problem, problem["canonical_solution"])
        assert outcome.status == "passed", outcome.detail


def test_wrong_completion_fails_with_the_assertion(problems):
    outcome = check_completion(problems[0], "    return False\n")
    assert outcome.status == "failed" and "AssertionError" in outcome.detail


def test_hanging_completion_is_stopped_by_the_time_limit(problems):
    for body in ("    while True:\n        pass\n", "    import time\n    time.sleep(60)\n"):
        outcome = check_completion(problems[0], body, timeout=1.0)
        assert outcome.status == "timeout" and outcome.seconds < 10


@pytest.mark.parametrize("body", [
    "    raise SystemExit(0)\n",
    "    exit()\n",
    "    import sys\n    sys.exit(0)\n",
    "    import os\n    os._exit(0)\n",
    # forging the report: every 32-byte value in reach of the frames, written to every descriptor
    "    import os, sys\n    f, found = sys._getframe(), [b'0' * 32]\n    while f:\n"
    "        found += [v for v in (*f.f_locals.values(), *f.f_globals.values())\n"
    "                  if isinstance(v, bytes) and len(v) == 32]\n"
    "        f = f.f_back\n    for fd in range(3, 256):\n        for value in found:\n            try:\n"
    "                os.write(fd, value)\n            except OSError:\n                pass\n"
    "    os._exit(0)\n",
])
def test_leaving_before_check_returns_is_not_a_pass(problems, body):
    outcome = check_completion(problems[0], body)
    assert outcome.status == "failed", outcome


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_an_output_flood_is_capped_and_stopped_on_time(problems, stream):
    tracemalloc.start()
    try:
        body = f"    import sys\n    while True:\n        sys.{stream}.write('abc' * 1000)\n"
        outcome = check_completion(problems[0], body, timeout=2.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcome.status == "timeout" and outcome.seconds < 5, outcome
    assert peak < 1 << 20, f"the parent held {peak / 2**20:.0f} MB of the child's output"


def test_nothing_is_left_running_after_a_timeout(problems, monkeypatch):
    folders, mkdtemp = [], humaneval.tempfile.mkdtemp
    monkeypatch.setattr(humaneval.tempfile, "mkdtemp",
                        lambda **kw: folders.append(mkdtemp(**kw)) or folders[-1])
    body = ("    import os, time\n    try:\n        os.setsid()\n    except OSError:\n        pass\n"
            "    time.sleep(60)\n")
    outcome = check_completion(problems[0], body, timeout=1.0)  # a new session does not take it out of reach
    time.sleep(0.2)

    def cmdline(pid):
        with contextlib.suppress(OSError):
            return Path(f"/proc/{pid}/cmdline").read_bytes()
        return b""

    assert outcome.status == "timeout"
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and folders[-1].encode() in cmdline(pid)]


def test_the_end_of_a_long_stderr_is_kept(problems):
    body = "    import sys\n    sys.stderr.write('x' * 10**6)\n    raise ValueError('the end')\n"
    outcome = check_completion(problems[0], body)
    assert outcome.status == "failed" and outcome.detail.endswith("ValueError: the end")


def test_an_outside_process_cannot_be_signalled(problems, kernel_layer, outsider):
    body = ("    import os, signal\n"
            f"    signal.pidfd_send_signal(os.pidfd_open({outsider.pid}), signal.SIGKILL)\n    return True\n")
    assert check_completion(problems[0], body).status == "failed"
    with pytest.raises(subprocess.TimeoutExpired):
        outsider.wait(timeout=0.5)


@pytest.mark.parametrize("attack", [
    "    import os\n"
    "    os.open('escaped.txt', os.O_WRONLY | os.O_CREAT, dir_fd=os.open({folder!r}, os.O_RDONLY))\n"
    "    return True\n",
    "    import os, posixpath\n    posixpath.realpath = lambda path, **_: os.getcwd()\n"
    "    open({path!r}, 'w').write('x')\n    return True\n",
])
def test_writing_outside_through_a_loophole_is_contained(problems, kernel_layer, tmp_path, attack):
    escaped = tmp_path / "escaped.txt"
    outcome = check_completion(problems[0], attack.format(folder=str(tmp_path), path=str(escaped)))
    assert outcome.status == "failed" and not escaped.exists()


def test_no_outside_environment_is_readable(problems, outsider):
    secret = os.environ["HUMANEVAL_TEST_SECRET"].encode()
    body = ("    import os\n    found = []\n"
            f"    for pid in [os.getppid(), {outsider.pid}, *os.listdir('/proc')]:\n        try:\n"
            f"            found += [pid] if {secret!r} in open(f'/proc/{{pid}}/environ', 'rb').read()"
            " else []\n"
            "        except OSError:\n            pass\n    raise RuntimeError(f'secret found in {found}')\n")
    outcome = check_completion(problems[0], body)
    assert outcome.detail.endswith("secret found in []"), outcome.detail


@pytest.mark.parametrize("attack", [
    "    import os\n    os.remove({path!r})\n    return True\n",
    "    import shutil\n    shutil.rmtree({folder!r})\n    return True\n",
    "    open({path!r}, 'w').write('')\n    return True\n",
    "    import os\n    os.system('rm -f {path}')\n    return True\n",
    "    import subprocess\n    subprocess.run(['rm', '-f', {path!r}])\n    return True\n",
    "    import ctypes\n    ctypes.CDLL(None).unlink({path!r}.encode())\n    return True\n",
])
def test_file_deleting_completion_is_contained(problems, victim, attack):
    outcome = check_completion(problems[0], attack.format(path=str(victim), folder=str(victim.parent)))
    assert outcome.status == "failed" and "sandbox" in outcome.detail, outcome.detail
    assert victim.read_text() == "keep me"


def test_writing_inside_the_working_folder_is_allowed_and_the_folder_is_removed(problems):
    body = ("    import os\n    open('scratch.txt', 'w').write(os.getcwd())\n    os.remove('scratch.txt')\n"
            "    return any(abs(a - b) < threshold for i, a in enumerate(numbers)"
            " for j, b in enumerate(numbers) if i != j)\n")
    assert check_completion(problems[0], body).status == "passed"


def test_no_network(problems):
    body = "    import socket\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n    return True\n"
    outcome = check_completion(problems[0], body)
    assert outcome.status == "failed" and "sandbox" in outcome.detail


def test_every_layer_this_machine_allows_is_used():
    layers = humaneval.sandbox_layers()
    assert layers[-2:] == ("limits", "audit hook")
    unshare = shutil.which("unshare")
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    flags = ["--pid", "--fork", "--mount", "--net", "--mount-proc"]
    if unshare and subprocess.run([unshare, *user, *flags, "true"]).returncode == 0:
        assert "namespaces" in layers
    if os.geteuid() == 0 and "namespaces" in layers:
        assert "nobody" in layers


def test_without_namespaces_it_warns_and_still_runs(problems, monkeypatch, capsys):
    monkeypatch.setattr(humaneval.shutil, "which", lambda name: None)
    humaneval.sandbox_layers.cache_clear()
    try:
        assert "namespaces" not in humaneval.sandbox_layers()
        assert "not available here" in capsys.readouterr().err
        assert check_completion(problems[0], problems[0]["canonical_solution"]).passed
    finally:
        humaneval.sandbox_layers.cache_clear()


def test_pass_at_k_unbiased_estimator():
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # 1 - C(7,5)/C(10,5)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - (7 * 6 * 5 * 4 * 3) / (10 * 9 * 8 * 7 * 6))
    assert pass_at_k(5, 4, 2) == 1.0  # any 2 of 5 samples include a passing one
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_summary_counts_outcomes(problems):
    results = humaneval.evaluate_completions(
        problems[:2], [[problems[0]["canonical_solution"], "    return 0\n"],
                       ["    while True: pass\n", "    return 1\n"]], timeout=1.0)
    assert list(results["status"]) == ["passed", "failed", "timeout", "failed"]
    summary = humaneval.pass_at_k_summary(results).iloc[0]
    assert summary["pass@1"] == pytest.approx(0.25) and summary["solved_any"] == 1 and summary["timeout"] == 1


def test_generated_completions_are_cut_at_the_next_top_level_statement(problems):
    import torch

    from helpers.models import TINY_GPT_CONFIG, GPTModel
    from helpers.tokenizers import get_tokenizer

    assert humaneval.truncate_completion("    return 1\n\ndef other():\n    pass") == "    return 1\n"
    torch.manual_seed(0)
    completions = humaneval.generate_completions(GPTModel(TINY_GPT_CONFIG), get_tokenizer("gpt2"),
                                                 problems[:2], max_new_tokens=8)
    assert [len(c) for c in completions] == [1, 1]
    assert all(isinstance(c[0], str) and not any(s in c[0] for s in humaneval.STOP_SEQUENCES)
               for c in completions)
