"""GGUF export: llama.cpp answers as the course's model does, and the judge's server serves the file.

tiny-gpt (random, seeded) and the real Gemma 3 270M (base) are exported with :func:`export_gguf`, loaded
with ``llama_cpp.Llama`` and asked the first ten test records (alpaca prompts, greedy). Checked:
token-for-token agreement with :func:`helpers.generation.generate` (f32 must agree on every record; f16
and q8_0 agreement is printed), llama.cpp's own tokenization of the prompts, the metadata (tokenizer,
special ids, chat template), the stored tensors against the model's weights, an interrupted export,
and the OpenAI client against the exported file behind :func:`gguf_server` on 127.0.0.1.
A fine-tuned Gemma, when a run has saved one, gets the same round trip in its own prompt style.
Numbers worth reporting are printed (run with ``-s``): the round-trip table, export seconds, tokens/s.
"""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from helpers.checkpoints import sha256_file
from helpers.config import RUNS_DIR
from helpers.data import format_prompt, load_course_data, split_records
from helpers.export import chat_template, record_messages
from helpers.export_gguf import (
    export_gguf,
    gguf_metadata,
    gguf_server,
    llama_generate,
    load_gguf,
    open_gguf,
    prompt_token_ids,
    round_trip_table,
)
from helpers.generation import generate
from helpers.models import GPTModel
from helpers.registry import load_model
from helpers.review import STYLE_STOPS

pytest.importorskip("llama_cpp", reason="GGUF tests need llama-cpp-python (the [judge] extra)")
from gguf import GGMLQuantizationType, GGUFReader  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

STYLE = "alpaca"
STOPS = STYLE_STOPS[STYLE]
N_RECORDS = 10
TINY_NEW_TOKENS = 16
GEMMA_NEW_TOKENS = 24
N_GEMMA = 5  # base Gemma in CI (2 cores); the fine-tuned test and notebook 07's full run answer all ten


def _tensor(reader: GGUFReader, name: str) -> np.ndarray:
    """A tensor of an open GGUF as float32 in PyTorch's (out, in) order."""
    info = next(t for t in reader.tensors if t.name == name)
    return dequantize(info.data, info.tensor_type).reshape(tuple(int(n) for n in reversed(info.shape)))


def _types(reader: GGUFReader) -> dict[str, GGMLQuantizationType]:
    return {t.name: GGMLQuantizationType(t.tensor_type) for t in reader.tensors}


def _readable(text: str) -> str:
    """Text without U+FFFD: the course decodes a lone byte of a split character as U+FFFD, llama-cpp-python
    drops it (``errors="ignore"``), so the two texts of the same ids differ only there."""
    return text.replace("\ufffd", "")


@pytest.fixture(scope="module")
def records():
    return split_records(load_course_data()).test[:N_RECORDS]


@pytest.fixture(scope="module")
def prompts(records):
    return [format_prompt(r, STYLE) for r in records]


# ------------------------------------------------------------------------------------------------ tiny-gpt


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-gpt", device="cpu")


@pytest.fixture(scope="module")
def tiny_reference(tiny, prompts):
    """The course's greedy answers (batched, as the course runs them): (texts, ids)."""
    model, tokenizer = tiny
    return generate(model, tokenizer, prompts, max_new_tokens=TINY_NEW_TOKENS, stop=STOPS, return_ids=True)


@pytest.fixture(scope="module")
def tiny_gguf(tiny, tmp_path_factory):
    model, tokenizer = tiny
    return export_gguf(model, tokenizer, tmp_path_factory.mktemp("tiny") / "tiny-gpt.f32.gguf", dtype="f32",
                       style=STYLE)


def test_tiny_f32_gives_the_course_tokens(tiny, tiny_gguf, tiny_reference, prompts):
    texts, ids = llama_generate(tiny_gguf, prompts, TINY_NEW_TOKENS, STOPS, tokenizer=tiny[1],
                                return_ids=True)
    assert ids == tiny_reference[1]
    assert texts == tiny_reference[0]
    assert all(len(i) > 0 for i in ids)
    # llama.cpp's own tokenizer and detokenizer (no course tokenizer) give the same ids too
    own_texts, own_ids = llama_generate(tiny_gguf, prompts, TINY_NEW_TOKENS, STOPS, return_ids=True)
    assert own_ids == ids
    assert [_readable(t) for t in own_texts] == [_readable(t) for t in texts]


