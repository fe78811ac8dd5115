"""Export a course model to GGUF, run it with llama.cpp and serve it on 127.0.0.1 (notebook 07).

    from helpers.export_gguf import export_gguf, load_gguf, llama_generate, gguf_server, round_trip_table
    path = export_gguf(model, tokenizer, "runs/x/export/gemma-3-270m.f16.gguf", dtype="f16", style="alpaca")
    llm = load_gguf(path)                                        # a llama_cpp.Llama
    texts, ids = llama_generate(llm, prompts, 24, stop, tokenizer=tokenizer, return_ids=True)   # greedy
    with gguf_server(path) as server:                            # OpenAI-compatible, 127.0.0.1, free port
        client = openai.OpenAI(base_url=server.base_url, api_key="none")
        client.completions.create(model=server.model_name, prompt=format_prompt(record), temperature=0)
    round_trip_table(model, tokenizer, records, folder)         # PyTorch vs GGUF f32 / f16 / q8_0

What a GGUF holds, and where each part comes from:

- **Metadata** (key/value pairs): the architecture and its hyper-parameters, the tokenizer (every token,
  its type, merges or scores, the special ids) and a chat template. Gemma 3 copies all of it from the GGUF
  the course loaded its weights from (``helpers.weights.gemma3_gguf_path``), so llama.cpp tokenizes exactly
  as the original file says. GPT-2 and ``tiny-gpt`` write it here: tokenizer model ``gpt2`` with the 50,257
  tokens of ``encoder.json`` and the 50,000 merges of ``vocab.bpe`` (``helpers.tokenizers.gpt2_bpe_files``),
  ``<|endoftext|>`` (50256) as end-of-text, start and padding token, no start token added.
- **Tensors**, in llama.cpp's names and conventions. GGUF lists shapes fastest axis first, so a PyTorch
  ``(out, in)`` weight is written as it is. Gemma's RMSNorm weights are stored as ``1 + w`` (the course
  keeps ``w``, :func:`helpers.weights.gemma3_state_dict_from_gguf` subtracts the 1); Gemma's Q/K rows are
  not permuted (only LLaMA-style RoPE is). GPT-2's fused ``qkv`` is llama.cpp's ``attn_qkv`` as is. A tied
  output head (Gemma, pretrained GPT-2) is not written: llama.cpp reuses ``token_embd``; ``tiny-gpt``'s
  untied head becomes ``output.weight``.
- **dtype**: ``f32`` (exact), ``f16`` (every matrix rounded to half precision) or ``q8_0`` (blocks of 32
  values as int8 with one f16 scale, about 8.5 bits a value; ``gguf.quants`` quantizes it). Norms, biases
  and other 1-D tensors stay float32 in every case, as in llama.cpp's own converter; a matrix whose rows
  are not a multiple of 32 long falls back to f16 in ``q8_0``.

The file is written tensor by tensor (one converted tensor in memory at a time) to a temporary name beside
the target and renamed at the end, so a crash never leaves a half-written ``.gguf``.

Running it: :func:`llama_generate` decodes greedily (temperature 0, top-k 1) one prompt at a time, stops
like :func:`helpers.generation.generate` (end-of-text id, stop strings, ``max_new_tokens``) and can return
token ids, so agreement with PyTorch is checked token by token. Prompts are tokenized by the course
tokenizer when one is given (Gemma: ``<bos>`` + ids, as the course does), else by llama.cpp (which adds
``<bos>`` itself where the GGUF says ``add_bos_token``); a doubled start token is never sent.

Serving reuses the judge's server (:class:`helpers.judge_server.EmbeddedJudgeServer`): the same child
process on 127.0.0.1 that answers ``/v1/chat/completions`` (the GGUF's chat template) and
``/v1/completions`` (a raw prompt, e.g. :func:`helpers.data.format_prompt`). One caveat for GPT-2 chat:
llama-cpp-python hands the template ``bos_token = "<|endoftext|>"`` (llama.cpp's ``gpt2`` tokenizer always
has a start token; without the key it would be id 11, ","), and the template writes it first, so a GPT-2
chat prompt is the course's prompt behind one ``<|endoftext|>``. Raw completions are exact for both
families; Gemma's chat prompt is exactly ``<bos>`` + the course's prompt.

Measured on the base Gemma 3 270M, first ten test records, 24 new tokens, greedy, 2 shared CPU cores:
f32 (1,079 MB) and f16 (543 MB) give PyTorch's tokens on 10/10 records, q8_0 (292 MB) on 8/10. On one
thread each, with a training run on the same CPU, llama.cpp decoded 16 (f32), 27 (f16) and 31 (q8_0)
tokens/s, PyTorch (batch 1) 7.4. Exporting takes 4-5 s (plus 15 s to parse the source GGUF once).
"""

