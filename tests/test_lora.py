"""LoRA (helpers.lora): starts as the base model, merge equals unmerged, only adapters learn, merged
models save and load through the checkpoint code, and a LoRA run resumes exactly."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from helpers.checkpoints import load_weights, save_weights
from helpers.lora import LoRALinear, add_lora, count_lora_parameters, lora_layers, merge_lora
from helpers.models import Gemma3Model, GPTModel
from helpers.training import FinetuneSettings, train
from test_models import TINY_GEMMA_CONFIG, TINY_GPT
from test_training import PLAIN, make_loaders, tiny_model

ARCHITECTURES = [(GPTModel, TINY_GPT), (Gemma3Model, TINY_GEMMA_CONFIG)]
TOKENS = torch.randint(0, 200, (2, 12), generator=torch.Generator().manual_seed(0))  # (B, T)


def make(model_class, cfg, seed=0):
    torch.manual_seed(seed)
    model = model_class({**cfg, "drop_rate": 0.0})
    if model_class is Gemma3Model:  # random norm weights, so the blocks are not near-identities
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.normal_(0, 0.5)
    return model.eval()


def randomize_b(model, seed=1):
    """A trained-looking adapter: B away from zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.05)


@pytest.mark.parametrize("model_class,cfg", ARCHITECTURES)
def test_zero_b_gives_the_base_model_outputs(model_class, cfg):
    model = make(model_class, cfg)
    before = model(TOKENS)
    wrapped = add_lora(model, rank=4)
    assert wrapped and all(".blocks." in f".{n}" or n.startswith("blocks.") for n in wrapped)
    assert torch.equal(model(TOKENS), before)


@pytest.mark.parametrize("model_class,cfg", ARCHITECTURES)
@pytest.mark.parametrize("targets", ["attention", "feedforward", "all"])
def test_targets_choose_the_layers_and_never_the_head(model_class, cfg, targets):
    model = make(model_class, cfg)
    wrapped = add_lora(model, rank=2, targets=targets)
    attention = {n for n in wrapped if ".att." in n}
    assert (attention == set(wrapped)) if targets == "attention" else (
        not attention if targets == "feedforward" else 0 < len(attention) < len(wrapped))
    assert not isinstance(model.out_head, LoRALinear)
    per_block = {"attention": 2 if model_class is GPTModel else 4,
                 "feedforward": 2 if model_class is GPTModel else 3}
    expected = sum(per_block.values()) if targets == "all" else per_block[targets]
    assert len(wrapped) == expected * cfg["n_layers"]


@pytest.mark.parametrize("model_class,cfg", ARCHITECTURES)
def test_merged_equals_unmerged_and_unmerge_restores_the_base(model_class, cfg):
    model = make(model_class, cfg)
    base_weights = {k: v.clone() for k, v in model.state_dict().items()}
    add_lora(model, rank=4)
    randomize_b(model)
    unmerged = model(TOKENS)
    for layer in lora_layers(model):
        layer.merge()
    assert torch.allclose(model(TOKENS), unmerged, atol=1e-5)
    for layer in lora_layers(model):
        layer.unmerge()
    assert torch.allclose(model(TOKENS), unmerged, atol=1e-5)
    merge_lora(model)  # the plain modules are back, under the base model's names
    assert not lora_layers(model) and set(model.state_dict()) == set(base_weights)
    assert torch.allclose(model(TOKENS), unmerged, atol=1e-5)


def test_only_lora_parameters_receive_gradients():
    model = make(*ARCHITECTURES[1])
    add_lora(model, rank=4)
    randomize_b(model)
    model(TOKENS).sum().backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad and all(n.endswith(("lora_A", "lora_B")) for n in with_grad)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == count_lora_parameters(model)


def test_rank_and_alpha_set_the_parameter_count_and_scale():
    layer = LoRALinear(nn.Linear(32, 48), rank=8, alpha=16)
    assert layer.scale == 2.0 and layer.lora_A.shape == (8, 32) and layer.lora_B.shape == (48, 8)
    assert sum(p.numel() for p in (layer.lora_A, layer.lora_B)) == 8 * (32 + 48)
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(nn.Linear(4, 4), rank=0, alpha=1)
    with pytest.raises(ValueError, match="already has LoRA"):
        model = make(*ARCHITECTURES[0])
        add_lora(model)
        add_lora(model)


def test_train_with_lora_changes_only_the_adapters_and_the_merged_model_saves_and_loads(tmp_path):
    model = tiny_model()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    history = train(model, make_loaders(), PLAIN, epochs=3, lr=1e-2, eval_every=2, eval_batches=None,
                    lora_rank=4, progress=False)
    assert history.rows[-1]["train_loss"] < history.rows[0]["train_loss"] - 0.5
    layers = lora_layers(model)
    assert layers and all(layer.base.weight.requires_grad is False for layer in layers)
    for name, value in model.state_dict().items():  # every base weight is untouched
        plain = name.replace(".base.", ".")
        if plain in base:
            assert torch.equal(value, base[plain]), name
    inputs, _ = next(iter(make_loaders(shuffle=False).val))
    expected = model(inputs)
    merged = merge_lora(model)
    saved = save_weights(tmp_path / "merged.safetensors", model)
    assert saved and len(merged) == len(layers)
    fresh = tiny_model()  # the base model again, then the merged weights over it
    loaded = load_weights(tmp_path / "merged.safetensors", fresh)
    assert sorted(loaded) == sorted(f"{n}.weight" for n in merged)
    assert torch.allclose(fresh(inputs), expected, atol=1e-5)


def test_lora_run_resumes_to_the_uninterrupted_result(tmp_path):
    settings = FinetuneSettings(**{**PLAIN.as_dict(), "lora_rank": 4, "lora_dropout": 0.1, "epochs": 3,
                                   "lr": 1e-2, "eval_every": 2, "eval_batches": 2, "warmup_steps": 2,
                                   "cosine": True})

    def run(folder, crash_at=None, resume=False):
        model = tiny_model()

        def on_step(step, loss):
            if step == crash_at:
                raise KeyboardInterrupt(f"simulated crash at step {step}")

        history = train(model, make_loaders(), settings, checkpoint_dir=folder, resume=resume,
                        progress=False, on_step=on_step)
        return model, history

    full_model, full = run(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "crashed", crash_at=5)
    resumed_model, resumed = run(tmp_path / "crashed", resume=True)
    assert [dict(r, seconds=0) for r in resumed.rows] == [dict(r, seconds=0) for r in full.rows]
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name


def test_lora_settings_are_checked_by_name():
    bad = FinetuneSettings(lora_rank=0, lora_targets="heads", lora_dropout=1.0, lora_alpha=-1)
    problems = " ".join(bad.problems())
    for option in ("--lora-rank", "--lora-targets", "--lora-dropout", "--lora-alpha"):
        assert option in problems
