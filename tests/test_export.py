"""An exported transformers folder answers as the course's model does; the Ollama Modelfile writes its prompt.

For tiny-gpt and the real Gemma 3 270M (base): export once, load the folder with transformers'
``AutoModelForCausalLM`` (eager attention, float32) and ``AutoTokenizer``, then compare with the course's
model on the same token ids: logits on five prompts (one beyond Gemma's 512-token sliding window), greedy
answers to the first ten test records, tokenization, the chat template and the generation config. A
fine-tuned Gemma, when a run has saved one, gets the same round trip in its own prompt style.
Numbers worth reporting are printed (run with ``-s``): export seconds, folder sizes, logit differences.
"""

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from helpers.chat import conversation_prompt
from helpers.config import RUNS_DIR
from helpers.data import format_example, format_prompt, load_course_data, split_records
from helpers.export import (
    GoTemplateError,
    chat_template,
    export_transformers,
    gpt2_hub_state_dict,
    ollama_modelfile,
    ollama_prompt,
    ollama_template,
    parse_modelfile,
    record_messages,
    render_go_template,
)
from helpers.generation import generate
from helpers.registry import load_model
from helpers.review import STYLE_STOPS
from helpers.weights import gpt2_state_dict_from_hub

transformers = pytest.importorskip(
    "transformers", reason="export tests need the reference extra: pip install -e '.[reference]'"
)

MAX_LOGIT_DIFFERENCE = 1e-4  # max |course - transformers| over every logit compared
NEW_TOKENS = 24
N_RECORDS = 10
STYLES = ["alpaca", "phi3"]
# 583 Gemma tokens: beyond the 512-token sliding window, so local and global layers see different keys
LONG_TEXT = " ".join(
    f"Paragraph {i}: the river {['rose', 'fell', 'froze', 'wandered'][i % 4]} past village number"
    f" {i * 7 % 23}, where {['bakers', 'miners', 'poets'][i % 3]} counted {i * i} stones"
    " before the evening bell."
    for i in range(22)
)
# Texts where a byte-level BPE could split differently from tiktoken: runs of spaces and newlines, trailing
# white space, contractions, digits, accents, emoji, CJK, and the end-of-text marker written in the text.
TRICKY_TEXTS = [
    "Hello  world   \n\n\n  indented\tTab\r\nCRLF   ",
    "I'm sure they'll say we've done it, didn't we? 'S'",
    "Prices: 1234567 and 3.14159, 2024-12-01",
    "naïve café, Zürich — “quotes” …emoji 🙂🚀 and 日本語のテキスト",
    "The end.<|endoftext|>Next text",
    "    def f(x):\n        return x  # two spaces\n",
]


@dataclass
class Exported:
    name: str
    model: torch.nn.Module  # the course's model
    tokenizer: object  # the course's tokenizer
    folder: Path
    hf: torch.nn.Module  # transformers' model loaded from the folder
    hf_tokenizer: object
    loading_info: dict
    style: str
    export_seconds: float

    def course_ids(self, text: str) -> list[int]:
        """What the course's generation feeds the model: Gemma gets <bos> in front."""
        bos = getattr(self.tokenizer, "bos_id", None)
        return ([bos] if bos is not None else []) + self.tokenizer.encode(text)


def export_and_load(name: str, model, tokenizer, folder: Path, style: str) -> Exported:
    start = time.perf_counter()
    export_transformers(model, tokenizer, folder, style=style, model_name=name)
    seconds = time.perf_counter() - start
    sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
    print(f"\n{name}: exported in {seconds:.1f} s; files (bytes): {sizes}")
    hf, info = transformers.AutoModelForCausalLM.from_pretrained(
        folder, attn_implementation="eager", dtype=torch.float32, output_loading_info=True
    )
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    return Exported(name, model, tokenizer, folder, hf.eval(), hf_tokenizer, info, style, seconds)


