"""The course's GPT-2 loads a hub-layout ``model.safetensors`` and matches transformers' GPT2LMHeadModel.

The file is written by transformers itself (``save_pretrained(safe_serialization=True)``) from random
weights of a small GPT-2, so the test needs no download but reads exactly the layout the hub serves
(Conv1D weights stored as (in, out), fused ``c_attn``, ``transformer.`` prefixes, tied ``lm_head``).
"""

import pytest
import torch

from helpers.weights import WeightsCorrupt, gpt2_weights_file, load_gpt2_from_safetensors

transformers = pytest.importorskip(
    "transformers", reason="parity tests need the reference extra: pip install -e '.[reference]'")

SMALL = {"vocab_size": 500, "context_length": 64, "emb_dim": 48, "n_heads": 4, "n_layers": 3,
         "drop_rate": 0.0, "qkv_bias": True}


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=SMALL["vocab_size"], n_positions=SMALL["context_length"], n_embd=SMALL["emb_dim"],
        n_layer=SMALL["n_layers"], n_head=SMALL["n_heads"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    reference = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # random LayerNorm and bias values, so a wrong mapping cannot hide behind 1s and 0s
        for name, p in reference.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.normal_(0, 0.3)
    folder = tmp_path_factory.mktemp("gpt2-hub-layout")
    reference.save_pretrained(folder, safe_serialization=True)
    return folder, reference


def test_hub_file_has_the_hub_layout(hub_folder):
    from safetensors import safe_open

    folder, _ = hub_folder
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        c_attn = f.get_slice(next(k for k in keys if k.endswith("h.0.attn.c_attn.weight"))).get_shape()
    assert c_attn == [SMALL["emb_dim"], 3 * SMALL["emb_dim"]]  # Conv1D: (in, out)
    assert any(k.endswith("wte.weight") for k in keys)


def test_logits_equal_transformers(hub_folder):
    folder, reference = hub_folder
    model = load_gpt2_from_safetensors(gpt2_weights_file("gpt2-small-124m", weights_dir=folder), SMALL).eval()
    assert model.out_head.weight is model.tok_emb.weight
    idx = torch.randint(0, SMALL["vocab_size"], (3, 40))
    with torch.no_grad():
        ours, theirs = model(idx), reference(idx).logits
    error = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    print(f"GPT-2 small random weights: relative error {error:.2e}")
    assert error < 1e-5
    # and step by step through the KV cache
    with torch.no_grad():
        cache = model.new_cache()
        steps = torch.cat([model(idx[:, :30], cache=cache)]
                          + [model(idx[:, t : t + 1], cache=cache) for t in range(30, 40)], 1)
    torch.testing.assert_close(steps, theirs, rtol=1e-4, atol=1e-4)


def test_wrong_config_is_a_named_error(hub_folder):
    folder, _ = hub_folder
    with pytest.raises(WeightsCorrupt, match="token embedding"):
        load_gpt2_from_safetensors(folder / "model.safetensors", {**SMALL, "vocab_size": 501})
