"""Export a course model: a Hugging Face transformers folder and an Ollama Modelfile (notebook 07).

    from helpers.export import export_transformers, chat_template, record_messages, ollama_modelfile
    folder = export_transformers(model, tokenizer, "runs/<run>/export/hf", style="alpaca",
                                 model_name="gemma-3-270m")
    # elsewhere, with transformers installed:
    #   tok = AutoTokenizer.from_pretrained(folder); hf = AutoModelForCausalLM.from_pretrained(folder)
    #   ids = tok.apply_chat_template(record_messages(record), add_generation_prompt=True)["input_ids"]
    modelfile = ollama_modelfile("gemma-3-270m-finetuned.gguf", style="alpaca")   # next to the GGUF file

The transformers folder (float32; ``AutoModelForCausalLM`` / ``AutoTokenizer`` load it, nothing to download):

- ``config.json``: ``GPT2LMHeadModel`` or ``Gemma3ForCausalLM`` (``model_type: gemma3_text``) with every
  hyper-parameter of the course config: for Gemma the two RoPE bases per layer type, the 512-token sliding
  window and the layer pattern, ``query_pre_attn_scalar``, RMS eps, head_dim, key/value heads.
- ``model.safetensors``: the weights under transformers' names. GPT-2's Conv1D layers store (in, out), so
  the course's ``nn.Linear`` weights are transposed back. A tied output head is written once (as the
  embedding) and ``tie_word_embeddings`` tells transformers to tie it again; an untied one (tiny-gpt) is
  written as ``lm_head.weight``.
- ``tokenizer.json``: the course's own tokenizer. Gemma's ``tokenizers.Tokenizer`` is serialized as it is,
  plus a post-processor that puts ``<bos>`` in front (as :func:`helpers.generation.generate` does); GPT-2's
  is rebuilt as a byte-level BPE from the same ``encoder.json`` / ``vocab.bpe`` that tiktoken reads.
- ``tokenizer_config.json``: special tokens and a ``chat_template`` (:func:`chat_template`) that writes the
  course's prompt. ``apply_chat_template`` tokenizes without adding special tokens, so the template itself
  starts with ``bos_token`` when the tokenizer has one (Gemma) and the ids equal the course's.
- ``generation_config.json``: end-of-text, padding and (Gemma) start-of-text ids; greedy by default.
- ``README.md``: the model, its license and source, the prompt style and its stop strings.

Each file is written atomically, ``config.json`` last: a folder with a config is a complete folder.

The Ollama Modelfile points at a GGUF file (:mod:`helpers.export_gguf` writes it), carries the prompt as a
Go template and the style's stop strings. :func:`render_go_template` renders exactly the Go template syntax
used there, so a test can check that Ollama would write the course's prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from helpers.chat import HISTORY_HEADER, PHI3_END
from helpers.checkpoints import atomic_save_tensors, atomic_write_bytes, atomic_write_json
from helpers.data import ALPACA_HEADER, format_prompt, get_style
from helpers.review import STYLE_STOPS

__all__ = [
    "GoTemplateError",
    "chat_template",
    "export_transformers",
    "gemma3_hf_state_dict",
    "gpt2_hub_state_dict",
    "gpt2_tokenizer_json",
    "ollama_modelfile",
    "ollama_prompt",
    "ollama_template",
    "parse_modelfile",
    "record_messages",
    "render_go_template",
    "transformers_config",
]


# ------------------------------------------------------------------------------------------ weights


def _is_tied(model) -> bool:
    """True when the output head and the token embedding are one tensor (GPT-2 hub weights, Gemma 3)."""
    return model.out_head.weight.data_ptr() == model.tok_emb.weight.data_ptr()


def gpt2_hub_state_dict(state: Mapping[str, torch.Tensor], n_layers: int,
                        tied: bool) -> dict[str, torch.Tensor]:
    """:class:`~helpers.models.GPTModel` names -> transformers' ``GPT2LMHeadModel`` names (the inverse of
    :func:`helpers.weights.gpt2_state_dict_from_hub`).

    ``nn.Linear`` weights (out, in) become Conv1D weights (in, out). A tied head is left out (transformers
    ties ``lm_head`` to ``wte`` itself); an untied one is written as ``lm_head.weight``.
    """
    hub = {
        "transformer.wte.weight": state["tok_emb.weight"],
        "transformer.wpe.weight": state["pos_emb.weight"],
        "transformer.ln_f.weight": state["final_norm.weight"],
        "transformer.ln_f.bias": state["final_norm.bias"],
    }
    if not tied:
        hub["lm_head.weight"] = state["out_head.weight"]
    for i in range(n_layers):
        b, h = f"blocks.{i}.", f"transformer.h.{i}."
        for ours, theirs in [("norm1", "ln_1"), ("norm2", "ln_2")]:
            hub[h + theirs + ".weight"] = state[b + ours + ".weight"]
            hub[h + theirs + ".bias"] = state[b + ours + ".bias"]
        linears = [("att.qkv", "attn.c_attn"), ("att.out_proj", "attn.c_proj"), ("ff.fc", "mlp.c_fc"),
                   ("ff.proj", "mlp.c_proj")]
        for ours, theirs in linears:
            weight = state[b + ours + ".weight"]  # (out, in)
            hub[h + theirs + ".weight"] = weight.t().contiguous()  # (in, out)
            bias = state.get(b + ours + ".bias")  # Conv1D always has a bias: qkv_bias=False means zeros
            hub[h + theirs + ".bias"] = bias if bias is not None else weight.new_zeros(weight.shape[0])
    return hub


# course module path inside a Gemma 3 block -> transformers' path inside ``model.layers.{i}``
_GEMMA3_HF_BLOCK_NAMES = {
    "input_norm": "input_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "pre_ff_norm": "pre_feedforward_layernorm",
    "post_ff_norm": "post_feedforward_layernorm",
    "att.q_proj": "self_attn.q_proj",
    "att.k_proj": "self_attn.k_proj",
    "att.v_proj": "self_attn.v_proj",
    "att.o_proj": "self_attn.o_proj",
    "att.q_norm": "self_attn.q_norm",
    "att.k_norm": "self_attn.k_norm",
    "ff.gate_proj": "mlp.gate_proj",
    "ff.up_proj": "mlp.up_proj",
    "ff.down_proj": "mlp.down_proj",
}


def gemma3_hf_state_dict(state: Mapping[str, torch.Tensor], tied: bool) -> dict[str, torch.Tensor]:
    """:class:`~helpers.models.Gemma3Model` names -> transformers' ``Gemma3ForCausalLM`` names.

    Both store RMSNorm weights as offsets from 1 and use the same (out, in) layout, so only names change.
    """
    hf = {}
    for name, tensor in state.items():
        if name == "tok_emb.weight":
            hf["model.embed_tokens.weight"] = tensor
        elif name == "final_norm.weight":
            hf["model.norm.weight"] = tensor
        elif name == "out_head.weight":
            if not tied:
                hf["lm_head.weight"] = tensor
        else:
            parts = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", name)  # "3", "att.q_proj", "weight"
            if parts is None or parts[2] not in _GEMMA3_HF_BLOCK_NAMES:
                raise KeyError(f"No transformers name for the Gemma 3 tensor {name!r}")
            hf[f"model.layers.{parts[1]}.{_GEMMA3_HF_BLOCK_NAMES[parts[2]]}.{parts[3]}"] = tensor
    return hf


def _float32_state(model) -> dict[str, torch.Tensor]:
    return {name: t.detach().to("cpu", torch.float32) for name, t in model.state_dict().items()}


# ------------------------------------------------------------------------------------------- config


def transformers_config(model, tokenizer) -> dict:
    """``config.json`` for ``model``: every hyper-parameter of its course config under transformers' names."""
    cfg, tied = model.cfg, _is_tied(model)
    ids = {"bos_token_id": getattr(tokenizer, "bos_id", None), "eos_token_id": tokenizer.eos_id,
           "pad_token_id": tokenizer.pad_id}
    common = {"vocab_size": cfg["vocab_size"], "tie_word_embeddings": tied, "dtype": "float32",
              "use_cache": True, "initializer_range": 0.02, **ids}
    if model.family == "gpt2":
        return {
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", **common,
            "n_positions": cfg["context_length"], "n_embd": cfg["emb_dim"], "n_layer": cfg["n_layers"],
            "n_head": cfg["n_heads"], "n_inner": 4 * cfg["emb_dim"],
            "activation_function": "gelu_pytorch_tanh",  # F.gelu(approximate="tanh"), as the course computes
            "layer_norm_epsilon": 1e-5, "resid_pdrop": cfg["drop_rate"], "embd_pdrop": cfg["drop_rate"],
            "attn_pdrop": cfg["drop_rate"], "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
        }
    if model.family == "gemma3":
        return {
            "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", **common,
            "hidden_size": cfg["emb_dim"], "intermediate_size": cfg["hidden_dim"],
            "num_hidden_layers": cfg["n_layers"], "num_attention_heads": cfg["n_heads"],
            "num_key_value_heads": cfg["n_kv_heads"], "head_dim": cfg["head_dim"],
            "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": cfg["context_length"],
            "rms_norm_eps": cfg["rms_norm_eps"], "query_pre_attn_scalar": cfg["query_pre_attn_scalar"],
            "sliding_window": cfg["sliding_window"], "layer_types": list(cfg["layer_types"]),
            "rope_parameters": {
                "full_attention": {"rope_type": "default", "rope_theta": cfg["rope_base"]},
                "sliding_attention": {"rope_type": "default", "rope_theta": cfg["rope_local_base"]},
            },
            # the same two bases under the names older readers use (transformers 4.x, llama.cpp's converter)
            "rope_theta": cfg["rope_base"], "rope_local_base_freq": cfg["rope_local_base"],
            "attention_bias": cfg["qkv_bias"], "attention_dropout": cfg["drop_rate"],
            "final_logit_softcapping": None, "attn_logit_softcapping": None,
            "use_bidirectional_attention": False,
        }
    raise ValueError(f"Cannot export a model of family {model.family!r}; the course exports 'gpt2' and "
                     "'gemma3' models (helpers.models)")


