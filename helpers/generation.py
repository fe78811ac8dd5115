"""Batched text generation with a KV cache (taught in notebook 03, used by notebooks 04 and 05).

    from helpers.generation import generate
    texts = generate(model, tokenizer, prompts, max_new_tokens=64)                 # greedy
    texts = generate(model, tokenizer, prompts, temperature=0.8, top_p=0.9, seed=1)  # sampling, repeatable
    generate(model, tokenizer, [prompt], stream=True)  # prints tokens as they come

How it works, for one batch of prompts:

1. Prompts are sorted by length and grouped into batches, so rows in a batch need little padding.
2. Each batch is **left-padded**: the last prompt token of every row sits in the last column, so one new
   column per step serves every row. ``attn_mask`` (True on real tokens) hides the padding from attention,
   and ``positions`` restart at 0 on each row's first real token, so a padded row computes exactly what it
   would compute alone.
3. **Prefill** runs the whole prompt once and fills the KV cache; after that each step feeds only the one
   new token per row. The output head runs only on the last position (``model.head(hidden[:, -1])``) —
   for Gemma 3 the head is 262,144 wide, so this matters.
4. A row stops at the tokenizer's end-of-text id or when its new text contains a stop string (which is
   trimmed off). Finished rows leave the batch (``cache.reorder``), so they stop costing compute.

Works with any model that offers the course's model interface (``helpers.models``): ``body``, ``head``,
``new_cache`` and ``cfg["context_length"]``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence

import torch

from helpers.config import autocast
from helpers.models import KVCache

__all__ = ["generate", "next_token", "filter_logits", "PreallocatedKVCache"]


class PreallocatedKVCache(KVCache):
    """A :class:`KVCache` that reserves room for the whole generation up front.

    The plain cache grows with ``torch.cat``, which copies every key and value so far at every step (on a CPU
    that was about a quarter of a GPT-2 decoding step at batch 16). This one writes each step's keys and
    values into spare room of one buffer per layer and hands the model views of the filled part, so a step
    copies only the new token. Same interface: ``update``, ``length``, ``reorder``.
    """

    def __init__(self, n_layers: int, capacity: int):
        super().__init__(n_layers)
        self.capacity = capacity
        self._key_buffers: list[torch.Tensor | None] = [None] * n_layers
        self._value_buffers: list[torch.Tensor | None] = [None] * n_layers

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this step's ``k, v`` (B, H_kv, T_new, D) after the earlier ones; return views of all so
        far."""
        past = 0 if self.keys[layer] is None else self.keys[layer].shape[2]
        end = past + k.shape[2]
        buffer_k, buffer_v = self._key_buffers[layer], self._value_buffers[layer]
        if buffer_k is None or end > buffer_k.shape[2] or buffer_k.dtype != k.dtype:
            size = max(self.capacity, 2 * end)  # first call, or more tokens than planned: (re)allocate
            new_k = k.new_empty(k.shape[0], k.shape[1], size, k.shape[3])  # (B, H_kv, capacity, D)
            new_v = v.new_empty(v.shape[0], v.shape[1], size, v.shape[3])
            if past:
                new_k[:, :, :past] = self.keys[layer]
                new_v[:, :, :past] = self.values[layer]
            buffer_k, buffer_v = self._key_buffers[layer], self._value_buffers[layer] = new_k, new_v
        buffer_k[:, :, past:end] = k
        buffer_v[:, :, past:end] = v
        self.keys[layer], self.values[layer] = buffer_k[:, :, :end], buffer_v[:, :, :end]  # views, no copy
        return self.keys[layer], self.values[layer]

    def reorder(self, index: torch.Tensor) -> None:
        """Keep only the batch rows in ``index`` (drop finished rows during generation)."""
        for layer, (buffer_k, buffer_v) in enumerate(zip(self._key_buffers, self._value_buffers)):
            if buffer_k is None:
                continue
            end = self.keys[layer].shape[2]
            buffer_k, buffer_v = buffer_k.index_select(0, index), buffer_v.index_select(0, index)
            self._key_buffers[layer], self._value_buffers[layer] = buffer_k, buffer_v
            self.keys[layer], self.values[layer] = buffer_k[:, :, :end], buffer_v[:, :, :end]