def test_tiny_llama_tokenizer_matches_the_course(tiny, tiny_gguf, prompts):
    tokenizer = tiny[1]
    llm = load_gguf(tiny_gguf)
    try:
        for prompt in prompts + ["Every effort moves you", "a<|endoftext|>b", "  two  spaces\n\n\ttab 123"]:
            assert prompt_token_ids(llm, prompt) == tokenizer.encode(prompt), prompt  # and no start token
    finally:
        llm.close()


def test_tiny_metadata(tiny, tiny_gguf):
    model, tokenizer = tiny
    meta = gguf_metadata(tiny_gguf)
    assert meta["general.architecture"] == "gpt2"
    # GPT-2 prompts start without a start token
    assert meta["tokenizer.chat_template"] == chat_template(STYLE, bos=False)
    assert meta["general.course.prompt_style"] == STYLE
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    assert len(meta["tokenizer.ggml.tokens"]) == model.cfg["vocab_size"] == 50257
    assert len(meta["tokenizer.ggml.merges"]) == 50000
    assert meta["tokenizer.ggml.tokens"][6109] == "Every"  # tokenizer.encode("Every effort moves you")[0]
    assert meta["tokenizer.ggml.eos_token_id"] == meta["tokenizer.ggml.bos_token_id"] == tokenizer.eos_id
    assert tokenizer.eos_id == 50256
    assert meta["tokenizer.ggml.add_bos_token"] is False
    assert meta["gpt2.context_length"] == model.cfg["context_length"]
    assert meta["gpt2.block_count"] == model.cfg["n_layers"]
    assert meta["gpt2.attention.head_count"] == model.cfg["n_heads"]


def test_tiny_f32_tensors_are_the_weights(tiny, tiny_gguf):
    model = tiny[0]
    reader = GGUFReader(str(tiny_gguf))
    assert set(_types(reader).values()) == {GGMLQuantizationType.F32}
    assert np.array_equal(_tensor(reader, "token_embd.weight"), model.tok_emb.weight.detach().numpy())
    assert np.array_equal(_tensor(reader, "output.weight"), model.out_head.weight.detach().numpy())  # untied
    qkv, down_bias = model.blocks[1].att.qkv.weight, model.blocks[0].ff.proj.bias
    assert np.array_equal(_tensor(reader, "blk.1.attn_qkv.weight"), qkv.detach().numpy())  # (3 * 64, 64)
    assert np.array_equal(_tensor(reader, "blk.0.ffn_down.bias"), down_bias.detach().numpy())


def test_tied_head_is_written_once(tiny, tiny_gguf, prompts, tmp_path):
    """Pretrained GPT-2 ties its head to the embedding: no output.weight in the GGUF, llama.cpp ties it."""
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    model.out_head.weight = model.tok_emb.weight
    path = export_gguf(model, tokenizer, tmp_path / "tied.f32.gguf", dtype="f32", verbose=False)
    assert "output.weight" not in _types(GGUFReader(str(path)))
    assert tiny_gguf.stat().st_size - path.stat().st_size >= model.tok_emb.weight.numel() * 4
    _, expected = generate(model, tokenizer, prompts[:3], max_new_tokens=8, stop=STOPS, return_ids=True)
    _, ids = llama_generate(path, prompts[:3], 8, STOPS, tokenizer=tokenizer, return_ids=True)
    assert ids == expected


def test_tiny_q8_0_blocks_hold_the_weights(tiny, tmp_path):
    model, tokenizer = tiny
    path = export_gguf(model, tokenizer, tmp_path / "tiny.q8_0.gguf", dtype="q8_0", verbose=False)
    reader = GGUFReader(str(path))
    types = _types(reader)
    assert types["token_embd.weight"] == types["blk.0.attn_qkv.weight"] == GGMLQuantizationType.Q8_0
    assert types["blk.0.attn_norm.weight"] == types["blk.0.attn_qkv.bias"] == GGMLQuantizationType.F32
    weight = model.blocks[0].att.qkv.weight.detach().numpy()  # (192, 64): two blocks of 32 per row
    step = np.abs(weight.reshape(-1, 32)).max(axis=1, keepdims=True) / 127  # one int8 step of each block
    error = np.abs(_tensor(reader, "blk.0.attn_qkv.weight") - weight).reshape(-1, 32)
    # half a step from rounding to the nearest int8, plus the scale's own rounding to f16 (2^-11 relative)
    # times up to 127 steps
    assert (error <= step * (0.5 + 127 * 2.0**-11) * 1.0001).all()
    assert 0 < error.max() and error.mean() < step.mean() / 3


