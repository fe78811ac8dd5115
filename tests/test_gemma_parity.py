"""The course's Gemma 3 270M against Hugging Face transformers' Gemma3ForCausalLM, both from the same GGUF.

Relative error is ``max|ours - reference| / max|reference|`` over a whole tensor, in float32:
- the final hidden states (after the last norm) at every position of every prompt, and
- the logits (262,144 per position) at selected positions: the first and last few, and around the
  512-token sliding window of the long prompt. The output head is one matrix product with the tied
  embedding, so this covers the head without holding a (T, 262144) tensor per long prompt.

transformers reads the GGUF with its own parser and dequantizer, so this checks our weight mapping (norm
offset, Q/K order, tied head), the config we read from the metadata and the architecture at once.

Loading the reference takes a minute or more on 2 CPU cores, so its outputs are cached in
``cache_dir("reference")`` under a key made of the GGUF hash, the transformers version and the exact token
ids; every run still computes the course model's outputs and compares them. ``COURSE_PARITY_REFRESH=1``
recomputes the reference.
"""

import hashlib
import json
import os
import warnings

import pytest
import torch

from helpers.config import cache_dir
from helpers.models import Gemma3Model
from helpers.registry import load_model
from helpers.weights import GEMMA3_GGUF_SHA256, gemma3_gguf_path

transformers = pytest.importorskip(
    "transformers", reason="parity tests need the reference extra: pip install -e '.[reference]'")

MAX_RELATIVE_ERROR = 1e-4
GREEDY_TOKENS = 6

PROMPTS = {
    "alpaca": "Below is an instruction that describes a task. Write a response that appropriately completes "
              "the request.\n\n### Instruction:\nName the plural of mouse.\n\n### Response:\n",
    "multilingual": "Le renard brun saute par-dessus le chien paresseux. 日本の首都は",
    "code": "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    # 583 tokens: beyond the 512-token sliding window, so local and global layers see different keys
    "long": " ".join(
        f"Paragraph {i}: the river {['rose', 'fell', 'froze', 'wandered'][i % 4]} past village number "
        f"{i * 7 % 23}, where {['bakers', 'miners', 'poets'][i % 3]} counted {i * i} stones "
        "before the evening bell."
        for i in range(22)
    ),
}
GREEDY = ["alpaca", "code"]


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours.float() - reference.float()).abs().max() / reference.float().abs().max()).item()


def selected_positions(length: int) -> list[int]:
    picks = set(range(min(4, length))) | set(range(max(0, length - 6), length))
    if length > 520:
        picks |= set(range(508, 518))  # around the sliding window's edge
    return sorted(picks)


@pytest.fixture(scope="module")
def course():
    return load_model("gemma-3-270m", device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def prompt_ids(course):
    tokenizer = course[1]
    ids = {name: torch.tensor([[tokenizer.bos_id] + tokenizer.encode(text)])
           for name, text in PROMPTS.items()}
    assert 520 < ids["long"].shape[1] < 700
    return ids


def compute_reference(prompt_ids: dict) -> tuple[dict, dict]:
    """Outputs of transformers' Gemma3ForCausalLM loaded from the GGUF (about a minute or more on CPU)."""
    path = gemma3_gguf_path(verify=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.Gemma3ForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                               dtype=torch.float32).eval()
    out = {}
    with torch.no_grad():
        for name, idx in prompt_ids.items():
            hidden = model.model(input_ids=idx).last_hidden_state  # (1, T, C) after the final norm
            out[f"{name}.hidden"] = hidden
            out[f"{name}.logits"] = model.lm_head(hidden[:, selected_positions(idx.shape[1])])  # (1, S, V)
        for name in GREEDY:
            idx = prompt_ids[name]
            generated = model.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=GREEDY_TOKENS,
                                       do_sample=False)
            out[f"{name}.greedy"] = generated[:, idx.shape[1] :]
    c = model.config
    config = {
        "vocab_size": c.vocab_size, "emb_dim": c.hidden_size, "n_layers": c.num_hidden_layers,
        "n_heads": c.num_attention_heads, "n_kv_heads": c.num_key_value_heads, "head_dim": c.head_dim,
        "hidden_dim": c.intermediate_size, "context_length": c.max_position_embeddings,
        "sliding_window": c.sliding_window, "layer_types": list(c.layer_types),
        "rope_base": c.rope_parameters["full_attention"]["rope_theta"],
        "rope_local_base": c.rope_parameters["sliding_attention"]["rope_theta"],
        "query_pre_attn_scalar": c.query_pre_attn_scalar, "rms_norm_eps": c.rms_norm_eps,
        "softcapping": [c.final_logit_softcapping, c.attn_logit_softcapping],
        "hidden_activation": c.hidden_activation, "tie_word_embeddings": c.tie_word_embeddings,
    }
    return out, config