# ---------------------------------------------------------------------------------------- tokenizer


def gpt2_tokenizer_json(eos_text: str = "<|endoftext|>") -> str:
    """GPT-2's tokenizer as a ``tokenizers`` byte-level BPE (JSON), built from the files tiktoken reads.

    ``encoder.json`` is the vocabulary (50,257 pieces, bytes written as printable characters), ``vocab.bpe``
    the 50,000 merges in rank order; the byte-level pre-tokenizer splits with GPT-2's original pattern,
    which splits every text as tiktoken's r50k pattern does. ``<|endoftext|>`` is a special token, matched
    whole in the text like :meth:`helpers.tokenizers.TiktokenTokenizer.encode` does.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    from helpers.tokenizers import gpt2_bpe_files

    files = gpt2_bpe_files()
    vocab = json.loads(files["encoder.json"].read_text(encoding="utf-8"))
    lines = files["vocab.bpe"].read_text(encoding="utf-8").split("\n")
    merges = [tuple(line.split(" ")) for line in lines[1:] if line]  # line 0 is "#version: 0.2"
    tokenizer = Tokenizer(BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.add_special_tokens([AddedToken(eos_text, special=True, normalized=False)])
    return tokenizer.to_str()


def _gemma_tokenizer_json(tokenizer) -> str:
    """The course's Gemma ``tokenizers.Tokenizer`` with a post-processor that puts ``<bos>`` in front."""
    from tokenizers import Tokenizer, processors

    hf = Tokenizer.from_str(tokenizer.tokenizer.to_str())  # a copy: the course's own stays as it is
    bos = tokenizer.bos_text
    hf.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1", special_tokens=[(bos, tokenizer.bos_id)]
    )
    return hf.to_str()