def test_failed_export_keeps_the_previous_file(tiny, tmp_path):
    model, tokenizer = tiny
    path = export_gguf(model, tokenizer, tmp_path / "model.gguf", dtype="f16", verbose=False)
    before = sha256_file(path)
    wrong = GPTModel({**model.cfg, "vocab_size": 1000})  # its vocabulary does not fit GPT-2's tokenizer
    with pytest.raises(ValueError, match="vocabulary"):
        export_gguf(wrong, tokenizer, path, dtype="f16", verbose=False)
    assert sha256_file(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]  # no temporary file left behind
    with pytest.raises(ValueError, match="dtype"):
        export_gguf(model, tokenizer, path, dtype="q4_0")


def test_server_answers_the_openai_client_like_the_course(tiny, tiny_gguf, tiny_reference, prompts):
    import openai

    tokenizer = tiny[1]
    with gguf_server(tiny_gguf) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        client = openai.OpenAI(base_url=server.base_url, api_key="none")
        assert [m.id for m in client.models.list().data] == ["tiny-gpt.f32"]
        replies = [client.completions.create(model=server.model_name, prompt=p, max_tokens=TINY_NEW_TOKENS,
                                             temperature=0, stop=STOPS) for p in prompts]
        with pytest.raises(openai.BadRequestError, match="prompt"):
            client.completions.create(model=server.model_name, prompt=None)  # sent as no prompt at all
        chat = client.chat.completions.create(model=server.model_name, messages=record_messages(
            {"instruction": "Name a color.", "input": ""}), max_tokens=TINY_NEW_TOKENS, temperature=0)
        raw = client.completions.create(model=server.model_name,
                                        prompt=format_prompt({"instruction": "Name a color."}),
                                        max_tokens=TINY_NEW_TOKENS, temperature=0)
    # the chat endpoint writes the course's prompt with the GGUF's template: no stray <|endoftext|> in front
    assert chat.usage.prompt_tokens == raw.usage.prompt_tokens
    assert _readable(chat.choices[0].message.content) == _readable(raw.choices[0].text)
    assert [_readable(r.choices[0].text) for r in replies] == [_readable(t) for t in tiny_reference[0]]
    assert [r.usage.prompt_tokens for r in replies] == [len(tokenizer.encode(p)) for p in prompts]
    assert [r.usage.completion_tokens for r in replies] == [len(i) for i in tiny_reference[1]]


def test_finetuned_tiny_round_trip(records, tmp_path):
    """A saved tiny-gpt run (FAST mode), loaded by load_finetuned, in the prompt style it was trained on."""
    from helpers.course import load_finetuned

    found = sorted(RUNS_DIR.glob("*/finetuned/tiny-gpt.safetensors"), key=lambda p: p.stat().st_mtime)
    if not found:
        pytest.skip(f"no fine-tuned tiny-gpt saved yet (runs/*/finetuned/tiny-gpt.safetensors, {RUNS_DIR})")
    model = load_finetuned("tiny-gpt", device="cpu", folder=found[-1].parent)
    style = model.finetune_info["settings"]["style"]
    table = round_trip_table(model, model.tokenizer, records, tmp_path, style=style, dtypes=("f32", "q8_0"),
                             max_new_tokens=TINY_NEW_TOKENS, name="tiny-gpt-finetuned")
    print(f"\nfine-tuned tiny-gpt ({found[-1]}, style {style}):\n" + table.to_string(index=False))
    assert _disagreements(table, "GGUF f32") == []
    assert gguf_metadata(table.attrs["paths"]["GGUF f32"], ["general.course.prompt_style"]) == {
        "general.course.prompt_style": style}


# ---------------------------------------------------------------------------------------------- Gemma 3 270M


@pytest.fixture(scope="module")
def gemma():
    return load_model("gemma-3-270m", device="cpu")


