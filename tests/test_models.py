"""Model architectures on tiny random configs: shared interface, KV cache, left padding, sliding window."""

import math

import pytest
import torch

from helpers.models import (
    GEMMA3_270M_CONFIG,
    TINY_GPT_CONFIG,
    Gemma3Model,
    GPTModel,
    RMSNorm,
    apply_rope,
    attention_mask,
    count_parameters,
    gemma3_layer_types,
    gpt2_config,
    rope_cos_sin,
    rope_inverse_frequencies,
)
from helpers.registry import DEFAULT_MODEL, MODELS, load_model, model_table

# A small Gemma 3 with every feature of the real one: 6 layers (5 local + 1 global), 4 query heads sharing
# 1 key/value head, a sliding window of 4 so short test sequences already cross it.
TINY_GEMMA_CONFIG = {
    **GEMMA3_270M_CONFIG,
    "vocab_size": 300,
    "context_length": 64,
    "emb_dim": 32,
    "n_heads": 4,
    "n_kv_heads": 1,
    "head_dim": 16,
    "hidden_dim": 64,
    "n_layers": 6,
    "layer_types": gemma3_layer_types(6),
    "sliding_window": 4,
    "query_pre_attn_scalar": 16,
}
TINY_GPT = {**TINY_GPT_CONFIG, "vocab_size": 300, "context_length": 64}


def make(model_class, cfg, seed=0):
    torch.manual_seed(seed)
    model = model_class(cfg).eval()
    if model_class is Gemma3Model:  # random norm weights, so a wrong norm formula shows in the outputs
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.normal_(0, 0.5)
    return model


MODELS_UNDER_TEST = [(GPTModel, TINY_GPT), (Gemma3Model, TINY_GEMMA_CONFIG)]
IDS = ["gpt2", "gemma3"]


@pytest.mark.parametrize("model_class,cfg", MODELS_UNDER_TEST, ids=IDS)
def test_interface_shapes(model_class, cfg):
    model = make(model_class, cfg)
    idx = torch.randint(0, cfg["vocab_size"], (2, 9))
    hidden = model.body(idx)
    assert hidden.shape == (2, 9, cfg["emb_dim"])
    logits = model.head(hidden)
    assert logits.shape == (2, 9, cfg["vocab_size"])
    torch.testing.assert_close(model(idx), logits, rtol=0, atol=0)
    # the head applied to a few selected positions equals those rows of the full logits
    torch.testing.assert_close(model.head(hidden[:, [2, 8]]), logits[:, [2, 8]])
    for key in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "drop_rate", "qkv_bias"):
        assert key in model.cfg


@pytest.mark.parametrize("model_class,cfg", MODELS_UNDER_TEST, ids=IDS)
def test_initial_loss_is_about_log_vocab(model_class, cfg):
    model = make(model_class, cfg)
    if model_class is Gemma3Model:  # a freshly initialised model (norm weights 0 = identity)
        model = model_class(cfg).eval()
    idx = torch.randint(0, cfg["vocab_size"], (4, 16))
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(idx).flatten(0, 1), idx.flatten())
    assert abs(loss.item() - math.log(cfg["vocab_size"])) < 0.5