def _tokenizer_files(tokenizer, style: str, context_length: int) -> tuple[str, dict]:
    """``tokenizer.json`` text and ``tokenizer_config.json`` for a course tokenizer."""
    bos_id = getattr(tokenizer, "bos_id", None)
    if bos_id is not None:  # Gemma
        text = _gemma_tokenizer_json(tokenizer)
        raw = tokenizer.tokenizer
        special = {"bos_token": tokenizer.bos_text, "eos_token": tokenizer.eos_text,
                   "pad_token": raw.id_to_token(tokenizer.pad_id), "unk_token": "<unk>"}
    else:  # GPT-2 via tiktoken: no start token, padding with end-of-text
        text = gpt2_tokenizer_json(tokenizer.eos_text)
        special = {"bos_token": None, "eos_token": tokenizer.eos_text,
                   "pad_token": tokenizer.decode([tokenizer.pad_id]), "unk_token": None}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast", **special,
        "add_bos_token": bos_id is not None, "add_eos_token": False,
        "clean_up_tokenization_spaces": False,  # decode must give back the course's text exactly
        "model_max_length": context_length, "padding_side": "left",
        "chat_template": chat_template(style),
    }
    return text, config


# ------------------------------------------------------------------------------------ chat template


def _lit(text: str) -> str:
    """A Jinja string literal for ``text`` (JSON escapes are Jinja escapes)."""
    return json.dumps(text, ensure_ascii=False)


