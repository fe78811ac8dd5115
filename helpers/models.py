"""Model architectures written for the course in plain PyTorch (taught in notebook 03).

Every model offers one interface, so training, generation and benchmarks work with any of them:

    # (B, T, emb_dim), final norm applied:
    hidden = model.body(idx, positions=None, attn_mask=None, cache=None)
    logits = model.head(hidden)                                         # (..., vocab_size)
    logits = model(idx)                                                 # (B, T, vocab_size), the book's call

- ``idx``        (B, T) token ids of the *new* tokens.
- ``positions``  (B, T) absolute position of each new token; default ``cache.length + arange(T)``.
                 Left-padded batches pass per-row positions that start at 0 on the first real token.
- ``attn_mask``  (B, T_past + T) bool, True where the key is a real token (False on left padding);
                 None = all real.
- ``cache``      a :class:`KVCache` (``model.new_cache()``); the body appends this call's keys/values to it.

Keeping the output head separate lets training compute logits only where the target is not -100 and
generation only at the last position; for Gemma 3 the head is 262,144 wide and dominates compute.
Config keys are the book's: ``vocab_size, context_length, emb_dim, n_heads, n_layers, drop_rate, qkv_bias``.

Two architectures:
- :class:`GPTModel` -- GPT-2 in the book's shapes (``gpt2_config(name)``) and the tiny random
  ``TINY_GPT_CONFIG``.
- :class:`Gemma3Model` -- Gemma 3 (``GEMMA3_270M_CONFIG``), which adds ``n_kv_heads, head_dim, hidden_dim,
  sliding_window, layer_types, rope_local_base, rope_base, rms_norm_eps, query_pre_attn_scalar``.
Pretrained weights load through :mod:`helpers.weights`; pick a model by name with :mod:`helpers.registry`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

GPT2_CONFIGS = {
    "gpt2-small-124m": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
    "gpt2-medium-355m": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
    "gpt2-large-774m": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
    "gpt2-xl-1558m": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
}
GPT2_BASE_CONFIG = {"vocab_size": 50257, "context_length": 1024, "drop_rate": 0.0, "qkv_bias": True}

# A tiny random GPT for FAST mode and unit tests: GPT-2's tokenizer, a few thousand times fewer FLOPs.
TINY_GPT_CONFIG = {
    "vocab_size": 50257,
    "context_length": 256,
    "emb_dim": 64,
    "n_heads": 4,
    "n_layers": 2,
    "drop_rate": 0.0,
    "qkv_bias": True,
}


def gpt2_config(name: str) -> dict:
    """The full config dict of a GPT-2 size, e.g. ``gpt2_config("gpt2-small-124m")``."""
    return {**GPT2_BASE_CONFIG, **GPT2_CONFIGS[name]}


class KVCache:
    """Keys and values of every layer, grown along the time axis during generation.

    ``keys[layer]`` has shape (B, n_kv_heads, T_so_far, head_dim).
    """

    def __init__(self, n_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's ``k, v`` (B, H_kv, T_new, D) and return all keys and values so far."""
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def reorder(self, index: torch.Tensor) -> None:
        """Keep only the batch rows in ``index`` (drop finished rows during generation)."""
        self.keys = [None if k is None else k.index_select(0, index) for k in self.keys]
        self.values = [None if v is None else v.index_select(0, index) for v in self.values]