@pytest.fixture(scope="module")
def reference(prompt_ids):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    key_source = json.dumps(
        {"gguf": GEMMA3_GGUF_SHA256, "transformers": transformers.__version__, "greedy": GREEDY_TOKENS,
         "ids": {k: v.tolist() for k, v in prompt_ids.items()}},
        sort_keys=True,
    )
    key = hashlib.sha256(key_source.encode()).hexdigest()[:16]
    path = cache_dir("reference") / f"gemma3-parity-{key}.safetensors"
    if path.is_file() and os.environ.get("COURSE_PARITY_REFRESH") != "1":
        with safe_open(str(path), framework="pt") as f:
            config = json.loads(f.metadata()["config"])
        return load_file(str(path)), config
    out, config = compute_reference(prompt_ids)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    save_file({k: v.contiguous() for k, v in out.items()}, str(tmp), metadata={"config": json.dumps(config)})
    os.replace(tmp, path)
    return out, config


def test_config_read_from_gguf_equals_transformers(course, reference):
    ours, theirs = course[0].cfg, reference[1]
    for key in ("vocab_size", "emb_dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "hidden_dim",
                "context_length", "sliding_window", "layer_types", "rope_base", "rope_local_base",
                "query_pre_attn_scalar"):
        assert ours[key] == theirs[key], key
    assert (ours["sliding_window"], ours["rope_base"], ours["rope_local_base"]) == (512, 1e6, 1e4)
    assert ours["layer_types"].count("full_attention") == 3 and ours["layer_types"][5] == "full_attention"
    assert ours["rms_norm_eps"] == pytest.approx(theirs["rms_norm_eps"], rel=1e-7)
    assert theirs["softcapping"] == [None, None] and theirs["tie_word_embeddings"]
    assert theirs["hidden_activation"] == "gelu_pytorch_tanh"


@pytest.mark.parametrize("name", list(PROMPTS))
def test_hidden_states_and_logits_equal_transformers(course, prompt_ids, reference, name):
    model = course[0]
    idx = prompt_ids[name]
    with torch.no_grad():
        hidden = model.body(idx)  # (1, T, C)
        logits = model.head(hidden[:, selected_positions(idx.shape[1])])  # (1, S, V)
    hidden_error = relative_error(hidden, reference[0][f"{name}.hidden"])
    logits_error = relative_error(logits, reference[0][f"{name}.logits"])
    print(f"{name} ({idx.shape[1]} tokens): relative error hidden {hidden_error:.2e}, logits "
          f"{logits_error:.2e}")
    assert hidden_error < MAX_RELATIVE_ERROR and logits_error < MAX_RELATIVE_ERROR


