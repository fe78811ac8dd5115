"""Batched KV-cache generation (helpers.generation) behaves like the simplest correct decoder."""

import pytest
import torch

from helpers.generation import filter_logits, generate
from helpers.models import TINY_GPT_CONFIG, GPTModel
from helpers.tokenizers import get_tokenizer

PROMPTS = [  # different lengths, deliberately not sorted by length
    "Every effort moves you",
    "Hi",
    "Below is an instruction that describes a task. Write a response that appropriately completes the "
    "request.",
    "The capital of France is",
    "1, 2, 3,",
]


@pytest.fixture(scope="module")
def tokenizer():
    return get_tokenizer("gpt2")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(123)
    # Larger-than-default init so the random model has decisive (non-tied) next-token choices.
    model = GPTModel(TINY_GPT_CONFIG).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.1)
    return model


def book_greedy(model, ids: list[int], max_new_tokens: int, eos_id: int | None = None) -> list[int]:
    """The book's decoder: batch of one, no cache, whole context recomputed, full logits every step."""
    idx = torch.tensor([ids])
    new = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.cfg["context_length"] :])[:, -1]
            token = int(torch.argmax(logits, dim=-1))
            if token == eos_id:
                break
            new.append(token)
            idx = torch.cat([idx, torch.tensor([[token]])], dim=1)
    return new


def test_batched_greedy_equals_unbatched_and_the_book_decoder(model, tokenizer):
    texts, batched = generate(model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=4, return_ids=True)
    for prompt, text, ids in zip(PROMPTS, texts, batched):
        alone = generate(model, tokenizer, [prompt], max_new_tokens=12, batch_size=1, return_ids=True)[1][0]
        assert ids == alone, f"batched and unbatched greedy differ for {prompt!r}"
        assert ids == book_greedy(model, tokenizer.encode(prompt), 12, tokenizer.eos_id)
        assert text == tokenizer.decode(ids)
        assert len(ids) <= 12


def test_left_padded_row_computes_what_it_computes_alone(model, tokenizer):
    short, long = tokenizer.encode("Hi there"), tokenizer.encode("A much longer prompt than the other one")
    pad = len(long) - len(short)
    idx = torch.tensor([[tokenizer.pad_id] * pad + short, long])  # (2, T) left-padded
    real = idx.new_ones(idx.shape, dtype=torch.bool)
    real[0, :pad] = False
    positions = (real.long().cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        padded = model.head(model.body(idx, positions=positions, attn_mask=real)[:, -1])  # (2, V)
        alone = model(torch.tensor([short]))[:, -1]  # (1, V)
    torch.testing.assert_close(padded[0], alone[0], rtol=1e-4, atol=1e-5)


def test_stop_string_is_cut_and_other_rows_continue(model, tokenizer):
    full = generate(model, tokenizer, PROMPTS, max_new_tokens=12)
    target = full[0]
    assert len(target) > 6
    stop = target[3:6]  # a piece of row 0's own continuation
    cut = generate(model, tokenizer, PROMPTS, max_new_tokens=12, stop=[stop, "@@never@@"])
    assert cut[0] == target[: target.find(stop)]
    for before, after in zip(full[1:], cut[1:]):  # other rows: cut only if they also contain the stop string
        assert after == (before[: before.find(stop)] if stop in before else before)


def test_eos_stops_a_row_early_while_the_batch_goes_on(model, tokenizer):
    ids = generate(model, tokenizer, PROMPTS, max_new_tokens=12, return_ids=True)[1]
    eos = ids[1][4]  # pretend row 1's fifth new token is the end-of-text token

    class EosAt:
        def __getattr__(self, name):
            return getattr(tokenizer, name)

        eos_id = eos

    texts, stopped = generate(model, EosAt(), PROMPTS, max_new_tokens=12, batch_size=8, return_ids=True)
    first = ids[1].index(eos)
    assert stopped[1] == ids[1][:first] and texts[1] == tokenizer.decode(ids[1][:first])
    for row, before in enumerate(ids):  # every row equals the book's decoder stopping at that id
        expected = book_greedy(model, tokenizer.encode(PROMPTS[row]), 12, eos_id=eos)
        assert stopped[row] == expected == (before[: before.index(eos)] if eos in before else before)


def test_a_start_token_is_put_in_front_once(model, tokenizer):
    class WithBos:  # a tokenizer like Gemma's: encode adds no start token, bos_id names it
        bos_id = tokenizer.encode("Start")[0]

        def __getattr__(self, name):
            return getattr(tokenizer, name)

    prompt = PROMPTS[0]
    ids = generate(model, WithBos(), [prompt, "Start" + prompt], max_new_tokens=6, return_ids=True)[1]
    expected = book_greedy(model, [WithBos.bos_id] + tokenizer.encode(prompt), 6, tokenizer.eos_id)
    assert ids[0] == expected
    assert tokenizer.encode("Start" + prompt) == [WithBos.bos_id] + tokenizer.encode(prompt)
    assert ids[1] == expected  # already starts with the start token: not put in front twice


def test_top_k_1_is_greedy_and_seeded_sampling_repeats(model, tokenizer):
    greedy = generate(model, tokenizer, PROMPTS, max_new_tokens=8)
    assert generate(model, tokenizer, PROMPTS, max_new_tokens=8, temperature=1.0, top_k=1, seed=5) == greedy
    a = generate(model, tokenizer, PROMPTS, max_new_tokens=8, temperature=1.0, top_p=0.95, seed=1)
    b = generate(model, tokenizer, PROMPTS, max_new_tokens=8, temperature=1.0, top_p=0.95, seed=1)
    c = generate(model, tokenizer, PROMPTS, max_new_tokens=8, temperature=1.0, top_p=0.95, seed=2)
    assert a == b
    assert a != c and a != greedy


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.05, 0.5, 0.15, 0.3]]))
    kept_k = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept_k.tolist() == [[False, True, False, True]]
    kept_p = torch.isfinite(filter_logits(logits, top_p=0.7))  # 0.5 + 0.3 reaches 0.7
    assert kept_p.tolist() == [[False, True, False, True]]
    assert torch.isfinite(filter_logits(logits, top_p=0.1)).sum() == 1  # the best token always stays