@pytest.fixture(scope="module")
def gemma_course():
    """The course's Gemma 3 270M, loaded once for the whole module."""
    return load_model("gemma-3-270m", device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model, tokenizer = load_model("tiny-gpt", device="cpu")
    return export_and_load("tiny-gpt", model, tokenizer, tmp_path_factory.mktemp("tiny-gpt-hf"), "alpaca")


@pytest.fixture(scope="module")
def gemma(gemma_course, tmp_path_factory):
    model, tokenizer = gemma_course
    return export_and_load("gemma-3-270m", model, tokenizer, tmp_path_factory.mktemp("gemma-hf"), "alpaca")


@pytest.fixture(params=["tiny", "gemma"])
def exported(request) -> Exported:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def records():
    return split_records(load_course_data(), verbose=False).test[:N_RECORDS]


@pytest.fixture(scope="module")
def with_and_without_input():
    data = load_course_data()
    return [next(r for r in data if r["input"]), next(r for r in data if not r["input"])]


@pytest.fixture(scope="module")
def prompts(records, with_and_without_input):
    return [
        format_prompt(records[0], "alpaca"),
        format_prompt(with_and_without_input[0], "phi3"),
        "Le renard brun saute par-dessus le chien paresseux. 日本の首都は",
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
        LONG_TEXT,
    ]


# ------------------------------------------------------------------------------- the folder and config


def test_folder_loads_without_missing_or_unexpected_weights(exported):
    info = exported.loading_info
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    expected = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "generation_config.json", "README.md"}
    assert {p.name for p in exported.folder.iterdir()} == expected
    assert not [p for p in exported.folder.iterdir() if ".tmp" in p.name]  # atomic writes left nothing behind


def test_config_matches_the_course_config(exported):
    cfg, c = exported.model.cfg, exported.hf.config
    assert c.vocab_size == cfg["vocab_size"] and c.dtype == torch.float32
    if exported.model.family == "gemma3":
        assert type(exported.hf).__name__ == "Gemma3ForCausalLM" and c.model_type == "gemma3_text"
        assert (c.hidden_size, c.intermediate_size) == (cfg["emb_dim"], cfg["hidden_dim"])
        assert (c.num_hidden_layers, c.num_attention_heads) == (cfg["n_layers"], cfg["n_heads"])
        assert (c.num_key_value_heads, c.head_dim) == (cfg["n_kv_heads"], cfg["head_dim"])
        assert c.max_position_embeddings == cfg["context_length"]
        assert c.sliding_window == cfg["sliding_window"] == 512
        assert list(c.layer_types) == cfg["layer_types"] and c.layer_types.count("full_attention") == 3
        assert c.rope_parameters["full_attention"]["rope_theta"] == cfg["rope_base"] == 1e6
        assert c.rope_parameters["sliding_attention"]["rope_theta"] == cfg["rope_local_base"] == 1e4
        assert c.query_pre_attn_scalar == cfg["query_pre_attn_scalar"]
        assert c.rms_norm_eps == cfg["rms_norm_eps"]
        assert c.hidden_activation == "gelu_pytorch_tanh" and c.attention_bias == cfg["qkv_bias"]
        assert c.final_logit_softcapping is None and c.attn_logit_softcapping is None
        assert c.tie_word_embeddings
        hf = exported.hf
        assert hf.lm_head.weight.data_ptr() == hf.model.embed_tokens.weight.data_ptr()  # tied again on load
    else:
        assert type(exported.hf).__name__ == "GPT2LMHeadModel" and c.model_type == "gpt2"
        assert (c.n_embd, c.n_layer, c.n_head) == (cfg["emb_dim"], cfg["n_layers"], cfg["n_heads"])
        assert c.n_positions == cfg["context_length"] and c.activation_function == "gelu_pytorch_tanh"
        assert c.tie_word_embeddings is False  # tiny-gpt's head is its own matrix
        torch.testing.assert_close(exported.hf.lm_head.weight, exported.model.out_head.weight, rtol=0, atol=0)


def test_gpt2_names_round_trip_through_the_hub_mapping(tiny):
    state = tiny.model.state_dict()
    n_layers = tiny.model.cfg["n_layers"]
    hub = gpt2_hub_state_dict(state, n_layers, tied=False)
    back = gpt2_state_dict_from_hub(hub, n_layers)  # the course's loader of hub files
    assert set(back) == set(state)
    for name, tensor in state.items():
        # the hub loader ties the head to the embedding; tiny-gpt's own head went to lm_head.weight
        expected = hub["lm_head.weight"] if name == "out_head.weight" else back[name]
        assert torch.equal(tensor, expected), name
    assert "lm_head.weight" not in gpt2_hub_state_dict(state, n_layers, tied=True)