@pytest.fixture(scope="module")
def gemma_table(gemma, records, tmp_path_factory):
    """PyTorch and its f32 / f16 / q8_0 GGUFs on the first N_GEMMA records (files kept for the tests
    below)."""
    model, tokenizer = gemma
    table = round_trip_table(model, tokenizer, records[:N_GEMMA], tmp_path_factory.mktemp("gemma"),
                             style=STYLE, max_new_tokens=GEMMA_NEW_TOKENS, name="gemma-3-270m")
    print(f"\nGemma 3 270M, base, first {N_GEMMA} test records:\n" + table.to_string(index=False))
    return table


def _disagreements(table, runtime: str) -> list[tuple]:
    reference, ids = table.attrs["ids"]["PyTorch"], table.attrs["ids"][runtime]
    return [(i, a, b) for i, (a, b) in enumerate(zip(reference, ids)) if a != b]


def test_gemma_f32_gives_the_pytorch_tokens(gemma_table):
    assert _disagreements(gemma_table, "GGUF f32") == []
    assert gemma_table.attrs["texts"]["GGUF f32"] == gemma_table.attrs["texts"]["PyTorch"]
    assert sum(map(len, gemma_table.attrs["ids"]["PyTorch"])) > N_GEMMA  # it did answer something
    assert (gemma_table["llama_tokenizer_agrees"].dropna() == N_GEMMA).all()


def test_gemma_f16_and_q8_0_agreement(gemma_table):
    """Reported, not required equal: rounding weights may flip a near-tie. A broken file agrees on none."""
    for runtime in ("GGUF f16", "GGUF q8_0"):
        differ = _disagreements(gemma_table, runtime)
        print(f"\n{runtime}: {N_GEMMA - len(differ)}/{N_GEMMA} records give PyTorch's tokens; differing:",
              [(i, a[:8], b[:8]) for i, a, b in differ])
        assert N_GEMMA - len(differ) >= N_GEMMA // 2


