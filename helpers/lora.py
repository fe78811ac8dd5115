"""Low-rank adaptation (LoRA, Hu et al. 2021): two thin trained matrices beside each frozen linear layer.

A frozen ``nn.Linear`` computes ``x @ W.T``; LoRA adds ``scale * (x @ A.T) @ B.T`` with ``A`` (rank × in,
small random) and ``B`` (out × rank, zero), so the adapted model starts exactly as the pretrained one and
only ``rank * (in + out)`` numbers per layer learn. ``scale = alpha / rank`` keeps the update's size
about the same when the rank changes.

Notebook 08 (LoRA) writes ``LoRALinear`` itself; this is its production twin. What it adds:

- :func:`add_lora`     wraps the chosen linear layers of either architecture (``"attention"``,
                       ``"feedforward"`` or ``"all"``; never the embedding or the vocabulary-wide head)
                       and freezes everything else
- :func:`merge_lora`   folds ``scale * B @ A`` into ``W`` and puts the plain ``nn.Linear`` back: the merged
                       model has the base model's parameter names, so ``helpers.checkpoints``, export and
                       generation treat it like any fine-tuned model
- ``merge()`` / ``unmerge()`` on one layer, for comparing both forms
- :func:`lora_layers`, :func:`lora_parameters` for the training loop (``helpers.training.set_trainable``)
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from helpers.models import transformer_blocks

TARGETS = ("attention", "feedforward", "all")


class LoRALinear(nn.Module):
    """``base(x) + scale * B(A(dropout(x)))`` with ``base`` frozen; ``B`` starts at zero."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {rank}")
        self.base = base
        self.base.requires_grad_(False)
        self.rank, self.alpha, self.scale = rank, alpha, alpha / rank
        like = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, **like))  # (rank, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, **like))  # (out, rank)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # what nn.Linear does with its own weight
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)  # (..., out_features)
        if self.merged:
            return out
        return out + self.scale * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)

    def delta_weight(self) -> torch.Tensor:
        return self.scale * (self.lora_B @ self.lora_A)  # (out_features, in_features), as base.weight

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into ``base.weight``; forward then skips the LoRA path (same outputs)."""
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of ``base.weight`` again (training can go on)."""
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, merged={self.merged}"


def target_linears(model, targets: str = "all") -> list[tuple[nn.Module, str, nn.Linear]]:
    """``(parent, attribute, linear)`` for each linear layer inside the transformer blocks that
    ``targets`` names: the attention projections, the feed-forward layers, or all of them."""
    if targets not in TARGETS:
        raise ValueError(f"lora targets must be one of {TARGETS}, got {targets!r}")
    found = []
    for block in transformer_blocks(model):
        for parent in block.modules():
            is_attention = "Attention" in type(parent).__name__
            if targets == "attention" and not is_attention or targets == "feedforward" and is_attention:
                continue
            for name, child in parent.named_children():
                if isinstance(child, nn.Linear):
                    found.append((parent, name, child))
    return found


def add_lora(model, rank: int = 8, alpha: float | None = None, targets: str = "all",
             dropout: float = 0.0, seed: int | None = 0) -> list[str]:
    """Wrap the ``targets`` linear layers in :class:`LoRALinear` and freeze every other parameter.

    ``alpha`` defaults to ``2 * rank`` (scale 2). ``seed`` makes the random ``A`` matrices reproducible
    (the global random state is left as it was). Returns the wrapped layers' names.
    """
    if lora_layers(model):
        raise ValueError("this model already has LoRA layers; merge_lora() it first or load a fresh one")
    alpha = 2.0 * rank if alpha is None else float(alpha)
    model.requires_grad_(False)
    names = {id(m): n for n, m in model.named_modules()}
    wrapped = []
    devices = [next(model.parameters()).device] if next(model.parameters()).is_cuda else []
    with torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        for parent, attribute, linear in target_linears(model, targets):
            setattr(parent, attribute, LoRALinear(linear, rank, alpha, dropout))
            wrapped.append(f"{names[id(parent)]}.{attribute}")
    if not wrapped:
        raise ValueError(f"no linear layer matched targets={targets!r} in {type(model).__name__}")
    model.lora_settings = {"rank": rank, "alpha": alpha, "targets": targets, "dropout": dropout}
    return wrapped


def lora_layers(model) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def lora_parameters(model) -> list[nn.Parameter]:
    """The A and B matrices, in module order (what the optimizer trains)."""
    return [p for layer in lora_layers(model) for p in (layer.lora_A, layer.lora_B)]


@torch.no_grad()
def merge_lora(model) -> list[str]:
    """Fold every LoRA update into its base weight and put the plain ``nn.Linear`` back in its place.

    Afterwards the model has exactly the base model's modules and parameter names. The merged weights
    are the parameters the run changed, so they are marked ``requires_grad`` (``save_weights`` saves the
    trainable parameters) and everything else stays frozen. Returns the merged layers' names.
    """
    merged = []
    for name, module in list(model.named_modules()):
        for attribute, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                child.merge()
                child.base.weight.requires_grad_(True)
                setattr(module, attribute, child.base)
                merged.append(f"{name}.{attribute}" if name else attribute)
    if hasattr(model, "lora_settings"):
        model.merged_lora_settings = model.__dict__.pop("lora_settings")
    return merged


def count_lora_parameters(model) -> int:
    return sum(p.numel() for p in lora_parameters(model))