def test_long_prompt_is_cut_from_the_left_with_a_warning(model, tokenizer):
    context = model.cfg["context_length"]
    long_prompt = " word" * (context + 50)
    with pytest.warns(UserWarning, match="kept its last"):
        texts, ids = generate(model, tokenizer, [long_prompt, "Hi"], max_new_tokens=5, return_ids=True)
    assert len(ids[0]) <= 5
    kept = tokenizer.encode(long_prompt)[-(context - 5) :]
    assert ids[0] == book_greedy(model, kept, 5, tokenizer.eos_id)
    with pytest.raises(ValueError, match="no room"):
        generate(model, tokenizer, ["Hi"], max_new_tokens=context)


def test_stream_prints_the_returned_text(model, tokenizer, capsys):
    texts = generate(model, tokenizer, PROMPTS[:2], max_new_tokens=10, stream=True)
    assert capsys.readouterr().out == texts[0] + "\n" + texts[1] + "\n"
    assert texts == generate(model, tokenizer, PROMPTS[:2], max_new_tokens=10)


def test_gemma3_batched_greedy_equals_unbatched():
    registry = pytest.importorskip("helpers.registry", reason="helpers.registry (Gemma 3) has not landed yet")
    try:
        model, tokenizer = registry.load_model("gemma-3-270m", device="cpu")
    except Exception as error:  # a missing package gets a named error from the registry
        pytest.skip(f"Gemma 3 270M could not be loaded: {error}")
    # different lengths
    prompts = ["The capital of France is Paris. The capital of Germany is", "1, 2, 3, 4,"]
    texts, batched = generate(model, tokenizer, prompts, max_new_tokens=4, return_ids=True)
    for prompt, ids in zip(prompts, batched):
        assert ids == generate(model, tokenizer, [prompt], max_new_tokens=4, return_ids=True)[1][0]
    assert texts[0].startswith(" Berlin") and texts[1].startswith(" 5,")  # real pretrained weights at work


def test_benchmark_reference_decoder_and_flop_count(model, tokenizer):
    from benchmarks.bench_generation import _NoEndOfText, book_generate
    from benchmarks.common import forward_flops, matmul_weights
    from helpers.models import GEMMA3_270M_CONFIG, Gemma3Model, gpt2_config

    ids = tokenizer.encode(PROMPTS[2])
    book = book_generate(model, torch.tensor([ids]), 7, model.cfg["context_length"])[0, len(ids) :].tolist()
    assert book == generate(model, _NoEndOfText(tokenizer), [PROMPTS[2]], max_new_tokens=7,
                            return_ids=True)[1][0]
    with torch.device("meta"):  # shapes only
        gpt2, gemma = GPTModel(gpt2_config("gpt2-small-124m")), Gemma3Model(GEMMA3_270M_CONFIG)
    blocks = 12 * (768 * 3 * 768 + 768 * 768 + 2 * 768 * 4 * 768)
    assert matmul_weights(gpt2) == blocks + 50257 * 768
    gemma_blocks = 18 * (640 * (1024 + 256 + 256) + 1024 * 640 + 3 * 640 * 2048)
    assert matmul_weights(gemma) == gemma_blocks + 262144 * 640  # the tied head counted once
    # one token, logits at that token, no attention context: 2 FLOPs per weight
    assert forward_flops(gpt2, 1, 0) == 2 * matmul_weights(gpt2)


def test_preallocated_cache_matches_the_plain_cache():
    from helpers.generation import PreallocatedKVCache
    from helpers.models import KVCache

    # capacity 4: the 6 tokens force a regrow
    plain, prealloc = KVCache(2), PreallocatedKVCache(2, capacity=4)
    batch = 3
    for step, new in enumerate([3, 1, 1, 1]):  # prefill 3 tokens, then one at a time
        for layer in range(2):
            k, v = torch.randn(batch, 1, new, 8), torch.randn(batch, 1, new, 8)  # (B, H_kv, T_new, D)
            expected, got = plain.update(layer, k, v), prealloc.update(layer, k, v)
            torch.testing.assert_close(got, expected, rtol=0, atol=0)
        if step == 1:
            keep = torch.tensor([2, 0])
            plain.reorder(keep)
            prealloc.reorder(keep)
            batch = 2
        assert prealloc.length == plain.length
    assert prealloc.length == 6 and prealloc.keys[0].shape == (2, 1, 6, 8)