from __future__ import annotations

import functools
import json
import os
import struct
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

DTYPES = ("f32", "f16", "q8_0")
DEFAULT_N_CTX = 2048  # llama.cpp context for generation and serving (capped at the model's own)


# ------------------------------------------------------------------------------------------------ tensors


def _tensor_type(shape: Sequence[int], dtype: str):
    """The GGML type of a tensor: 1-D tensors stay F32; matrices take ``dtype`` (Q8_0 where it fits)."""
    from gguf import GGMLQuantizationType as Q
    from gguf import quants

    if len(shape) == 1 or dtype == "f32":
        return Q.F32
    # gguf.quants decides: Q8_0 needs rows made of whole blocks of 32 (a broadcast view costs no memory)
    if dtype == "q8_0" and quants.Q8_0.can_quantize(np.broadcast_to(np.float32(0), tuple(shape))):
        return Q.Q8_0
    return Q.F16


def _convert(array: np.ndarray, qtype) -> np.ndarray:
    """``array`` (float32) in the bytes of ``qtype``: float32, float16, or uint8 blocks for Q8_0."""
    from gguf import quants

    return quants.quantize(array, qtype)


def _nbytes(shape: Sequence[int], qtype) -> int:
    from gguf import GGML_QUANT_SIZES

    block, type_size = GGML_QUANT_SIZES[qtype]
    return int(np.prod(shape)) // block * type_size


def _float32(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()


def _is_tied(model) -> bool:
    return model.out_head.weight.data_ptr() == model.tok_emb.weight.data_ptr()


def gpt2_gguf_tensors(model) -> Iterator[tuple[str, torch.Tensor]]:
    """``(llama.cpp name, tensor)`` for each tensor of a :class:`helpers.models.GPTModel` (PyTorch shapes)."""
    yield "token_embd.weight", model.tok_emb.weight  # (vocab, emb)
    yield "position_embd.weight", model.pos_emb.weight  # (context, emb)
    for i, block in enumerate(model.blocks):
        parts = {"attn_norm": block.norm1, "attn_qkv": block.att.qkv, "attn_output": block.att.out_proj,
                 "ffn_norm": block.norm2, "ffn_up": block.ff.fc, "ffn_down": block.ff.proj}
        for name, module in parts.items():
            yield f"blk.{i}.{name}.weight", module.weight
            if module.bias is not None:
                yield f"blk.{i}.{name}.bias", module.bias
    yield "output_norm.weight", model.final_norm.weight
    yield "output_norm.bias", model.final_norm.bias
    if not _is_tied(model):
        yield "output.weight", model.out_head.weight  # (vocab, emb); tied heads reuse token_embd


def gemma3_gguf_tensors(model, source) -> Iterator[tuple[str, torch.Tensor]]:
    """``(llama.cpp name, tensor)`` for a :class:`helpers.models.Gemma3Model`, in the source GGUF's order.

    Names come from inverting :func:`helpers.weights.gemma3_course_name` over the source's tensors, so the
    export has exactly the source's tensors; RMSNorm weights get their 1 back (llama.cpp stores ``1 + w``).
    """
    from helpers.weights import WeightsCorrupt, gemma3_course_name

    params = dict(model.named_parameters(remove_duplicate=False))
    used = set()
    for info in source.tensors:
        course = gemma3_course_name(info.name)
        tensor = params[course]
        expected = tuple(int(n) for n in reversed(info.shape))
        if tuple(tensor.shape) != expected:
            raise WeightsCorrupt(f"{course} has shape {tuple(tensor.shape)}, the source GGUF's {info.name} "
                                 f"{expected}")
        used.add(course)
        yield info.name, (tensor.detach().float() + 1.0) if course.endswith("norm.weight") else tensor
    left = set(params) - used - {"out_head.weight"}
    if left or not _is_tied(model):
        what = sorted(left) or "an untied output head"
        raise WeightsCorrupt(f"The model has parameters the Gemma 3 GGUF cannot hold: {what}")


# ----------------------------------------------------------------------------------------------- metadata


def _copy_source_metadata(writer, source, skip: set[str]) -> None:
    """Every key/value of the source GGUF except its own bookkeeping (``GGUF.*``) and the keys in ``skip``."""
    from gguf import GGUFValueType

    for key, field in source.fields.items():
        if key.startswith("GGUF.") or key in skip:
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub_type=sub_type)