def new_generation_cache(model, capacity: int) -> KVCache:
    """The model's own cache, or a :class:`PreallocatedKVCache` when the model uses the plain one."""
    cache = model.new_cache()
    if type(cache) is KVCache:
        return PreallocatedKVCache(len(cache.keys), capacity)
    return cache


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to -inf every logit outside the top-k tokens and outside the nucleus of probability ``top_p``.

    ``logits`` (B, V), already divided by the temperature. The most likely token always survives.
    """
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        k = min(int(top_k), logits.shape[-1])
        kth_best = torch.topk(logits, k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # probability of the better tokens
        drop_sorted = mass_before >= top_p  # never drops the best token (mass_before = 0)
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token(
    logits: torch.Tensor,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick one token per row from ``logits`` (B, V): greedy when ``temperature`` is 0, else sample.
    -> (B,)"""
    logits = logits.float()
    if temperature <= 0.0:
        return torch.argmax(logits, dim=-1)
    logits = filter_logits(logits / temperature, top_k, top_p)
    probs = torch.softmax(logits, dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many characters at the end of ``text`` could be the start of a stop string (not printed yet)."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest


class _Row:
    """Book-keeping for one prompt while it generates."""

    def __init__(self, index: int, tokenizer, stops: Sequence[str], stream):
        self.index = index
        self.tokenizer = tokenizer
        self.stops = stops
        self.stream = bool(stream)
        self.to_stdout = stream is True  # else a function that receives each new piece of text
        self.write = sys.stdout.write if stream is True else stream
        self.ids: list[int] = []
        self.text = ""
        self.printed = 0
        self.done = False

    def add(self, token: int) -> None:
        if token == self.tokenizer.eos_id:
            self.done = True
            self._flush(final=True)
            return
        self.ids.append(token)
        if not (self.stops or self.stream):
            return
        self.text = self.tokenizer.decode(self.ids)
        cuts = [self.text.find(stop) for stop in self.stops]
        cuts = [cut for cut in cuts if cut >= 0]
        if cuts:
            self.text = self.text[: min(cuts)]
            self.done = True
            self._flush(final=True)
        elif self.stream:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self.stream:
            return
        if final:
            end = len(self.text)
        else:
            # Hold back a half-decoded character (shown as U+FFFD) and a possible start of a stop string.
            end = len(self.text) - _held_back(self.text, self.stops)
            while end > self.printed and self.text[end - 1] == "\ufffd":
                end -= 1
        if end > self.printed:
            self.write(self.text[self.printed : end])
            if self.to_stdout:
                sys.stdout.flush()
            self.printed = end

    def finish(self) -> tuple[str, list[int]]:
        if not self.stops and not self.stream:
            self.text = self.tokenizer.decode(self.ids)
        self._flush(final=True)
        if self.to_stdout:
            sys.stdout.write("\n")
            sys.stdout.flush()
        return self.text, self.ids


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _prompt_ids(tokenizer, prompts: Sequence[str], max_prompt_tokens: int, context_length: int,
                max_new_tokens: int):
    """Token ids of each prompt, cut from the left (with a warning) so prompt + new tokens fit the context.

    A tokenizer with a ``bos_id`` (Gemma) gets its start-of-text token in front, kept when cutting.
    """
    all_ids = []
    bos_id = getattr(tokenizer, "bos_id", None)
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(f"prompts[{i}] is a {type(prompt).__name__}, expected str")
        ids = list(tokenizer.encode(prompt))
        if bos_id is not None and (not ids or ids[0] != bos_id):
            ids = [bos_id] + ids  # models trained with a start token (Gemma's <bos>) get it in front
        if not ids:
            raise ValueError(f"prompts[{i}] encodes to no tokens; give the model at least "
                             "one token to continue")
        if len(ids) > max_prompt_tokens:
            keep_bos = bos_id is not None and ids[0] == bos_id
            kept = ids[-(max_prompt_tokens - keep_bos) :]
            warnings.warn(
                f"prompts[{i}] has {len(ids)} tokens; kept its last {max_prompt_tokens} so that the prompt "
                f"plus max_new_tokens={max_new_tokens} fits the model's context of {context_length} tokens.",
                stacklevel=3,
            )
            ids = ([bos_id] if keep_bos else []) + kept
        all_ids.append(ids)
    return all_ids


@torch.inference_mode()
def _generate_batch(
    model,
    tokenizer,
    batch_ids: list[list[int]],
    rows: list[_Row],
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
    device: torch.device,
) -> None:
    """Generate for one batch of prompts (token ids), appending new tokens to ``rows`` in place."""
    batch, width = len(batch_ids), max(len(ids) for ids in batch_ids)
    idx = torch.full((batch, width), tokenizer.pad_id, dtype=torch.long)
    key_is_real = torch.zeros((batch, width), dtype=torch.bool)
    for r, ids in enumerate(batch_ids):  # left padding: every prompt ends in the last column
        idx[r, width - len(ids) :] = torch.tensor(ids)
        key_is_real[r, width - len(ids) :] = True
    idx, key_is_real = idx.to(device), key_is_real.to(device)  # (B, T), (B, T)
    positions = (key_is_real.long().cumsum(dim=1) - 1).clamp(min=0)  # (B, T): 0 on each first real token

    cache = new_generation_cache(model, capacity=width + max_new_tokens)
    with autocast(device):
        hidden = model.body(idx, positions=positions, attn_mask=key_is_real, cache=cache)  # (B, T, C) prefill
        logits = model.head(hidden[:, -1])  # (B, V): only the last position
    next_pos = positions[:, -1:] + 1  # (B, 1)
    active = list(range(batch))  # which of this batch's rows are still generating

    for step in range(max_new_tokens):
        tokens = next_token(logits, temperature, top_k, top_p, generator)  # (B_active,)
        for r, token in zip(active, tokens.tolist()):
            rows[r].add(token)
        if step == max_new_tokens - 1:
            break
        keep = [i for i, r in enumerate(active) if not rows[r].done]
        if not keep:
            break
        if len(keep) < len(active):  # finished rows leave the batch and stop costing compute
            keep_index = torch.tensor(keep, device=device)
            cache.reorder(keep_index)
            tokens, key_is_real, next_pos = tokens[keep_index], key_is_real[keep_index], next_pos[keep_index]
            active = [active[i] for i in keep]
        # (B, T_past + 1)
        key_is_real = torch.cat([key_is_real, key_is_real.new_ones((len(active), 1))], dim=1)
        with autocast(device):
            # (B, 1, C)
            hidden = model.body(tokens[:, None], positions=next_pos, attn_mask=key_is_real, cache=cache)
            logits = model.head(hidden[:, -1])  # (B, V)
        next_pos = next_pos + 1


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: str | Sequence[str] | None = None,
    batch_size: int = 16,
    device: torch.device | str | None = None,
    stream: bool | Callable[[str], None] = False,
    return_ids: bool = False,
):
    """Continue each prompt and return only the new text, in the order of ``prompts``.

    - ``temperature=0`` is greedy decoding; above 0 samples, optionally restricted by ``top_k`` / ``top_p``.
      ``seed`` makes sampling repeat (a private ``torch.Generator``; the global RNG is left alone).
    - A row stops at the tokenizer's end-of-text token (not included in the text) or at the first of the
      ``stop`` strings in its new text (the text is cut just before it), else after ``max_new_tokens``.
    - Prompts too long for ``context_length - max_new_tokens`` are cut from the left, with a warning.
    - ``batch_size`` prompts of similar length run together; ``stream=True`` generates one prompt at a time
      and prints its tokens as they arrive (for notebooks); ``stream=f`` calls ``f(text)`` with each new
      piece instead (a chat box).
    - ``device``: where to run (the model is moved there); default: where the model's weights are.
    - ``return_ids=True`` returns ``(texts, ids)``, where ``ids[i]`` are the new token ids of prompt i
      (without the end-of-text token; up to and including the token that completed a stop string).
    """
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings; wrap a single prompt: "
                        "generate(model, tok, [prompt])")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if any(not s for s in stops):
        raise ValueError("stop strings must be non-empty")
    if device is not None:
        device = torch.device(device)
        model.to(device)
    device = _model_device(model)

    context_length = model.cfg["context_length"]
    max_prompt_tokens = context_length - max_new_tokens
    if max_prompt_tokens < 1:
        raise ValueError(
            f"max_new_tokens={max_new_tokens} leaves no room for the prompt in the model's context of "
            f"{context_length} tokens; use max_new_tokens <= {context_length - 1}"
        )
    all_ids = _prompt_ids(tokenizer, prompts, max_prompt_tokens, context_length, max_new_tokens)
    rows = [_Row(i, tokenizer, stops, stream) for i in range(len(prompts))]
    generator = None
    if seed is not None and temperature > 0.0:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)

    if stream:
        batch_size = 1
    order = sorted(range(len(prompts)), key=lambda i: len(all_ids[i]), reverse=True)  # longest first
    if stream:
        order = list(range(len(prompts)))  # print in the order given
    was_training = model.training
    model.eval()
    try:
        results: list[tuple[str, list[int]]] = [("", [])] * len(prompts)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            if max_new_tokens > 0:
                _generate_batch(
                    model,
                    tokenizer,
                    [all_ids[i] for i in chunk],
                    [rows[i] for i in chunk],
                    max_new_tokens=max_new_tokens,
                    temperature=temperature,
                    top_k=top_k,
                    top_p=top_p,
                    generator=generator,
                    device=device,
                )
            for i in chunk:
                results[i] = rows[i].finish()
    finally:
        model.train(was_training)
    texts = [text for text, _ in results]
    return (texts, [ids for _, ids in results]) if return_ids else texts