def test_generation_config_and_special_token_ids(exported):
    tok, hf_tok = exported.tokenizer, exported.hf_tokenizer
    saved = json.loads((exported.folder / "generation_config.json").read_text())
    generation = exported.hf.generation_config
    assert saved["eos_token_id"] == generation.eos_token_id == hf_tok.eos_token_id == tok.eos_id
    assert saved["pad_token_id"] == generation.pad_token_id == hf_tok.pad_token_id == tok.pad_id
    bos = getattr(tok, "bos_id", None)
    if bos is None:  # GPT-2: the course starts no sequence with a special token
        assert "bos_token_id" not in saved and hf_tok.bos_token is None
    else:
        assert saved["bos_token_id"] == generation.bos_token_id == hf_tok.bos_token_id == bos == 2
        assert (tok.eos_id, tok.pad_id) == (1, 0)


# ------------------------------------------------------------------------------- numbers and answers


def positions_to_compare(length: int) -> list[int]:
    """Every position of a short prompt; for a long one the ends and around the sliding window's edge."""
    if length <= 128:
        return list(range(length))
    window_edge = set(range(min(505, length - 8), min(520, length)))
    return sorted(set(range(4)) | window_edge | set(range(length - 4, length)))


def test_logits_equal_the_course_model(exported, prompts):
    context = exported.model.cfg["context_length"]
    worst = 0.0
    for text in prompts:
        ids = exported.course_ids(text)[:context]  # tiny-gpt's context is 256 tokens
        idx = torch.tensor([ids])  # (1, T)
        keep = torch.tensor(positions_to_compare(len(ids)))
        with torch.no_grad():
            ours = exported.model.head(exported.model.body(idx)[:, keep])  # (1, K, V)
            theirs = exported.hf(idx, logits_to_keep=keep).logits  # (1, K, V)
        assert ours.shape == theirs.shape
        worst = max(worst, (ours - theirs).abs().max().item())
    if exported.name == "gemma-3-270m":
        assert len(exported.course_ids(LONG_TEXT)) > 512
    print(f"\n{exported.name}: max |logit difference| over {len(prompts)} prompts: {worst:.2e}")
    assert worst < MAX_LOGIT_DIFFERENCE


def greedy_both(exp: Exported, records, style: str):
    """Greedy answers of the course's generate and of transformers' generate, from the same ids."""
    stops = STYLE_STOPS[style]
    prompts = [format_prompt(r, style) for r in records]
    texts, ids = generate(exp.model, exp.tokenizer, prompts, max_new_tokens=NEW_TOKENS, stop=stops,
                          return_ids=True)
    hf_texts, hf_ids = [], []
    for record in records:
        prompt_ids = exp.hf_tokenizer.apply_chat_template(record_messages({**record, "output": ""}),
                                                          add_generation_prompt=True)["input_ids"]
        idx = torch.tensor([prompt_ids])  # (1, T)
        with torch.no_grad():
            out = exp.hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=NEW_TOKENS,
                                  do_sample=False, stop_strings=stops, tokenizer=exp.hf_tokenizer)
        new = out[0, idx.shape[1]:].tolist()
        if exp.tokenizer.eos_id in new:
            new = new[: new.index(exp.tokenizer.eos_id)]  # the course leaves the end-of-text token out
        text = exp.hf_tokenizer.decode(new, skip_special_tokens=False)
        cuts = [text.find(s) for s in stops if s in text]
        hf_texts.append(text[: min(cuts)] if cuts else text)
        hf_ids.append(new)
    return texts, ids, hf_texts, hf_ids


def test_greedy_answers_equal_the_course_model(exported, records):
    # tiny-gpt: all ten records. Base Gemma: three here (CI's 2-core budget); the fine-tuned Gemma test below
    # and notebook 07's full run check all ten.
    records = records if exported.name == "tiny-gpt" else records[:3]
    texts, ids, hf_texts, hf_ids = greedy_both(exported, records, exported.style)
    assert hf_ids == ids
    assert hf_texts == texts
    assert any(t.strip() for t in texts)


# ------------------------------------------------------------------------------------------ tokenizer


def test_tokenizer_encodes_and_decodes_like_the_course(exported, prompts, records):
    texts = prompts + [format_prompt(r, s) for r in records for s in STYLES] + TRICKY_TEXTS
    for text in texts:
        ids = exported.hf_tokenizer(text)["input_ids"]
        assert ids == exported.course_ids(text), text[:60]
        assert exported.hf_tokenizer.decode(ids, skip_special_tokens=False) == exported.tokenizer.decode(ids)