def test_gemma_gguf_metadata_and_tensors(gemma, gemma_table):
    from helpers.weights import gemma3_gguf_path

    model, tokenizer = gemma
    paths = gemma_table.attrs["paths"]
    source = open_gguf(gemma3_gguf_path(verify=False))  # opened by the exports already: cached
    reader = GGUFReader(str(paths["GGUF f32"]))
    meta = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.tokens")}
    assert meta["general.architecture"] == "gemma3"
    assert meta["tokenizer.chat_template"] == chat_template(STYLE)
    assert (meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"],
            meta["tokenizer.ggml.padding_token_id"]) == (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id)
    assert meta["tokenizer.ggml.add_bos_token"] is True
    for key in ("gemma3.context_length", "gemma3.attention.sliding_window", "gemma3.rope.freq_base",
                "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        assert meta[key] == source.fields[key].contents(), key
    tokens = "tokenizer.ggml.tokens"
    assert reader.fields[tokens].contents() == source.fields[tokens].contents()
    assert [t.name for t in reader.tensors] == [t.name for t in source.tensors]
    # llama.cpp stores Gemma's RMSNorm weight as 1 + w; the course keeps w
    final_norm = model.final_norm.weight + 1
    assert np.array_equal(_tensor(reader, "output_norm.weight"), final_norm.detach().numpy())
    assert np.array_equal(_tensor(reader, "blk.3.attn_k_norm.weight"),
                          (model.blocks[3].att.k_norm.weight + 1).detach().numpy())
    q_proj = model.blocks[3].att.q_proj.weight  # (4 * 256, 640), rows in the checkpoint's order
    assert np.array_equal(_tensor(reader, "blk.3.attn_q.weight"), q_proj.detach().numpy())
    assert "output.weight" not in _types(reader)  # tied to token_embd
    types = _types(GGUFReader(str(paths["GGUF q8_0"])))
    assert types["token_embd.weight"] == types["blk.0.ffn_down.weight"] == GGMLQuantizationType.Q8_0
    assert types["blk.0.post_ffw_norm.weight"] == GGMLQuantizationType.F32
    # f16 halves every matrix (norms stay f32); q8_0 keeps 34 bytes per 32 values
    size = {runtime: Path(path).stat().st_size for runtime, path in paths.items()}
    assert 0.49 < size["GGUF f16"] / size["GGUF f32"] < 0.51
    assert 0.26 < size["GGUF q8_0"] / size["GGUF f32"] < 0.28


def test_gemma_server_completions_and_chat(gemma, gemma_table, records, prompts):
    """Raw prompt and chat template on the f32 file: the course's text, and exactly one <bos> in front."""
    import openai

    tokenizer = gemma[1]
    expected = gemma_table.attrs["texts"]["PyTorch"][:3]
    with gguf_server(gemma_table.attrs["paths"]["GGUF f32"]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none")
        raw = [client.completions.create(model=server.model_name, prompt=p, max_tokens=GEMMA_NEW_TOKENS,
                                         temperature=0, stop=STOPS) for p in prompts[:3]]
        chat = [client.chat.completions.create(model=server.model_name, messages=record_messages(r)[:1],
                                               max_tokens=GEMMA_NEW_TOKENS, temperature=0, stop=STOPS)
                for r in records[:3]]
        print(f"\nGemma f32 server started in {server.startup_seconds:.1f} s")
    n_prompt = [1 + len(tokenizer.encode(p)) for p in prompts[:3]]  # <bos> + the prompt
    assert [r.usage.prompt_tokens for r in raw] == [r.usage.prompt_tokens for r in chat] == n_prompt
    assert [_readable(r.choices[0].text) for r in raw] == [_readable(t) for t in expected]
    assert [_readable(r.choices[0].message.content) for r in chat] == [_readable(t) for t in expected]


def newest_finetuned_gemma() -> Path | None:
    found = sorted(RUNS_DIR.glob("*/finetuned/gemma-3-270m.safetensors"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def test_finetuned_gemma_round_trip(gemma, records, tmp_path):
    weights = newest_finetuned_gemma()
    if weights is None:
        pytest.skip(f"no fine-tuned Gemma saved yet (runs/*/finetuned/gemma-3-270m.safetensors, {RUNS_DIR})")
    from helpers.checkpoints import load_weights

    # helpers.course.load_finetuned = load_model + load_weights; done on a copy of this module's model so
    # that Gemma is loaded once.
    model, tokenizer = copy.deepcopy(gemma[0]), gemma[1]
    load_weights(weights, model)
    model.eval()
    style = json.loads(weights.with_suffix(".json").read_text())["settings"]["style"]
    table = round_trip_table(model, tokenizer, records, tmp_path, style=style, dtypes=("f32",),
                             max_new_tokens=GEMMA_NEW_TOKENS, name="gemma-3-270m-finetuned")
    print(f"\nfine-tuned Gemma ({weights}, style {style}):\n" + table.to_string(index=False))
    assert gguf_metadata(table.attrs["paths"]["GGUF f32"], ["tokenizer.chat_template"]) == {
        "tokenizer.chat_template": chat_template(style)}
    assert _disagreements(table, "GGUF f32") == []


def test_a_phi3_export_loads_and_answers_like_pytorch(tiny, records, tmp_path):
    """llama.cpp takes a template with "<|user|>" and "<|end|>" for Phi-3's and then needs a "<|end|>" token
    the vocabulary lacks; the exported template must load anyway and give the same greedy tokens."""
    model, tokenizer = tiny
    path = export_gguf(model, tokenizer, tmp_path / "phi3.gguf", dtype="f32", style="phi3", verbose=False)
    prompts = [format_prompt(r, "phi3") for r in records[:3]]
    stops = STYLE_STOPS["phi3"]
    _, expected = generate(model, tokenizer, prompts, max_new_tokens=8, stop=stops, return_ids=True)
    _, ids = llama_generate(path, prompts, 8, stops, tokenizer=tokenizer, return_ids=True)
    assert ids == expected
    assert gguf_metadata(path, ["general.course.prompt_style"]) == {"general.course.prompt_style": "phi3"}
    # and a file or model name with "phi3" in it (llama.cpp special-cases such names) still loads
    named = export_gguf(model, tokenizer, tmp_path / "tiny-phi3.gguf", dtype="f32",
                        style="phi3", verbose=False)
    assert llama_generate(named, prompts[:1], 8, stops, tokenizer=tokenizer,
                          return_ids=True)[1] == expected[:1]