# Written readably here; chat_template() joins the lines (every line starts and ends with a tag, and all
# text is inside {{ ... }}), so the environment's whitespace settings change nothing.
_CHAT_CHECKS = r"""
{%- set answered = messages[-1]['role'] == 'assistant' -%}
{%- set turns = messages[:-1] if answered else messages -%}
{%- for m in turns -%}
    {%- if m['role'] != ('user' if loop.index0 % 2 == 0 else 'assistant') -%}
        {{- raise_exception('Messages must alternate user, assistant, user, ... (no system messages).') -}}
    {%- endif -%}
{%- endfor -%}
{%- if turns | length % 2 == 0 -%}
    {{- raise_exception('The conversation has no user message to answer.') -}}
{%- endif -%}
{%- set message = turns[-1] -%}
{%- set history = turns[:-1] -%}
{{- bos_token if bos_token else '' -}}
"""
_CHAT_BODY = {
    # Phi-3: earlier exchanges are turns, "<|user|>\n{user}\n\n<|assistant|>\n{answer}<|end|>\n"
    "phi3": r"""
{%- for m in history -%}
    {%- if m['role'] == 'user' -%}
        {{- '<|user|>\n' + m['content'] + '\n\n<|assistant|>\n' -}}
    {%- else -%}
        {{- m['content'] + @PHI3_END@ + '\n' -}}
    {%- endif -%}
{%- endfor -%}
{{- '<|user|>\n' + message['content'] -}}
{%- if message['input'] -%}
    {{- '\n' + message['input'] -}}
{%- endif -%}
{{- '\n\n' -}}
{%- if add_generation_prompt or answered -%}
    {{- '<|assistant|>\n' -}}
{%- endif -%}
""",
    # Alpaca: earlier exchanges are folded into the input section (helpers.chat.conversation_record)
    "alpaca": r"""
{%- set folded = namespace(text='') -%}
{%- for m in history -%}
    {%- set line = ('User: ' if m['role'] == 'user' else 'Assistant: ') + m['content'] -%}
    {%- set folded.text = (folded.text + '\n' + line) if folded.text else line -%}
{%- endfor -%}
{%- set earlier = (@HISTORY_HEADER@ + '\n' + folded.text) if history else '' -%}
{%- set extra = message['input'] if message['input'] else '' -%}
{%- set input_text = earlier + ('\n\n' if (earlier and extra) else '') + extra -%}
{{- @ALPACA_HEADER@ + '\n\n### Instruction:\n' + message['content'] -}}
{%- if input_text -%}
    {{- '\n\n### Input:\n' + input_text -}}
{%- endif -%}
{%- if add_generation_prompt or answered -%}
    {{- '\n\n### Response:\n' -}}
{%- endif -%}
""",
}
# A conversation that ends with the answer renders the training text: prompt + answer + end-of-text.
_CHAT_ANSWER = r"""
{%- if answered -%}
    {{- messages[-1]['content'] + (eos_token if eos_token else '') -}}
{%- endif -%}
"""
_CHAT_CONSTANTS = {"@ALPACA_HEADER@": ALPACA_HEADER, "@HISTORY_HEADER@": HISTORY_HEADER,
                   "@PHI3_END@": PHI3_END}


