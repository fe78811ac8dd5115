"""Embedded judge speed, the course's server against its predecessor in the same run: start time and s/record.

Two judge servers run side by side on 127.0.0.1 and take turns on every request, so load drift on a shared
machine hits both alike; each request is what ``helpers.judge.Judge`` sends (default rubric, temperature 0,
logprobs with top-10):

- new: ``helpers.judge_server`` (llama-cpp-python's ``create_chat_completion`` with ``JudgeLlama``);
- old (reference): the hand-written server on llama-cpp-python's private internals that the course shipped
  before, run from git (``OLD_COMMIT:helpers/judge_server.py`` written to a temporary file);
- library as is (``--library``): ``Llama(logits_all=True)`` and ``create_chat_completion(logprobs=True)``
  behind the same HTTP layer, what ``llama_cpp.server`` runs per request: the library's own logprobs and
  prefix reuse; timed with the rubric prefix reused between requests and, as a check that the library
  reuses it, without (a unique nonce at the start of the system message defeats the prefix cache).

Records: distinct (record, response) pairs from the calibration set with a fixed wordy paragraph appended,
so the whole prompt is about 300 tokens, and test-split records with their reference answer as the response
(``--responses FILE`` scores a saved responses file with the new server instead). Determinism: the same
request sent twice in a row must give identical tokens and logprobs.

    python -m benchmarks judge                       # 6 records of each kind
    python -m benchmarks judge --records 8 --library

On a shared machine, absolute times drift with the load (printed); compare the ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from benchmarks.common import print_table

DESCRIPTION = ("embedded LLM judge: start time and s/record, new server against the old one "
               "(and the library as is)")

# The last commit with the hand-written server (the reference).
OLD_COMMIT = "621ab32e819445eb106da3f3f1218f4bb5bc3708"
REPO = Path(__file__).resolve().parent.parent

# Appended to each calibration response: a wordy answer, so the whole prompt is about 300 tokens.
VERBOSE_TAIL = (
    " To explain the answer in more detail: I first read the instruction carefully and identified exactly"
    " what was being asked, then I recalled the relevant facts and rules, applied them step by step, and"
    " checked the result against common mistakes that people make with this kind of question. I also"
    " considered whether the question could be interpreted in another way, but the most natural reading leads"
    " to the answer given above. If any part of the question was ambiguous, I chose the interpretation that a"
    " teacher would most likely intend, and I kept the answer short so that it is easy to check."
)


def _long_pairs(n: int) -> list[tuple[dict, str]]:
    from helpers.judge import load_calibration

    calibration = load_calibration()
    pairs = [(r, r["responses"][kind] + VERBOSE_TAIL) for kind in calibration["order"]
             for r in calibration["records"]]
    return pairs[:n]


def _test_pairs(n: int) -> list[tuple[dict, str]]:
    from helpers.course import FinetuneSettings, load_splits

    test = load_splits(FinetuneSettings.for_mode(fast=False), verbose=False).test
    step = max(1, len(test) // max(1, n))  # spread over the split's task families
    return [(r, r["output"]) for r in test[::step][:n]]


def _old_server_class():
    """EmbeddedJudgeServer that runs the old module from git; None where git cannot give it."""
    from helpers.judge_server import EmbeddedJudgeServer

    try:
        source = subprocess.run(["git", "show", f"{OLD_COMMIT}:helpers/judge_server.py"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"old server skipped: git show {OLD_COMMIT[:8]} failed ({exc})")
        return None
    from helpers.config import cache_dir

    path = cache_dir("judge") / "old_judge_server.py"  # beside the servers' logs, rewritten every run
    path.write_text(source)

    class OldServer(EmbeddedJudgeServer):
        def command(self, model_path):
            args = super().command(model_path)[3:]  # without "python -m helpers.judge_server"
            del args[args.index("--watch-parent") + 1]  # the old flag takes no process id
            return [sys.executable, str(path)] + args

    return OldServer


# llama-cpp-python as it is behind the same HTTP layer: Llama(logits_all=True), the library's logprobs and
# prefix reuse (what llama_cpp.server runs per request). Its own process, like the servers: no torch here.
LIBRARY_SERVER = """
import os, sys, threading, time
from http.server import ThreadingHTTPServer
from llama_cpp import Llama
from helpers.judge_server import _Handler
port, model, parent, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), os.cpu_count()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
t0 = time.perf_counter()
llm = Llama(model, n_ctx=2048, n_threads=n, n_threads_batch=n, seed=123, logits_all=True, verbose=False)
t1 = time.perf_counter()
llm.create_chat_completion([{"role": "user", "content": "Reply with the digit 1."}], max_tokens=1)
httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
httpd.llm, httpd.model_name = llm, "library"
print(f"ready (load {t1 - t0:.1f} s, warm-up {time.perf_counter() - t1:.1f} s)", flush=True)
httpd.serve_forever()
"""


def _library_server_class():
    from helpers.judge_server import EmbeddedJudgeServer

    class LibraryServer(EmbeddedJudgeServer):
        def command(self, model_path):
            return [sys.executable, "-c", LIBRARY_SERVER, str(self.port), str(model_path), str(os.getpid())]

    return LibraryServer


def _client_ask(client):
    def ask(messages, seed, max_tokens, top_logprobs):
        r = client.chat.completions.create(model="judge", messages=messages, temperature=0, seed=seed,
                                           max_tokens=max_tokens, logprobs=True, top_logprobs=top_logprobs)
        steps = [(s.token, s.logprob, [(t.token, t.logprob) for t in s.top_logprobs])
                 for s in r.choices[0].logprobs.content]
        return r.usage.prompt_tokens, (r.choices[0].message.content, steps)

    return ask


def _with_nonce(messages):
    """A different first line for each request: nothing can be reused."""
    first = dict(messages[0], content=f"[request {uuid.uuid4().hex[:8]}]\n{messages[0]['content']}")
    return [first] + messages[1:]


def _start(server_class, label):
    server = server_class()
    t0 = time.perf_counter()
    server.start()
    seconds = time.perf_counter() - t0
    m = re.search(r"load ([\d.]+) s, warm-up ([\d.]+) s", server.log_path.read_text())
    split = f"model load {m.group(1)} s + warm-up {m.group(2)} s" if m else ""
    return server, {"way": label, "start to ready s": f"{seconds:.1f}", "of which": split}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks judge", description=DESCRIPTION)
    parser.add_argument("--records", type=int, default=6, help="records of each kind to time each way")
    parser.add_argument("--library", action="store_true", help="also time llama-cpp-python as it is")
    parser.add_argument("--responses", default=None,
                        help="a responses JSON file to score in full (new server)")
    args = parser.parse_args(argv)

    from openai import OpenAI

    from helpers.judge import Judge
    from helpers.judge_server import EmbeddedJudgeServer, judge_model_path

    print(f"cpu cores={os.cpu_count()}, load average before start={os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    judge_model_path()
    print(f"model file ready (assembled/verified or cached) in {time.perf_counter() - t0:.1f} s")
    servers, start_rows = [], []
    try:
        new, row = _start(EmbeddedJudgeServer, "new")
        servers.append(new)
        start_rows.append(row)
        old_class = _old_server_class()
        ways = {"new": _client_ask(OpenAI(base_url=new.base_url, api_key="x", max_retries=0, timeout=600))}
        if old_class:
            old, row = _start(old_class, "old (reference)")
            servers.append(old)
            start_rows.append(row)
            ways["old (reference)"] = _client_ask(OpenAI(base_url=old.base_url, api_key="x",
                                                         max_retries=0, timeout=600))
        if args.library:
            library, row = _start(_library_server_class(), "library as is")
            servers.append(library)
            start_rows.append(row)
            ways["library as is"] = _client_ask(OpenAI(base_url=library.base_url, api_key="x",
                                                       max_retries=0, timeout=600))
        print_table(start_rows, ["way", "start to ready s", "of which"])

        judge = Judge(server=new)
        seed, max_tokens, top = judge.seed, judge.prompt.max_tokens, judge.top_logprobs
        kinds = {"~300-token prompts": _long_pairs(args.records),
                 "test-split records": _test_pairs(args.records)}
        variants = [(way, False) for way in ways] + ([("library as is", True)] if args.library else [])
        warm = judge.prompt.messages({"instruction": "Say ok.", "input": "", "output": "ok"}, "ok")
        for ask in ways.values():  # the rubric prefix into each cache
            ask(warm, seed, max_tokens, top)
        times = {(kind, v): [] for kind in kinds for v in variants}
        tokens = {kind: [] for kind in kinds}
        for kind, pairs in kinds.items():
            for record, response in pairs:
                messages = judge.prompt.messages(record, response)
                for way, nonce in variants:  # the ways take turns on every request
                    t0 = time.perf_counter()
                    n, _ = ways[way](_with_nonce(messages) if nonce else messages, seed, max_tokens, top)
                    times[(kind, (way, nonce))].append(time.perf_counter() - t0)
                tokens[kind].append(n)
        rows = []
        for kind in kinds:
            base = statistics.median(times[(kind, ("old (reference)", False))]) if old_class else None
            for way, nonce in variants:
                s = times[(kind, (way, nonce))]
                rows.append({"records": kind, "way": way + (", whole prompt (nonce)" if nonce else ""),
                             "n": len(s), "prompt tokens": round(statistics.mean(tokens[kind])),
                             "s/record median": f"{statistics.median(s):.2f}",
                             "mean": f"{statistics.mean(s):.2f}",
                             "x old": f"{statistics.median(s) / base:.2f}" if base else ""})
        print_table(rows, list(rows[0]))

        same = []
        messages = judge.prompt.messages(*kinds["~300-token prompts"][0])
        for way, ask in ways.items():
            first, again = ask(messages, seed, max_tokens, top)[1], ask(messages, seed, max_tokens, top)[1]
            same.append({"way": way, "same request twice": "identical" if first == again else "DIFFERENT",
                         "first logprob": f"{first[1][0][1]:.6f} / {again[1][0][1]:.6f}" if first[1] else ""})
        print_table(same, list(same[0]))
        print(f"load average now {os.getloadavg()[0]:.1f}")
        if args.responses:
            from helpers.review import load_responses

            records = load_responses(args.responses)
            t0 = time.perf_counter()
            report = judge.score_records(records, progress=False)
            total = time.perf_counter() - t0
            print(f"scored {len(records)} responses from {args.responses} with the new server in {total:.1f} "
                  f"s ({total / len(records):.2f} s/record, {report.n_unparsable} unparsable)")
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