def default_positions(idx: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
    """Positions ``past, past+1, ...`` for every row: (B, T)."""
    past = 0 if cache is None else cache.length
    return torch.arange(past, past + idx.shape[1], device=idx.device).unsqueeze(0).expand(idx.shape[0], -1)


def attention_mask(
    q_len: int, k_len: int, key_is_real: torch.Tensor | None, device, window: int | None = None
) -> torch.Tensor | None:
    """Boolean mask (B or 1, 1, q_len, k_len) for ``scaled_dot_product_attention``; True = may attend.

    Queries are the last ``q_len`` of ``k_len`` positions (causal). ``key_is_real`` (B, k_len) hides left
    padding; ``window`` limits each query to the most recent ``window`` keys (Gemma 3's local layers).
    Each query may always see itself, so a padding row never attends to nothing (which would give NaN).
    """
    q_pos = torch.arange(k_len - q_len, k_len, device=device).unsqueeze(1)  # (q_len, 1)
    k_pos = torch.arange(k_len, device=device).unsqueeze(0)  # (1, k_len)
    allowed = k_pos <= q_pos
    if window is not None:
        allowed = allowed & (q_pos - k_pos < window)
    if key_is_real is None:
        return allowed[None, None]
    mask = allowed[None, None] & key_is_real[:, None, None, :].bool()  # (B, 1, q_len, k_len)
    return mask | (k_pos == q_pos)[None, None]


class MultiHeadAttention(nn.Module):
    """GPT-2 causal self-attention with one fused query/key/value projection."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.n_heads = cfg["n_heads"]
        self.head_dim = cfg["emb_dim"] // cfg["n_heads"]
        self.qkv = nn.Linear(cfg["emb_dim"], 3 * cfg["emb_dim"], bias=cfg["qkv_bias"])
        self.out_proj = nn.Linear(cfg["emb_dim"], cfg["emb_dim"])
        self.drop_rate = cfg["drop_rate"]

    def forward(self, x, layer: int, attn_mask=None, cache: KVCache | None = None):
        B, T, C = x.shape
        # each (B, H, T, D)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, H, T_past + T, D)
        if cache is None and attn_mask is None:
            out = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.drop_rate if self.training else 0.0
            )
        else:
            mask = attention_mask(T, k.shape[2], attn_mask, x.device)
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.drop_rate if self.training else 0.0
            )
        return self.out_proj(out.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class FeedForward(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.fc = nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"])
        self.proj = nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"])

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class TransformerBlock(nn.Module):
    """Pre-norm GPT-2 block: x + attn(norm(x)), then x + ff(norm(x))."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg["emb_dim"], eps=1e-5)
        self.att = MultiHeadAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg["emb_dim"], eps=1e-5)
        self.ff = FeedForward(cfg)
        self.drop = nn.Dropout(cfg["drop_rate"])

    def forward(self, x, layer: int, attn_mask=None, cache=None):
        x = x + self.drop(self.att(self.norm1(x), layer, attn_mask, cache))
        return x + self.drop(self.ff(self.norm2(x)))


class GPTModel(nn.Module):
    """GPT-2 in the book's shapes; ``body`` + ``head`` as described in the module docstring."""

    family = "gpt2"

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = dict(cfg)
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg["n_layers"]))
        self.final_norm = nn.LayerNorm(cfg["emb_dim"], eps=1e-5)
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def new_cache(self) -> KVCache:
        return KVCache(self.cfg["n_layers"])

    def body(self, idx, positions=None, attn_mask=None, cache: KVCache | None = None):
        if positions is None:
            positions = default_positions(idx, cache)
        x = self.drop_emb(self.tok_emb(idx) + self.pos_emb(positions))  # (B, T, C)
        for layer, block in enumerate(self.blocks):
            x = block(x, layer, attn_mask, cache)
        return self.final_norm(x)  # (B, T, C)

    def head(self, hidden):
        return self.out_head(hidden)  # (..., vocab_size)

    def forward(self, idx, positions=None, attn_mask=None, cache=None):
        return self.head(self.body(idx, positions, attn_mask, cache))