def chat_template(style: str = "alpaca", bos: bool = True) -> str:
    """The Jinja chat template (``apply_chat_template``'s) that writes the course's prompt in ``style``.

    Messages are ``[{"role": "user" | "assistant", "content": str}, ...]``, alternating and starting with
    the user; the last user message may carry ``"input"`` (the record's input). With
    ``add_generation_prompt=True`` a conversation that ends with a user message renders to exactly
    ``conversation_prompt(last_user_content, earlier_messages, style, input_text)``; one message renders to
    ``format_prompt(record, style)``. One that ends with the assistant's answer renders the training text,
    ``format_example`` + ``eos_token``. ``bos_token`` (Gemma's ``<bos>``) comes first when the tokenizer has
    one: ``apply_chat_template`` tokenizes without adding special tokens, so the template must write it.
    A system message or turns out of order raise an error. ``bos=False`` leaves the start token out: for a
    GPT-2 GGUF, whose runtime hands the template ``bos_token = "<|endoftext|>"`` although the course's
    GPT-2 prompts start without one.
    """
    checks = _CHAT_CHECKS if bos else _CHAT_CHECKS.replace("{{- bos_token if bos_token else '' -}}", "")
    text = checks + _CHAT_BODY[get_style(style).name] + _CHAT_ANSWER
    for placeholder, value in _CHAT_CONSTANTS.items():
        text = text.replace(placeholder, _lit(value))
    return "".join(line.strip() for line in text.splitlines())


def record_messages(record: Mapping) -> list[dict]:
    """A record as chat messages: the instruction (with ``"input"`` if non-empty), then the output if any."""
    message = {"role": "user", "content": record["instruction"]}
    if record.get("input"):
        message["input"] = record["input"]
    messages = [message]
    if record.get("output"):
        messages.append({"role": "assistant", "content": record["output"]})
    return messages


# ---------------------------------------------------------------------------------------- the folder


def _model_card(model_name: str | None, model, style: str) -> str:
    lines = [f"# {model_name or model.family} (exported from the instruction fine-tuning course)", ""]
    if model_name:
        from helpers.registry import MODELS

        spec = MODELS.get(model_name)
        if spec is not None:
            lines += [f"- License: {spec.license}", f"- Source: {spec.source}"]
    stops = ", ".join(json.dumps(s) for s in STYLE_STOPS.get(style, []))
    lines += [
        f"- Prompt style: {style} (the tokenizer's chat template writes it); stop strings: {stops}",
        ("- float32 weights; load with `AutoModelForCausalLM.from_pretrained(folder)` and "
         "`AutoTokenizer.from_pretrained(folder)`."),
        "",
        "Example prompt:",
        "",
        "```",
        format_prompt({"instruction": "Name three primary colors.", "input": ""}, style) + "…",
        "```",
        "",
    ]
    return "\n".join(lines)