@pytest.mark.parametrize("style", STYLES)
def test_chat_template_writes_format_prompt(exported, with_and_without_input, style):
    bos_text = exported.hf_tokenizer.bos_token or ""
    for record in with_and_without_input:
        messages = record_messages({**record, "output": ""})
        text = exported.hf_tokenizer.apply_chat_template(messages, chat_template=chat_template(style),
                                                         tokenize=False, add_generation_prompt=True)
        assert text == bos_text + format_prompt(record, style)
        ids = exported.hf_tokenizer.apply_chat_template(messages, chat_template=chat_template(style),
                                                        add_generation_prompt=True)["input_ids"]
        assert ids == exported.course_ids(format_prompt(record, style))


def test_the_saved_template_is_the_style_it_was_exported_with(exported):
    assert exported.hf_tokenizer.chat_template == chat_template(exported.style)


@pytest.mark.parametrize("style", STYLES)
def test_chat_template_writes_a_three_turn_conversation(tiny, style):
    history = [
        {"role": "user", "content": "Name a primary color."}, {"role": "assistant", "content": "Red."},
        {"role": "user", "content": "And another one?"}, {"role": "assistant", "content": "Blue."},
    ]
    question = "Mix them: what do you get?"
    for input_text in ["Paint, not light.", ""]:
        last = {"role": "user", "content": question, **({"input": input_text} if input_text else {})}
        text = tiny.hf_tokenizer.apply_chat_template(history + [last], chat_template=chat_template(style),
                                                     tokenize=False, add_generation_prompt=True)
        assert text == conversation_prompt(question, history, style, input_text)


@pytest.mark.parametrize("style", STYLES)
def test_chat_template_training_text_and_errors(tiny, with_and_without_input, style):
    from jinja2.exceptions import TemplateError

    apply = tiny.hf_tokenizer.apply_chat_template
    record = with_and_without_input[0]
    text = apply(record_messages(record), chat_template=chat_template(style), tokenize=False)
    assert text == format_example(record, style) + "<|endoftext|>"  # what collate trains on
    user = {"role": "user", "content": "Hi"}
    for bad in ([{"role": "system", "content": "Be brief."}, user], [user, user],
                [{"role": "assistant", "content": "Hello"}]):
        with pytest.raises(TemplateError, match="conversation|alternate"):
            apply(bad, chat_template=chat_template(style), tokenize=False, add_generation_prompt=True)


# ------------------------------------------------------------------------------------ a fine-tuned run