def transformer_blocks(model) -> nn.ModuleList:
    """The model's list of transformer blocks (``model.blocks``, else its longest ModuleList)."""
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.ModuleList):
        return blocks
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no ModuleList of blocks; cannot train only the last N.")
    return max(lists, key=len)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (a tied embedding/output weight counts once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# ----------------------------------------------------------------------------------------------------------
# Gemma 3 (taught in notebook 03). Hyper-parameters of the 270M model, read from its GGUF metadata
# (gemma3.*); the three that the GGUF does not store (local RoPE base, layer pattern, query scalar) are
# Gemma 3's published defaults, and the parity test against transformers checks all of them together.
# ----------------------------------------------------------------------------------------------------------

GEMMA3_SLIDING_PATTERN = 6  # five local (sliding-window) layers, then one global layer


def gemma3_layer_types(n_layers: int, pattern: int = GEMMA3_SLIDING_PATTERN) -> list[str]:
    """``["sliding_attention"] * 5 + ["full_attention"]`` repeated: layers 5, 11, 17 are global."""
    return ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(n_layers)]


GEMMA3_270M_CONFIG = {
    "vocab_size": 262_144,
    "context_length": 32_768,
    "emb_dim": 640,
    "n_heads": 4,
    "n_layers": 18,
    "drop_rate": 0.0,
    "qkv_bias": False,
    "n_kv_heads": 1,
    "head_dim": 256,
    "hidden_dim": 2048,
    "sliding_window": 512,
    "layer_types": gemma3_layer_types(18),
    "rope_local_base": 10_000.0,
    "rope_base": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "query_pre_attn_scalar": 256,
}


class RMSNorm(nn.Module):
    """Gemma's RMSNorm: ``x / rms(x) * (1 + weight)``, computed in float32 and cast back.

    The weight is stored as an offset from 1 (zeros = identity), as in Gemma's checkpoints.
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * (1.0 + self.weight.float())).type_as(x)


def rope_inverse_frequencies(head_dim: int, base: float, device=None) -> torch.Tensor:
    """``1 / base^(2i / head_dim)`` for i in 0..head_dim/2-1: (head_dim/2,) float32."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
    return 1.0 / (base**exponents)


def rope_cos_sin(positions: torch.Tensor, inv_freq: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of ``position * frequency`` for (B, T) positions: each (B, 1, T, head_dim)."""
    angles = positions.float()[..., None] * inv_freq.to(positions.device)  # (B, T, D/2)
    angles = torch.cat([angles, angles], dim=-1)  # (B, T, D): both halves rotate by the same angle
    return angles.cos().to(dtype)[:, None], angles.sin().to(dtype)[:, None]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[i], x[i + D/2]) of x (B, H, T, D) by their angle (the "rotate half" layout)."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


class GroupedQueryAttention(nn.Module):
    """Gemma 3 attention: ``n_heads`` query heads share ``n_kv_heads`` key/value heads; q/k RMSNorm, RoPE."""

    def __init__(self, cfg: dict, layer_type: str):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
        self.q_proj = nn.Linear(cfg["emb_dim"], self.n_heads * self.head_dim, bias=cfg["qkv_bias"])
        self.k_proj = nn.Linear(cfg["emb_dim"], self.n_kv_heads * self.head_dim, bias=cfg["qkv_bias"])
        self.v_proj = nn.Linear(cfg["emb_dim"], self.n_kv_heads * self.head_dim, bias=cfg["qkv_bias"])
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, cfg["emb_dim"], bias=False)
        self.q_norm = RMSNorm(self.head_dim, cfg["rms_norm_eps"])
        self.k_norm = RMSNorm(self.head_dim, cfg["rms_norm_eps"])
        self.window = cfg["sliding_window"] if layer_type == "sliding_attention" else None
        self.scale = cfg["query_pre_attn_scalar"] ** -0.5
        self.drop_rate = cfg["drop_rate"]

    def forward(self, x, layer: int, cos, sin, attn_mask=None, cache: KVCache | None = None):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, H_kv, T, D)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, H_kv, T, D)
        q, k = apply_rope(self.q_norm(q), cos, sin), apply_rope(self.k_norm(k), cos, sin)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, H_kv, T_past + T, D)
        group = self.n_heads // self.n_kv_heads
        k = k.repeat_interleave(group, dim=1) if group > 1 else k  # (B, H, T_k, D)
        v = v.repeat_interleave(group, dim=1) if group > 1 else v
        dropout = self.drop_rate if self.training else 0.0
        T_k = k.shape[2]
        if attn_mask is None and T_k == T and (self.window is None or T <= self.window):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout, scale=self.scale)
        else:
            mask = attention_mask(T, T_k, attn_mask, x.device, window=self.window)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=self.scale)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))  # (B, T, C)


class GeGLU(nn.Module):
    """Gemma's feed-forward: ``down(gelu_tanh(gate(x)) * up(x))``."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.gate_proj = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False)
        self.up_proj = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False)
        self.down_proj = nn.Linear(cfg["hidden_dim"], cfg["emb_dim"], bias=False)

    def forward(self, x):
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class Gemma3Block(nn.Module):
    """x + post_norm(attn(pre_norm(x))), then x + post_norm(ff(pre_norm(x))): four RMSNorms per block."""

    def __init__(self, cfg: dict, layer_type: str):
        super().__init__()
        eps = cfg["rms_norm_eps"]
        self.layer_type = layer_type
        self.input_norm = RMSNorm(cfg["emb_dim"], eps)
        self.att = GroupedQueryAttention(cfg, layer_type)
        self.post_attention_norm = RMSNorm(cfg["emb_dim"], eps)
        self.pre_ff_norm = RMSNorm(cfg["emb_dim"], eps)
        self.ff = GeGLU(cfg)
        self.post_ff_norm = RMSNorm(cfg["emb_dim"], eps)
        self.drop = nn.Dropout(cfg["drop_rate"])

    def forward(self, x, layer: int, cos, sin, attn_mask=None, cache=None):
        x = x + self.drop(self.post_attention_norm(self.att(self.input_norm(x), layer, cos, sin,
                                                            attn_mask, cache)))
        return x + self.drop(self.post_ff_norm(self.ff(self.pre_ff_norm(x))))