def test_the_long_prompt_exercises_the_sliding_window(course, prompt_ids, reference):
    """Control: the same weights with an unbounded window match before position 512 and not after."""
    model = course[0]
    with torch.device("meta"):
        no_window = Gemma3Model({**model.cfg, "sliding_window": 10**9})
    no_window.load_state_dict(model.state_dict(), assign=True)
    no_window.out_head.weight = no_window.tok_emb.weight
    with torch.no_grad():
        hidden = no_window.eval().body(prompt_ids["long"])
    expected = reference[0]["long.hidden"]
    assert relative_error(hidden[:, :512], expected[:, :512]) < MAX_RELATIVE_ERROR
    assert relative_error(hidden[:, 512:], expected[:, 512:]) > 100 * MAX_RELATIVE_ERROR


@pytest.mark.parametrize("name", GREEDY)
def test_greedy_continuation_equals_transformers(course, prompt_ids, reference, name):
    model, tokenizer = course
    cache, step, ours = model.new_cache(), prompt_ids[name], []
    with torch.no_grad():
        for _ in range(GREEDY_TOKENS):
            step = model(step, cache=cache)[:, -1].argmax(-1, keepdim=True)  # (1, 1)
            ours.append(int(step))
    print(f"greedy {name}: {tokenizer.decode(ours)!r}")
    assert ours == reference[0][f"{name}.greedy"][0].tolist()


def test_kv_cache_across_the_window_equals_full_sequence(course, prompt_ids):
    """Prefill 500 tokens, then feed one token at a time across position 512, where local layers drop keys."""
    model = course[0]
    idx = prompt_ids["long"][:, :520]
    with torch.no_grad():
        full = model.body(idx)[:, 500:]
        cache = model.new_cache()
        model.body(idx[:, :500], cache=cache)
        steps = torch.cat([model.body(idx[:, t : t + 1], cache=cache) for t in range(500, 520)], dim=1)
        error = relative_error(model.head(steps), model.head(full))
    print(f"KV cache vs full sequence (positions 500-519): relative error of logits {error:.2e}")
    assert error < MAX_RELATIVE_ERROR


def test_left_padded_batch_equals_unbatched(course, prompt_ids):
    """Three prompts of different lengths (one beyond the window) left-padded into one batch, with the mask
    and per-row positions generation uses, then two cached decoding steps."""
    model, tokenizer = course
    rows = [prompt_ids["long"][0, :520], prompt_ids["multilingual"][0], prompt_ids["code"][0]]
    width = max(len(r) for r in rows)
    idx = torch.stack([torch.cat([torch.full((width - len(r),), tokenizer.pad_id), r]) for r in rows])
    real = torch.stack([torch.arange(width) >= width - len(r) for r in rows])  # (3, width)
    positions = (real.long().cumsum(1) - 1).clamp(min=0)
    next_ids = torch.tensor([[236761, 669], [506, 236764], [107, 1217]])  # (3, 2) two more tokens per row
    with torch.no_grad():
        cache = model.new_cache()
        prompt_hidden = model.body(idx, positions=positions, attn_mask=real, cache=cache)
        mask = torch.cat([real, torch.ones(3, 1, dtype=torch.bool)], 1)
        step1 = model(next_ids[:, :1], positions=positions[:, -1:] + 1, attn_mask=mask, cache=cache)
        mask = torch.cat([mask, torch.ones(3, 1, dtype=torch.bool)], 1)
        step2 = model(next_ids[:, 1:], positions=positions[:, -1:] + 2, attn_mask=mask, cache=cache)
        for i, r in enumerate(rows):
            alone = model.body(torch.cat([r, next_ids[i]])[None])[0]  # (len + 2, C)
            hidden_error = relative_error(prompt_hidden[i, width - len(r) :], alone[: len(r)])
            logits_error = relative_error(torch.cat([step1[i], step2[i]]), model.head(alone[len(r) :]))
            print(f"row {i} ({len(r)} tokens): batched vs alone relative error hidden {hidden_error:.2e}, "
                  f"logits {logits_error:.2e}")
            assert hidden_error < MAX_RELATIVE_ERROR and logits_error < MAX_RELATIVE_ERROR