def _gpt2_metadata(writer, model, tokenizer, name: str) -> None:
    """Hyper-parameters and the GPT-2 BPE tokenizer for llama.cpp's ``gpt2`` architecture."""
    from gguf import TokenType

    from helpers.tokenizers import gpt2_bpe_files

    cfg = model.cfg
    writer.add_name(name)
    writer.add_context_length(cfg["context_length"])
    writer.add_embedding_length(cfg["emb_dim"])
    writer.add_feed_forward_length(4 * cfg["emb_dim"])
    writer.add_block_count(cfg["n_layers"])
    writer.add_head_count(cfg["n_heads"])
    writer.add_layer_norm_eps(model.final_norm.eps)

    files = gpt2_bpe_files()
    encoder = json.loads(files["encoder.json"].read_text(encoding="utf-8"))  # byte-level token text -> id
    tokens = sorted(encoder, key=encoder.get)
    if [encoder[t] for t in tokens] != list(range(len(tokens))) or len(tokens) != cfg["vocab_size"]:
        raise ValueError(f"encoder.json holds {len(tokens)} ids; the model's vocabulary has "
                         f"{cfg['vocab_size']}")
    lines = files["vocab.bpe"].read_text(encoding="utf-8").split("\n")
    merges = [line for line in lines[1:] if line]  # the first line is a version header
    special = {tokenizer.eos_id, tokenizer.pad_id}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types([TokenType.CONTROL if i in special else TokenType.NORMAL
                            for i in range(len(tokens))])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.eos_id)  # GPT-2 has one special token: <|endoftext|>
    writer.add_eos_token_id(tokenizer.eos_id)
    writer.add_pad_token_id(tokenizer.pad_id)
    writer.add_add_bos_token(False)  # the course's GPT-2 prompts start without a start token


# ------------------------------------------------------------------------------------------------- export