@pytest.mark.parametrize("model_class,cfg", MODELS_UNDER_TEST, ids=IDS)
def test_kv_cache_step_by_step_equals_full_sequence(model_class, cfg):
    model = make(model_class, cfg)
    idx = torch.randint(0, cfg["vocab_size"], (2, 13))  # longer than the sliding window of 4
    with torch.no_grad():
        full = model(idx)
        cache = model.new_cache()
        chunks = [model(idx[:, :5], cache=cache)]  # a prompt, then one token at a time
        for t in range(5, 13):
            chunks.append(model(idx[:, t : t + 1], cache=cache))
    assert cache.length == 13
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_class,cfg", MODELS_UNDER_TEST, ids=IDS)
def test_left_padded_batch_equals_unbatched(model_class, cfg):
    """Rows of different lengths, left-padded, with positions starting at 0 on each row's first real token."""
    model = make(model_class, cfg)
    torch.manual_seed(1)
    rows = [torch.randint(0, cfg["vocab_size"], (n,)) for n in (11, 6, 3)]
    width, extra = max(len(r) for r in rows), 4
    pad = 0
    idx = torch.stack([torch.cat([torch.full((width - len(r),), pad), r]) for r in rows])  # (3, 11)
    real = torch.stack([torch.arange(width) >= width - len(r) for r in rows])  # (3, 11) True on real tokens
    positions = (real.long().cumsum(1) - 1).clamp(min=0)
    new_tokens = torch.randint(0, cfg["vocab_size"], (3, extra))
    with torch.no_grad():
        cache = model.new_cache()
        batched_prompt = model(idx, positions=positions, attn_mask=real, cache=cache)  # (3, 11, V)
        steps = []
        mask = real
        for t in range(extra):  # decode a few tokens with the cache, as generation does
            mask = torch.cat([mask, torch.ones(3, 1, dtype=torch.bool)], dim=1)
            pos = positions[:, -1:] + 1 + t
            steps.append(model(new_tokens[:, t : t + 1], positions=pos, attn_mask=mask, cache=cache)[:, 0])
        for i, r in enumerate(rows):
            alone = model(torch.cat([r, new_tokens[i]])[None])[0]  # (len + extra, V)
            torch.testing.assert_close(batched_prompt[i, width - len(r) :], alone[: len(r)],
                                       rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(torch.stack([s[i] for s in steps]), alone[len(r) :],
                                       rtol=1e-5, atol=1e-5)


def brute_force_mask(q_len, k_len, real, window):
    out = torch.zeros(real.shape[0], 1, q_len, k_len, dtype=torch.bool)
    for b in range(real.shape[0]):
        for qi in range(q_len):
            q = k_len - q_len + qi
            for k in range(k_len):
                ok = k <= q and (window is None or q - k < window) and bool(real[b, k])
                out[b, 0, qi, k] = ok or k == q
    return out


@pytest.mark.parametrize("window", [None, 1, 3, 100])
@pytest.mark.parametrize("q_len", [1, 4, 7])
def test_attention_mask_matches_brute_force(window, q_len):
    real = torch.tensor([[False, False, True, True, True, True, True], [True] * 7])
    mask = attention_mask(q_len, 7, real, "cpu", window=window)
    assert torch.equal(mask.expand(2, 1, q_len, 7), brute_force_mask(q_len, 7, real, window))


def test_sliding_window_changes_only_long_range_outputs():
    """Local layers ignore keys ``sliding_window`` (4) or more tokens back: the same weights with an
    unbounded window agree on the first 4 positions and differ after."""
    model = make(Gemma3Model, TINY_GEMMA_CONFIG)
    unbounded = make(Gemma3Model, {**TINY_GEMMA_CONFIG, "sliding_window": 10**6})
    unbounded.load_state_dict(model.state_dict())
    idx = torch.randint(0, 300, (1, 10))
    with torch.no_grad():
        a, b = model(idx), unbounded(idx)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert ((a[:, 4:] - b[:, 4:]).abs().amax(-1) > 1e-3).all()


def test_rmsnorm_uses_one_plus_weight():
    norm = RMSNorm(8, eps=1e-6)
    x = torch.randn(3, 8)
    rms = x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
    torch.testing.assert_close(norm(x), x / rms)  # weight 0 -> identity scale
    with torch.no_grad():
        norm.weight.fill_(1.0)
    torch.testing.assert_close(norm(x), 2 * x / rms)


def test_rope_rotates_pairs_and_keeps_norm():
    inv = rope_inverse_frequencies(8, 10_000.0)
    assert inv.shape == (4,) and inv[0] == 1.0
    x = torch.randn(1, 2, 5, 8)
    cos, sin = rope_cos_sin(torch.arange(5)[None], inv, torch.float32)
    y = apply_rope(x, cos, sin)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(y[:, :, 0], x[:, :, 0])  # position 0: no rotation
    # pair (i, i + 4) at position p is rotated by angle p * inv[i]
    p, i = 3, 1
    angle = p * inv[i]
    expected = x[0, 0, p, i] * torch.cos(angle) - x[0, 0, p, i + 4] * torch.sin(angle)
    torch.testing.assert_close(y[0, 0, p, i], expected)


def test_gemma_embedding_scaled_by_sqrt_width_and_head_tied():
    model = make(Gemma3Model, TINY_GEMMA_CONFIG)
    assert model.out_head.weight is model.tok_emb.weight
    assert count_parameters(model) == sum(p.numel() for n, p in model.named_parameters()
                                          if n != "out_head.weight")


def test_bfloat16_forward_runs_and_is_close():
    model = make(Gemma3Model, TINY_GEMMA_CONFIG)
    idx = torch.randint(0, 300, (2, 9))
    with torch.no_grad():
        full = model(idx)
        half = model.to(torch.bfloat16)(idx)
    assert half.dtype == torch.bfloat16
    assert (half.float() - full).abs().max() / full.abs().max() < 0.05


def test_dropout_only_in_training_mode():
    model = make(GPTModel, {**TINY_GPT, "drop_rate": 0.5})
    idx = torch.randint(0, 300, (1, 8))
    with torch.no_grad():
        torch.testing.assert_close(model(idx), model(idx))
        model.train()
        assert not torch.equal(model(idx), model(idx))


# ----------------------------------------------------------------------------------------------- registry


def test_registry_names_and_table():
    assert DEFAULT_MODEL == "gemma-3-270m"
    expected = {"gemma-3-270m", "gpt2-small-124m", "gpt2-medium-355m", "gpt2-large-774m",
                "gpt2-xl-1558m", "tiny-gpt"}
    assert set(MODELS) == expected
    table = model_table()
    assert list(table["name"]) == list(MODELS) and table["default"].sum() == 1
    assert set(table.columns) >= {"family", "parameters_M", "license", "source", "tokenizer"}
    assert table.set_index("name").loc["gpt2-small-124m", "license"] == "MIT"
    assert "Gemma" in table.set_index("name").loc["gemma-3-270m", "license"]


@pytest.mark.parametrize("name", ["gpt2-small-124m", "gpt2-medium-355m", "gpt2-large-774m", "gpt2-xl-1558m",
                                  "gemma-3-270m"])
def test_registry_parameter_counts_match_the_architectures(name):
    spec = MODELS[name]
    with torch.device("meta"):  # no memory, no init
        model = (Gemma3Model if spec.family == "gemma3" else GPTModel)(spec.config)
    if spec.family == "gpt2":
        model.out_head.weight = model.tok_emb.weight  # pretrained GPT-2 ties its head
    assert count_parameters(model) == spec.parameters
    book = {"gpt2-small-124m": 124, "gpt2-medium-355m": 355, "gpt2-large-774m": 774, "gpt2-xl-1558m": 1558,
            "gemma-3-270m": 268}
    assert round(spec.parameters / 1e6) == book[name]


def test_gpt2_configs_are_the_books():
    assert gpt2_config("gpt2-small-124m") == {
        "vocab_size": 50257, "context_length": 1024, "drop_rate": 0.0, "qkv_bias": True,
        "emb_dim": 768, "n_layers": 12, "n_heads": 12,
    }


def test_load_tiny_model_is_seeded_and_in_eval_mode():
    a, tok = load_model("tiny-gpt", device="cpu")
    b, _ = load_model("tiny-gpt", device="cpu")
    assert not a.training and tok.name == "gpt2"
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    assert count_parameters(a) == MODELS["tiny-gpt"].parameters


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(KeyError, match="gpt2-small-124m"):
        load_model("gpt-5")