def newest_finetuned_gemma() -> Path | None:
    found = sorted(RUNS_DIR.glob("*/finetuned/gemma-3-270m.safetensors"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def test_finetuned_gemma_round_trip(gemma_course, records, prompts, tmp_path):
    weights = newest_finetuned_gemma()
    if weights is None:
        pytest.skip(f"no fine-tuned Gemma saved yet: no {RUNS_DIR}/*/finetuned/gemma-3-270m.safetensors")
    from helpers.checkpoints import load_weights

    # load_finetuned would load the base model a second time; the same copy-over on a copy of the one
    # loaded for this module (helpers.course.load_finetuned does exactly this after load_model).
    model, tokenizer = copy.deepcopy(gemma_course[0]), gemma_course[1]
    load_weights(weights, model)
    model.eval()
    info = json.loads(weights.with_suffix(".json").read_text())
    style = info["settings"]["style"]
    exp = export_and_load("gemma-3-270m", model, tokenizer, tmp_path / "finetuned-hf", style)
    assert exp.hf_tokenizer.chat_template == chat_template(style)
    worst = 0.0
    for text in prompts[:4] + [format_prompt(r, style) for r in records[:3]]:
        idx = torch.tensor([exp.course_ids(text)])
        with torch.no_grad():
            worst = max(worst, (model(idx) - exp.hf(idx).logits).abs().max().item())
    print(f"\nfine-tuned Gemma ({weights}): max |logit difference| {worst:.2e}")
    assert worst < MAX_LOGIT_DIFFERENCE
    texts, ids, hf_texts, hf_ids = greedy_both(exp, records[:5], style)  # five: the base model did ten
    assert hf_ids == ids and hf_texts == texts


# -------------------------------------------------------------------------------------------- Ollama


@pytest.mark.parametrize("style", STYLES)
def test_modelfile_template_renders_format_prompt(style, with_and_without_input):
    entries = parse_modelfile(ollama_modelfile("gemma-3-270m-finetuned.gguf", style))
    values = dict(entries)
    assert values["model"] == "./gemma-3-270m-finetuned.gguf" and values["template"] == ollama_template(style)
    for record in with_and_without_input:
        # Ollama passes the Modelfile's SYSTEM as .System and the user's message as .Prompt
        rendered = render_go_template(values["template"], System=values.get("system", ""),
                                      Prompt=ollama_prompt(record, style), Response="")
        assert rendered == format_prompt(record, style)
    assert [v for k, v in entries if k == "stop"] == STYLE_STOPS[style]
    assert values["temperature"] == "0"


def test_modelfile_phi3_conversation_is_the_course_prompt():
    """Ollama renders a template without .Messages once per exchange (System only the first time), joined."""
    template = ollama_template("phi3")
    history = [{"role": "user", "content": "Name a primary color."}, {"role": "assistant", "content": "Red."}]
    rendered = render_go_template(template, Prompt="Name a primary color.", Response="Red.")
    rendered += render_go_template(template, Prompt="And another one?", Response="")
    assert rendered == conversation_prompt("And another one?", history, "phi3")


def test_go_renderer_follows_go_semantics():
    template = "A {{ if .X }}x={{ .X }}{{ else }}no{{ end }} |  {{- .Y -}}  \n| {{ if .Z }}z{{ end -}}\n end"
    # Go: "{{- " eats the white space before it, " -}}" the white space after it, newlines included
    assert render_go_template(template, X="1", Y="y", Z="") == "A x=1 |y| end"
    assert render_go_template(template, X="", Y="", Z="z") == "A no || zend"
    with pytest.raises(KeyError, match="Y"):
        render_go_template(template, X="1", Z="")


@pytest.mark.parametrize("bad", [
    "{{ range .Messages }}{{ .Content }}{{ end }}",  # range
    "{{ .Prompt | trim }}",  # pipeline
    "{{ if eq .Role \"user\" }}u{{ end }}",  # function call
    "{{ if .A }}a{{ else if .B }}b{{ end }}",  # else if
    "{{/* a comment */}}",
    "{{ $x := .Prompt }}",  # variables
    "{{-3}}",  # a number, not a trim marker
    "{{ if .A }}no end",
    "{{ end }}",
    "{{ .A }} {{ .B",  # an unclosed action
])
def test_go_renderer_raises_on_unsupported_syntax(bad):
    with pytest.raises(GoTemplateError):
        render_go_template(bad, A="a", B="b", Prompt="p")


# ------------------------------------------------------------------------------- python -m helpers export


def test_export_command_writes_every_format_and_the_modelfile(tmp_path, capsys):
    """The command exports a saved fine-tuned model (here tiny-gpt with perturbed weights, phi3 style)."""
    from helpers.__main__ import main
    from helpers.checkpoints import save_weights

    model, _ = load_model("tiny-gpt")
    with torch.no_grad():
        model.final_norm.weight.add_(0.25)  # not the registry's random weights: the export must carry these
    finetuned = tmp_path / "finetuned"
    save_weights(finetuned / "tiny-gpt.safetensors", model, {"model": "tiny-gpt"})
    (finetuned / "tiny-gpt.json").write_text(json.dumps({"model": "tiny-gpt", "settings": {"style": "phi3"}}))
    out = tmp_path / "export"
    assert main(["export", "--model", "tiny-gpt", "--finetuned", str(finetuned), "--out", str(out),
                 "--format", "transformers", "--format", "gguf-q8_0", "--check", "2"]) == 0
    printed = capsys.readouterr().out
    assert "GGUF q8_0" in printed and "PyTorch" in printed  # the round-trip table
    hf = transformers.AutoModelForCausalLM.from_pretrained(out / "transformers", dtype=torch.float32)
    assert torch.equal(hf.transformer.ln_f.weight, model.final_norm.weight)
    assert json.loads((out / "transformers" / "tokenizer_config.json").read_text())["chat_template"] == \
        chat_template("phi3")
    modelfile = dict(parse_modelfile((out / "Modelfile").read_text()))
    assert modelfile["model"] == "./tiny-gpt.q8_0.gguf" and (out / "tiny-gpt.q8_0.gguf").exists()
    assert not (out / "tiny-gpt.f32.gguf").exists()  # only the formats asked for


def test_export_command_without_a_model_says_what_to_do(tmp_path, capsys):
    from helpers.__main__ import main

    assert main(["export", "--model", "tiny-gpt", "--finetuned", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "No fine-tuned tiny-gpt" in err and "helpers finetune" in err