class Gemma3Model(nn.Module):
    """Gemma 3 (text) with the course's interface: ``body`` + ``head`` as in the module docstring.

    Local layers attend to the last ``sliding_window`` keys and use RoPE base ``rope_local_base``;
    global layers attend to everything and use ``rope_base``. The output head is tied to the embedding.
    """

    family = "gemma3"

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = dict(cfg)
        self.cfg.setdefault("layer_types", gemma3_layer_types(cfg["n_layers"]))
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.blocks = nn.ModuleList(Gemma3Block(self.cfg, t) for t in self.cfg["layer_types"])
        self.final_norm = RMSNorm(cfg["emb_dim"], cfg["rms_norm_eps"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)
        self.out_head.weight = self.tok_emb.weight  # tied: one (vocab, emb_dim) matrix
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def new_cache(self) -> KVCache:
        return KVCache(self.cfg["n_layers"])

    def body(self, idx, positions=None, attn_mask=None, cache: KVCache | None = None):
        if positions is None:
            positions = default_positions(idx, cache)
        weight = self.tok_emb.weight
        x = self.tok_emb(idx) * torch.tensor(self.cfg["emb_dim"] ** 0.5, dtype=weight.dtype,
                                             device=weight.device)  # (B, T, C)
        # RoPE frequencies are recomputed in float32 each call (128 numbers): kept out of the buffers so
        # that model.to(torch.bfloat16) cannot round them.
        head_dim = self.cfg["head_dim"]
        rope = {
            "sliding_attention": rope_cos_sin(positions, rope_inverse_frequencies(
                head_dim, self.cfg["rope_local_base"], x.device), x.dtype),
            "full_attention": rope_cos_sin(positions, rope_inverse_frequencies(
                head_dim, self.cfg["rope_base"], x.device), x.dtype),
        }
        for layer, block in enumerate(self.blocks):
            x = block(x, layer, *rope[block.layer_type], attn_mask, cache)
        return self.final_norm(x)  # (B, T, C)

    def head(self, hidden):
        return self.out_head(hidden)  # (..., vocab_size)

    def forward(self, idx, positions=None, attn_mask=None, cache=None):
        return self.head(self.body(idx, positions, attn_mask, cache))