def _gemma3_writer(model, tokenizer, tmp: Path, source_gguf, name: str | None):
    """A GGUFWriter holding the source GGUF's metadata, and a function that yields the model's tensors."""
    from gguf import GGUFWriter, Keys

    from helpers.weights import gemma3_config_from_gguf, gemma3_gguf_path

    source = open_gguf(source_gguf or gemma3_gguf_path())
    cfg = gemma3_config_from_gguf(source)
    keys = ("vocab_size", "emb_dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "hidden_dim")
    mismatched = [k for k in keys if cfg[k] != model.cfg[k]]
    if mismatched:
        raise ValueError(f"The model's config differs from the source GGUF's in {mismatched}: pass the GGUF "
                         "this model was loaded from as source_gguf")
    for key, value in {"bos": tokenizer.bos_id, "eos": tokenizer.eos_id, "padding": tokenizer.pad_id}.items():
        if int(source.fields[f"tokenizer.ggml.{key}_token_id"].contents()) != value:
            raise ValueError(f"The tokenizer's {key} id {value} differs from the source GGUF's")
    writer = GGUFWriter(str(tmp), "gemma3")
    replaced = {Keys.General.ARCHITECTURE, Keys.General.FILE_TYPE, Keys.General.QUANTIZATION_VERSION,
                Keys.Tokenizer.CHAT_TEMPLATE, Keys.General.NAME}
    _copy_source_metadata(writer, source, skip=replaced)
    writer.add_name(name or "Gemma 3 270m (course export)")
    return writer, lambda: gemma3_gguf_tensors(model, source)


def _write_tensors(writer, tensors, dtype: str) -> dict[str, int]:
    """Header, metadata, tensor table, then each tensor converted and written on its own; counts per type."""
    from gguf import GGMLQuantizationType

    plan = []  # pass 1: names, shapes and types (the header lists every tensor before any data)
    for tensor_name, tensor in tensors():
        shape = tuple(tensor.shape)
        qtype = _tensor_type(shape, dtype)
        plan.append((tensor_name, qtype))
        writer.add_tensor_info(tensor_name, shape, np.dtype(np.float32), _nbytes(shape, qtype),
                               raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for (tensor_name, qtype), (again, tensor) in zip(plan, tensors()):  # pass 2: the data, one at a time
        assert tensor_name == again, (tensor_name, again)
        writer.write_tensor_data(_convert(_float32(tensor), qtype))
    counts: dict[str, int] = {}
    for _, qtype in plan:
        counts[GGMLQuantizationType(qtype).name] = counts.get(GGMLQuantizationType(qtype).name, 0) + 1
    return counts


def export_gguf(model, tokenizer, path: str | Path, dtype: str = "f16", style: str = "alpaca",
                source_gguf: str | Path | None = None, *, name: str | None = None,
                verbose: bool = True) -> Path:
    """Write ``model`` (GPT-2 / tiny-gpt or Gemma 3) with its tokenizer and chat template as a GGUF file.

    - ``dtype``: ``"f32"``, ``"f16"`` or ``"q8_0"`` for the matrices (1-D tensors stay float32).
    - ``style``: the prompt style the model was fine-tuned on; :func:`helpers.export.chat_template` of it
      goes into ``tokenizer.chat_template`` and the name into ``general.course.prompt_style``.
    - ``source_gguf``: Gemma only, the GGUF whose metadata (tokenizer, hyper-parameters) is copied;
      default the course's Gemma 3 270M file.
    - ``name``: ``general.name`` (default "GPT-2 (course export)" / "Gemma 3 270m (course export)"; llama.cpp
      special-cases some names, e.g. one containing "phi3").
    Written to a temporary file beside ``path`` and renamed when complete. Taught in notebook 07.
    """
    from gguf import GGUFWriter, LlamaFileType
    from gguf.constants import GGML_QUANT_VERSION

    from helpers.export import chat_template

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    family = getattr(model, "family", None)
    if family not in ("gpt2", "gemma3"):
        raise TypeError(f"export_gguf exports GPTModel or Gemma3Model, got {type(model).__name__}")
    file_types = {"f32": LlamaFileType.ALL_F32, "f16": LlamaFileType.MOSTLY_F16,
                  "q8_0": LlamaFileType.MOSTLY_Q8_0}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    writer = None
    try:
        if family == "gemma3":
            writer, tensors = _gemma3_writer(model, tokenizer, tmp, source_gguf, name)
        else:
            writer = GGUFWriter(str(tmp), "gpt2")
            # Not the file's name: llama.cpp special-cases some names (one containing "phi3" makes it look
            # up Phi-3's "<|end|>" token, which GPT-2's vocabulary lacks, and loading fails).
            _gpt2_metadata(writer, model, tokenizer, name or "GPT-2 (course export)")
            tensors = lambda: gpt2_gguf_tensors(model)  # noqa: E731
        writer.add_file_type(file_types[dtype])
        if dtype == "q8_0":
            writer.add_quantization_version(GGML_QUANT_VERSION)
        writer.add_chat_template(chat_template(style, bos=family == "gemma3"))  # GPT-2 prompts start bare
        writer.add_string("general.course.prompt_style", style)
        counts = _write_tensors(writer, tensors, dtype)
        writer.close()
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    if verbose:
        print(f"GGUF: wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {dtype}, tensors {counts}) "
              f"in {time.perf_counter() - start:.1f} s")
    return path


@functools.lru_cache(maxsize=2)
def _open_gguf(path: str, size: int, mtime_ns: int):
    from gguf import GGUFReader

    return GGUFReader(path)


def open_gguf(path: str | Path):
    """A ``gguf.GGUFReader`` of ``path``, kept for the next call while the file is unchanged.

    Opening parses every metadata array: 15 s for Gemma's 262,144-token vocabulary on a busy 2-core CPU,
    which three exports from the same source GGUF then pay once.
    """
    stat = Path(path).stat()
    return _open_gguf(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def gguf_metadata(path: str | Path, keys: Sequence[str] | None = None) -> dict:
    """Metadata of a GGUF file as a dict (``keys``: only those; arrays are read in full)."""
    reader = open_gguf(path)
    return {k: f.contents() for k, f in reader.fields.items() if keys is None or k in keys}


def gguf_scalars(path: str | Path) -> dict:
    """The numbers and strings of a GGUF's metadata (arrays skipped), read straight from its header.

    Milliseconds instead of :func:`open_gguf`'s seconds: enough for the architecture and context length.
    """
    from gguf import GGUFValueType as T

    formats = {T.UINT8: "B", T.INT8: "b", T.UINT16: "H", T.INT16: "h", T.UINT32: "I", T.INT32: "i",
               T.FLOAT32: "f", T.BOOL: "?", T.UINT64: "Q", T.INT64: "q", T.FLOAT64: "d"}
    values = {}
    with open(path, "rb") as f:
        def read(fmt: str):
            return struct.unpack("<" + fmt, f.read(struct.calcsize(fmt)))[0]

        def skip(vtype: int) -> None:
            if vtype == T.STRING:
                f.seek(read("Q"), os.SEEK_CUR)
            elif vtype == T.ARRAY:
                item, count = read("I"), read("Q")
                if item in (T.STRING, T.ARRAY):
                    for _ in range(count):
                        skip(item)
                else:
                    f.seek(struct.calcsize(formats[item]) * count, os.SEEK_CUR)
            else:
                f.seek(struct.calcsize(formats[vtype]), os.SEEK_CUR)

        magic, _version, _n_tensors, n_kv = struct.unpack("<4sIQQ", f.read(24))
        if magic != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file (it starts with {magic!r})")
        for _ in range(n_kv):
            key = f.read(read("Q")).decode("utf-8")
            vtype = read("I")
            if vtype == T.STRING:
                values[key] = f.read(read("Q")).decode("utf-8")
            elif vtype == T.ARRAY:
                skip(vtype)
            else:
                values[key] = read(formats[vtype])
    return values


# ---------------------------------------------------------------------------------------------- llama.cpp


def default_threads() -> int:
    """Half the CPU cores (llama-cpp-python's default), at least one.

    In this process llama.cpp shares PyTorch's OpenMP runtime, whose threads spin while they wait; on a
    2-core machine that is busy elsewhere, 2 threads took 5.6 s for what 1 thread did in 0.16 s (tiny-gpt,
    10 prompts). The server child sets ``OMP_WAIT_POLICY=PASSIVE`` and can use every core.
    """
    return max(1, (os.cpu_count() or 2) // 2)


def load_gguf(path: str | Path, *, n_ctx: int | None = None, n_threads: int | None = None):
    """A ``llama_cpp.Llama`` for ``path`` on the CPU; ``n_ctx`` defaults to min(model context, 2048)."""
    from llama_cpp import Llama

    n_threads = n_threads or default_threads()
    if n_ctx is None:
        n_ctx = min(gguf_context_length(path), DEFAULT_N_CTX)
    return Llama(str(path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, n_gpu_layers=0,
                 seed=123, verbose=False)


def gguf_context_length(path: str | Path) -> int:
    """The context length the GGUF was trained with (``<arch>.context_length``)."""
    values = gguf_scalars(path)
    return int(values[f"{values['general.architecture']}.context_length"])


def _context_length(llm) -> int:
    arch = llm.metadata["general.architecture"]
    return min(int(llm.metadata[f"{arch}.context_length"]), llm.n_ctx())


def _added_bos(llm) -> int | None:
    """The start token llama.cpp puts in front of a prompt, or None where the GGUF says it adds none."""
    adds = str(llm.metadata.get("tokenizer.ggml.add_bos_token", "false")).lower() == "true"
    return llm.token_bos() if adds else None


def prompt_token_ids(llm, prompt: str, tokenizer=None) -> list[int]:
    """The ids the model is fed for ``prompt``: the course tokenizer's (``<bos>`` first if it has one) or,
    without ``tokenizer``, llama.cpp's own (it adds ``<bos>`` where the GGUF says ``add_bos_token``)."""
    if tokenizer is not None:
        ids = list(tokenizer.encode(prompt))
        bos = getattr(tokenizer, "bos_id", None)
        if bos is not None and (not ids or ids[0] != bos):
            ids = [bos] + ids
        return ids
    ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    bos = _added_bos(llm)
    while bos is not None and len(ids) > 1 and ids[0] == bos and ids[1] == bos:  # text starting with "<bos>"
        ids = ids[1:]
    return ids


def llama_generate(path_or_llama, prompts: Sequence[str], max_new_tokens: int = 64,
                   stop: str | Sequence[str] | None = None, *, tokenizer=None, return_ids: bool = False,
                   n_ctx: int | None = None):
    """Greedy continuations of ``prompts`` by llama.cpp: the new text (and ids with ``return_ids=True``).

    Stops like :func:`helpers.generation.generate`: at the end-of-text id (not included), at the first stop
    string (text cut before it; ids up to the token that completed it) or after ``max_new_tokens``. Prompts
    longer than the context minus ``max_new_tokens`` keep their last tokens (and ``<bos>``), as there.
    ``tokenizer`` (the course's) tokenizes the prompts and decodes the text; without it llama.cpp does both.
    Each prompt starts from an empty cache, so the answer never depends on the one before.
    """
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings; wrap one prompt: llama_generate(llm, [prompt])")
    if isinstance(path_or_llama, (str, Path)):
        llm = load_gguf(path_or_llama, n_ctx=n_ctx)
        try:
            return llama_generate(llm, prompts, max_new_tokens, stop, tokenizer=tokenizer,
                                  return_ids=return_ids)
        finally:
            llm.close()
    llm = path_or_llama
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    eos = tokenizer.eos_id if tokenizer is not None else llm.token_eos()
    bos = getattr(tokenizer, "bos_id", None) if tokenizer is not None else _added_bos(llm)
    max_prompt = _context_length(llm) - max_new_tokens
    if max_prompt < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the context of "
                         f"{_context_length(llm)} tokens")

    def decode(ids: list[int]) -> str:
        if tokenizer is not None:
            return tokenizer.decode(ids)
        return llm.detokenize(ids, special=True).decode("utf-8", errors="replace")

    texts, all_ids = [], []
    for i, prompt in enumerate(prompts):
        ids = prompt_token_ids(llm, prompt, tokenizer)
        if len(ids) > max_prompt:
            keep_bos = bos is not None and ids[0] == bos
            warnings.warn(f"prompts[{i}] has {len(ids)} tokens; kept its last {max_prompt} so that it fits "
                          f"the context with max_new_tokens={max_new_tokens}", stacklevel=2)
            ids = ids[:1] + ids[-(max_prompt - 1):] if keep_bos else ids[-max_prompt:]
        new: list[int] = []
        text, cut = "", False
        if max_new_tokens > 0:
            llm.reset()  # evaluate the whole prompt: no prefix reuse from the previous one
            for token in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
                if token == eos:
                    break
                new.append(int(token))
                if stops:
                    text = decode(new)
                    cuts = [c for c in (text.find(s) for s in stops) if c >= 0]
                    if cuts:
                        text, cut = text[: min(cuts)], True
                        break
                if len(new) == max_new_tokens:
                    break
        texts.append(text if cut else decode(new))
        all_ids.append(new)
    return (texts, all_ids) if return_ids else texts


# -------------------------------------------------------------------------------------------------- serve


def gguf_server(path: str | Path, *, n_ctx: int | None = None, n_threads: int | None = None,
                startup_timeout: float = 300.0):
    """The judge's OpenAI-compatible server (not started) for the GGUF at ``path``; use it with ``with``.

    ``with gguf_server(path) as server:`` starts it on 127.0.0.1 at a free port and waits until it is
    ready; ``server.base_url`` is what ``openai.OpenAI(base_url=..., api_key="none")`` talks to and
    ``server.model_name`` the file's name. Both ``completions.create`` (raw prompt) and
    ``chat.completions.create`` (the GGUF's chat template) work; temperature 0 is greedy.
    """
    from helpers.judge_server import EmbeddedJudgeServer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No GGUF at {path}; write one first: "
                                "helpers.export_gguf.export_gguf(model, tokenizer, path)")
    n_ctx = n_ctx or min(gguf_context_length(path), DEFAULT_N_CTX)
    return EmbeddedJudgeServer(path, n_ctx=n_ctx, n_threads=n_threads, startup_timeout=startup_timeout,
                               model_name=path.name.removesuffix(".gguf"))


# ----------------------------------------------------------------------------------------------- measure


def _file_mb(path: Path) -> float:
    return round(path.stat().st_size / 1e6, 1)


def round_trip_table(model, tokenizer, records: Sequence, folder: str | Path, *, style: str = "alpaca",
                     dtypes: Sequence[str] = DTYPES, max_new_tokens: int = 24, source_gguf=None,
                     name: str = "model", keep_files: bool = True, n_threads: int | None = None):
    """PyTorch against its GGUF exports on ``records``: one row per runtime, as a pandas DataFrame.

    Columns: ``runtime``; ``same_tokens``, the records whose greedy ids equal PyTorch's (of ``n_records``);
    ``tokens_per_s``, new tokens / wall seconds with the prompt included, one prompt at a time on this CPU
    and on ``n_threads`` threads (default :func:`default_threads`) for both PyTorch (``batch_size=1``) and
    llama.cpp, so both do the same work (a 2-core CPU that a training run shared: PyTorch made 4.4 tokens/s
    on one thread, 1.0 on two); ``file_mb``; ``export_s``; and
    ``llama_tokenizer_agrees``, the prompts that llama.cpp's own tokenizer (the server's) turns into the
    course's ids. Timings are measured, never assumed. The GGUFs are written to ``folder`` as
    ``<name>.<dtype>.gguf`` (deleted unless ``keep_files``). ``table.attrs`` holds the ``ids`` and
    ``texts`` of every runtime and the ``paths`` of the files, for a closer look at a disagreement.
    """
    import pandas as pd

    from helpers.data import format_prompt
    from helpers.generation import generate
    from helpers.review import STYLE_STOPS

    folder = Path(folder)
    prompts = [format_prompt(r, style) for r in records]
    stops = STYLE_STOPS.get(style, [])
    n_threads = n_threads or default_threads()
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        start = time.perf_counter()
        texts, reference = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, stop=stops,
                                    batch_size=1, return_ids=True)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(torch_threads)
    rows = [{"runtime": "PyTorch", "same_tokens": len(prompts), "n_records": len(prompts),
             "tokens_per_s": round(sum(map(len, reference)) / seconds, 1), "file_mb": None, "export_s": None,
             "llama_tokenizer_agrees": None, "threads": n_threads}]
    attrs = {"ids": {"PyTorch": reference}, "texts": {"PyTorch": texts}, "paths": {}}
    for dtype in dtypes:
        runtime = f"GGUF {dtype}"
        start = time.perf_counter()
        path = export_gguf(model, tokenizer, folder / f"{name}.{dtype}.gguf", dtype=dtype, style=style,
                           source_gguf=source_gguf, verbose=False)
        export_s = time.perf_counter() - start
        llm = load_gguf(path, n_threads=n_threads)
        try:
            agrees = sum(prompt_token_ids(llm, p) == prompt_token_ids(llm, p, tokenizer) for p in prompts)
            start = time.perf_counter()
            texts, ids = llama_generate(llm, prompts, max_new_tokens, stops, tokenizer=tokenizer,
                                        return_ids=True)
            seconds = time.perf_counter() - start
        finally:
            llm.close()
        rows.append({"runtime": runtime, "same_tokens": sum(a == b for a, b in zip(ids, reference)),
                     "n_records": len(prompts), "tokens_per_s": round(sum(map(len, ids)) / seconds, 1),
                     "file_mb": _file_mb(path), "export_s": round(export_s, 1),
                     "llama_tokenizer_agrees": agrees, "threads": n_threads})
        attrs["ids"][runtime], attrs["texts"][runtime] = ids, texts
        if keep_files:
            attrs["paths"][runtime] = path
        else:
            path.unlink()
    table = pd.DataFrame(rows)
    table.attrs.update(attrs)
    return table