def export_transformers(model, tokenizer, folder, style: str = "alpaca",
                        model_name: str | None = None) -> Path:
    """Write ``model`` and ``tokenizer`` as a Hugging Face transformers folder; returns the folder.

    ``style`` is the prompt style the model was fine-tuned with
    (``model.finetune_info["settings"]["style"]``); the chat template writes it. ``model_name`` (a registry
    name) puts the license and source in README.md.
    See the module docstring for what each file holds.
    """
    style = get_style(style).name
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = transformers_config(model, tokenizer)  # raises on an unknown family before anything is written
    tied, state = _is_tied(model), _float32_state(model)
    if model.family == "gpt2":
        tensors = gpt2_hub_state_dict(state, model.cfg["n_layers"], tied)
    else:
        tensors = gemma3_hf_state_dict(state, tied)
    del state
    atomic_save_tensors(folder / "model.safetensors", tensors, metadata={"format": "pt"})
    del tensors
    tokenizer_json, tokenizer_config = _tokenizer_files(tokenizer, style, model.cfg["context_length"])
    atomic_write_bytes(folder / "tokenizer.json", tokenizer_json.encode("utf-8"))
    atomic_write_json(folder / "tokenizer_config.json", tokenizer_config)
    generation = {key: config[key] for key in ("bos_token_id", "eos_token_id", "pad_token_id")
                  if config[key] is not None}
    atomic_write_json(folder / "generation_config.json", {**generation, "do_sample": False})
    atomic_write_bytes(folder / "README.md", _model_card(model_name, model, style).encode("utf-8"))
    atomic_write_json(folder / "config.json", config)  # last: a folder with a config is complete
    return folder


# ------------------------------------------------------------------------------------------- Ollama

# Go templates for Ollama. .System / .Prompt / .Response are what Ollama passes; when it generates, it
# renders up to {{ .Response }} and drops what follows. For a chat, Ollama renders the template once per
# earlier exchange (with its .Response) and concatenates: for Phi-3 that is exactly the course's
# multi-turn prompt; for Alpaca it is a transcript (the course's folding of earlier turns into the input
# needs more of Go's template language). One turn is exactly format_prompt in both styles.
_OLLAMA_TEMPLATES = {
    "alpaca": "{{ if .System }}{{ .System }}\n\n{{ end }}### Instruction:\n{{ .Prompt }}\n\n### Response:\n"
              "{{ .Response }}{{ if .Response }}\n\n{{ end }}",
    "phi3": "<|user|>\n{{ .Prompt }}\n\n<|assistant|>\n{{ .Response }}"
            "{{ if .Response }}" + PHI3_END + "\n{{ end }}",
}
# The Alpaca header is the system message: Ollama passes the Modelfile's SYSTEM unless the caller sends one.
_OLLAMA_SYSTEM = {"alpaca": ALPACA_HEADER, "phi3": ""}


def ollama_template(style: str = "alpaca") -> str:
    """The Go template of the Modelfile for ``style`` (see :data:`_OLLAMA_TEMPLATES`)."""
    return _OLLAMA_TEMPLATES[get_style(style).name]


def ollama_prompt(record: Mapping, style: str = "alpaca") -> str:
    """What to send Ollama as the prompt (the user message) for ``record``: the instruction, and its input
    written the way the style writes it, so that Ollama's prompt is ``format_prompt(record, style)``."""
    style = get_style(style).name
    text = record["instruction"]
    if record.get("input"):
        text += ("\n\n### Input:\n" if style == "alpaca" else "\n") + record["input"]
    return text


def _modelfile_quote(value: str) -> str:
    """Ollama's Modelfile quoting: the text between the quotes is taken as it is (no escapes)."""
    if '"""' in value:
        raise ValueError(f"A Modelfile value cannot contain three double quotes: {value!r}")
    return f'"""{value}"""' if '"' in value else f'"{value}"'


def ollama_modelfile(gguf_name: str, style: str = "alpaca") -> str:
    """An Ollama Modelfile for the GGUF file ``gguf_name`` (in the same folder) fine-tuned in ``style``.

    ``ollama create <name> -f Modelfile`` in that folder, then ``ollama run <name>``. Greedy decoding
    (temperature 0) and one ``PARAMETER stop`` per stop string of the style, as the course generates.
    """
    style = get_style(style).name
    source = gguf_name if gguf_name.startswith(("/", "./", "../")) else f"./{gguf_name}"
    lines = [f"FROM {source}", f'TEMPLATE """{ollama_template(style)}"""']
    if _OLLAMA_SYSTEM[style]:
        lines.append(f'SYSTEM """{_OLLAMA_SYSTEM[style]}"""')
    lines += [f"PARAMETER stop {_modelfile_quote(stop)}" for stop in STYLE_STOPS[style]]
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """``[(name, value), ...]`` of a Modelfile, read with Ollama's rules (to check what we wrote).

    Names as Ollama's parser gives them: ``"model"`` for FROM, the lower-cased command (``"template"``,
    ``"system"`` ...), the parameter's own name for ``PARAMETER name value`` (``"stop"``). A value runs to
    the end of the line (stripped), or is a ``"..."`` / ``\"\"\"...\"\"\"`` string that may span lines and is
    taken as it is: Ollama knows no escapes. A line starting with ``#`` is a comment.
    """
    head = re.compile(r"[ \t\r\n]*(?:#[^\n]*|([A-Za-z]+)[ \t]+)")
    parameter = re.compile(r"(\w+)[ \t]+")
    value = re.compile(r'"""(.*?)"""|"([^"]*)"|([^\n]*)', re.DOTALL)
    entries, pos = [], 0
    while text[pos:].strip():
        match = head.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"Cannot read the Modelfile at {text[pos:pos + 40]!r}")
        pos = match.end()
        if match[1] is None:
            continue  # a comment line
        name = match[1].lower()
        if name == "parameter":
            match = parameter.match(text, pos)
            if match is None:
                raise ValueError(f"PARAMETER without a name at {text[pos:pos + 40]!r}")
            name, pos = match[1], match.end()
        match = value.match(text, pos)
        pos = match.end()
        triple, quoted, bare = match.groups()
        entries.append(("model" if name == "from" else name,
                        triple if triple is not None else quoted if quoted is not None else bare.strip()))
    return entries


class GoTemplateError(ValueError):
    """A Go template uses syntax that :func:`render_go_template` does not handle, or is malformed."""


_ACTION = re.compile(r"\{\{(-[ \t\r\n])?(.*?)([ \t\r\n]-)?\}\}", re.DOTALL)
_FIELD = r"\.([A-Za-z_][A-Za-z0-9_]*)"
_GO_SPACE = " \t\r\n"


def _go_parse(template: str) -> list:
    """Text and actions -> a tree: ``str`` pieces, ``("field", name)``, ``("if", name, then, otherwise)``."""
    root: list = []
    stack: list[tuple[str, list, list | None, list]] = []  # (field, then, otherwise or None, parent)
    current, pos, trim_next = root, 0, False
    for match in _ACTION.finditer(template):
        text = template[pos : match.start()]
        if trim_next:
            text = text.lstrip(_GO_SPACE)
        if match.group(1):
            text = text.rstrip(_GO_SPACE)
        if text:
            current.append(text)
        pos, trim_next = match.end(), bool(match.group(3))
        action = match.group(2).strip(_GO_SPACE)
        if field := re.fullmatch(_FIELD, action):
            current.append(("field", field.group(1)))
        elif condition := re.fullmatch(r"if[ \t]+" + _FIELD, action):
            then: list = []
            stack.append((condition.group(1), then, None, current))
            current = then
        elif action == "else":
            if not stack or stack[-1][2] is not None:
                raise GoTemplateError("{{ else }} without an open {{ if }}")
            name, then, _, parent = stack.pop()
            otherwise: list = []
            stack.append((name, then, otherwise, parent))
            current = otherwise
        elif action == "end":
            if not stack:
                raise GoTemplateError("{{ end }} without an open {{ if }}")
            name, then, otherwise, parent = stack.pop()
            parent.append(("if", name, then, otherwise or []))
            current = parent
        else:
            raise GoTemplateError(
                f"Unsupported Go template action {match.group(0)!r}: only {{{{ .Field }}}}, "
                "{{ if .Field }}, {{ else }}, {{ end }} and the trim markers {{- -}} are handled"
            )
    if stack:
        raise GoTemplateError(f"{{{{ if .{stack[-1][0]} }}}} has no {{{{ end }}}}")
    text = template[pos:]
    if trim_next:
        text = text.lstrip(_GO_SPACE)
    if "{{" in text:
        raise GoTemplateError(f"Unclosed action in {text[:40]!r}")
    if text:
        current.append(text)
    return root


def render_go_template(template: str, **values: str) -> str:
    """Render the subset of Go's text/template that the Ollama templates here use.

    ``{{ .Field }}`` writes ``values["Field"]`` (a string); ``{{ if .Field }} … {{ else }} … {{ end }}``
    tests it as Go does (an empty string is false); ``{{-`` / ``-}}`` trim the white space before / after.
    Anything else (pipelines, functions, ``range``, ``else if``, comments) raises :class:`GoTemplateError`;
    a field not in ``values`` raises ``KeyError``.
    """
    def value(name: str):
        if name not in values:
            raise KeyError(f"The template uses .{name}, which was not given (given: {sorted(values)})")
        return values[name]

    def render(nodes: list) -> str:
        out = []
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif node[0] == "field":
                text = value(node[1])
                if not isinstance(text, str):
                    raise TypeError(f".{node[1]} must be a string, got {type(text).__name__}")
                out.append(text)
            else:
                _, name, then, otherwise = node
                out.append(render(then if value(name) else otherwise))
        return "".join(out)

    return render(_go_parse(template))


# -------------------------------------------------------------------------- python -m helpers export

EXPORT_FORMATS = ("transformers", "gguf-f32", "gguf-f16", "gguf-q8_0")


class NothingToExport(FileNotFoundError):
    """No fine-tuned model where the export looked; the message says how to make one."""


def export_finetuned(model_name: str, finetuned_dir, out_dir, formats=EXPORT_FORMATS, check: int = 0) -> dict:
    """Export the fine-tuned ``model_name`` saved in ``finetuned_dir`` to ``out_dir``; returns {format: path}.

    Writes each of ``formats`` (:data:`EXPORT_FORMATS`) and, with a GGUF, an Ollama ``Modelfile`` beside the
    smallest one. ``check`` > 0 answers that many test records greedily with PyTorch and every GGUF and
    prints how many give the same tokens (``round_trip_table``). The command ``python -m helpers export``.
    """
    from helpers.course import load_finetuned
    from helpers.export_gguf import export_gguf, round_trip_table

    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown:
        raise ValueError(f"Unknown export formats {unknown}; choose from {list(EXPORT_FORMATS)}")
    model = load_finetuned(model_name, folder=finetuned_dir)
    if model is None:
        raise NothingToExport(f"No fine-tuned {model_name} in {finetuned_dir} ({model_name}.safetensors and "
                              f"{model_name}.json): run notebook 04 or `python -m helpers finetune --model "
                              f"{model_name} --out {finetuned_dir}` first, or pass --finetuned FOLDER.")
    tokenizer, style = model.tokenizer, model.finetune_info["settings"]["style"]
    out_dir = Path(out_dir)
    written = {}
    for fmt in formats:
        if fmt == "transformers":
            written[fmt] = export_transformers(model, tokenizer, out_dir / "transformers", style=style,
                                               model_name=model_name)
        else:
            dtype = fmt.removeprefix("gguf-")
            written[fmt] = export_gguf(model, tokenizer, out_dir / f"{model_name}.{dtype}.gguf", dtype=dtype,
                                       style=style)
    ggufs = [p for f, p in written.items() if f.startswith("gguf")]
    if ggufs:
        smallest = min(ggufs, key=lambda p: p.stat().st_size)
        atomic_write_bytes(out_dir / "Modelfile", ollama_modelfile(smallest.name, style).encode("utf-8"))
        written["ollama"] = out_dir / "Modelfile"
    for fmt, path in written.items():
        size = sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size
        print(f"{fmt:>13}: {path} ({size / 1e6:,.1f} MB)")
    if check and ggufs:
        from helpers.data import load_course_data, split_records

        records = split_records(load_course_data(), verbose=False).test[:check]
        dtypes = [f.removeprefix("gguf-") for f in formats if f.startswith("gguf")]
        table = round_trip_table(model, tokenizer, records, out_dir, style=style, dtypes=dtypes,
                                 name=model_name)
        print(table.to_string(index=False))
    return written
