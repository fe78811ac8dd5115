"""helpers.batching: tokenize, collate, mask, self-check, length grouping and loaders (issue 2)."""

import pytest
import torch

from helpers.batching import (
    CollateStats,
    InstructionDataset,
    LengthGroupedSampler,
    RandomBatchSampler,
    check_batch,
    check_loader,
    collate,
    make_loaders,
    padding_fraction,
)
from helpers.config import REPO_ROOT
from helpers.data import COURSE_DATA, format_example, format_prompt, load_records, split_records
from helpers.tokenizers import get_tokenizer

SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "instruction-data.json"
TOY = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]
EOS = 50256  # GPT-2's end-of-text, written out only to state the expected toy tensors


@pytest.fixture(scope="module")
def tok():
    return get_tokenizer("gpt2")


# --- collate on the toy batch (expected tensors written by hand) -----------------------------------


def test_collate_toy_batch(tok):
    inputs, targets = collate(TOY, pad_id=tok.pad_id, eos_id=tok.eos_id)
    assert inputs.dtype == targets.dtype == torch.long
    assert inputs.tolist() == [[0, 1, 2, 3, 4],
                               [5, 6, EOS, EOS, EOS],
                               [7, 8, 9, EOS, EOS]]
    assert targets.tolist() == [[1, 2, 3, 4, EOS],
                                [6, EOS, -100, -100, -100],
                                [8, 9, EOS, -100, -100]]


def test_collate_with_separate_pad_and_eos_ids():
    inputs, targets = collate(TOY, pad_id=99, eos_id=98, ignore_index=-1)
    assert inputs.tolist() == [[0, 1, 2, 3, 4], [5, 6, 98, 99, 99], [7, 8, 9, 98, 99]]
    assert targets.tolist() == [[1, 2, 3, 4, 98], [6, 98, -1, -1, -1], [8, 9, 98, -1, -1]]


def test_collate_accepts_tuples_and_tensors():
    inputs, targets = collate([(0, 1, 2, 3, 4), torch.tensor([5, 6]), [7, 8, 9]], pad_id=EOS, eos_id=EOS)
    expected_inputs, expected_targets = collate(TOY, pad_id=EOS, eos_id=EOS)
    assert torch.equal(inputs, expected_inputs) and torch.equal(targets, expected_targets)
    with pytest.raises(ValueError, match="empty"):
        collate([[1], []], pad_id=0, eos_id=0)


def test_instruction_masking_exact():
    batch = [{"token_ids": [0, 1, 2, 3, 4], "prompt_length": 3},  # prompt 0 1 2 | response 3 4
             {"token_ids": [5, 6], "prompt_length": 1},  # prompt 5 | response 6
             [7, 8, 9]]  # plain list: prompt length 0, nothing masked
    inputs, targets = collate(batch, pad_id=EOS, eos_id=EOS, mask_instructions=True)
    assert inputs.tolist() == [[0, 1, 2, 3, 4], [5, 6, EOS, EOS, EOS], [7, 8, 9, EOS, EOS]]
    assert targets.tolist() == [[-100, -100, 3, 4, EOS],
                                [6, EOS, -100, -100, -100],
                                [8, 9, EOS, -100, -100]]
    _, unmasked = collate(batch, pad_id=EOS, eos_id=EOS, mask_instructions=False)
    assert unmasked.tolist()[0] == [1, 2, 3, 4, EOS]


def test_truncation_exact_and_counted():
    stats = CollateStats()
    inputs, targets = collate(TOY, pad_id=EOS, eos_id=EOS, allowed_max_length=3, stats=stats)
    assert inputs.tolist() == [[0, 1, 2], [5, 6, EOS], [7, 8, 9]]
    assert targets.tolist() == [[1, 2, 3], [6, EOS, -100], [8, 9, EOS]]
    # only row 0 (5 tokens) is longer than 3; it loses targets "4" and the end-of-text
    assert (stats.batches, stats.rows, stats.truncated_rows, stats.dropped_targets) == (1, 3, 1, 2)
    collate([{"token_ids": [0, 1, 2, 3, 4], "prompt_length": 4}], pad_id=EOS, eos_id=EOS,
            allowed_max_length=3, mask_instructions=True, stats=stats)
    assert ((stats.batches, stats.truncated_rows, stats.dropped_targets, stats.fully_masked_rows)
            == (2, 2, 4, 1))
    stats.reset()
    assert stats.rows == 0
    collate(TOY, pad_id=EOS, eos_id=EOS, allowed_max_length=5, stats=stats)
    assert stats.truncated_rows == 0  # 5 tokens fit in 5 positions: inputs 0..4, targets end with eos


def test_collate_moves_to_device():
    inputs, targets = collate(TOY, pad_id=EOS, eos_id=EOS, device=torch.device("cpu"))
    assert inputs.device.type == targets.device.type == "cpu"


# --- the self-check --------------------------------------------------------------------------------


def test_check_batch_passes_on_toy_batches():
    inputs, targets = collate(TOY, pad_id=EOS, eos_id=EOS)
    summary = check_batch(inputs, targets, eos_id=EOS)
    assert summary == {"rows": 3, "width": 5, "trained_targets": 10, "masked_prompt_targets": 0,
                       "padding_targets": 5, "truncated_rows": 0}
    inputs, targets = collate(TOY, pad_id=EOS, eos_id=EOS, allowed_max_length=3)
    with pytest.raises(AssertionError, match="row 0: 0 end-of-text"):
        check_batch(inputs, targets, eos_id=EOS)  # the truncated row has no end-of-text ...
    assert check_batch(inputs, targets, eos_id=EOS,
                       allowed_max_length=3)["truncated_rows"] == 1  # ... allowed


@pytest.mark.parametrize("corrupt, message", [
    (lambda x, y: y.__setitem__((1, 0), 5), "row 1: target at position 0 is 5 but the next input token is 6"),
    (lambda x, y: y.__setitem__((2, 3), EOS), "row 2: 2 end-of-text targets"),  # padding left unmasked
    (lambda x, y: y.__setitem__((2, 2), -100), "row 2: 0 end-of-text"),  # end-of-text target masked
    (lambda x, y: y.__setitem__((0, 2), -100), "row 0: targets at positions \\[2\\] are -100"),
    (lambda x, y: x.__setitem__((2, 1), 42),
     "row 2: target at position 0 is 8 but the next input token is 42"),
])
def test_check_batch_fails_on_corrupted_batches(corrupt, message):
    inputs, targets = collate(TOY, pad_id=EOS, eos_id=EOS)
    corrupt(inputs, targets)
    with pytest.raises(AssertionError, match=message):
        check_batch(inputs, targets, eos_id=EOS)


def test_check_batch_knows_the_prompt():
    batch = [{"token_ids": [0, 1, 2, 3, 4], "prompt_length": 3}, {"token_ids": [5, 6], "prompt_length": 1}]
    inputs, targets = collate(batch, pad_id=EOS, eos_id=EOS, mask_instructions=True)
    check_batch(inputs, targets, eos_id=EOS, prompt_lengths=[3, 1], mask_instructions=True)
    with pytest.raises(AssertionError, match="row 0: 1 response target"):
        check_batch(inputs, targets, eos_id=EOS, prompt_lengths=[2, 1])  # response starts one token earlier
    with pytest.raises(AssertionError, match="row 0: instruction masking should set the first 3"):
        check_batch(inputs, targets, eos_id=EOS, prompt_lengths=[4, 1], mask_instructions=True)
    with pytest.raises(AssertionError, match="masking is off"):
        check_batch(inputs, targets, eos_id=EOS, mask_instructions=False)


# --- dataset ---------------------------------------------------------------------------------------


def test_dataset_tokenizes_prompt_and_response_separately(tok):
    records = [{"instruction": "Name a fruit.", "input": "", "output": "An apple is a fruit."},
               {"instruction": "Correct the spelling.", "input": "freind", "output": "The word is friend."}]
    for style in ("alpaca", "phi3"):
        dataset = InstructionDataset(records, tok, style=style)
        assert len(dataset) == 2
        for record, example in zip(records, dataset):
            prompt_ids = tok.encode(format_prompt(record, style))
            assert example["prompt_length"] == len(prompt_ids)
            assert example["token_ids"][:len(prompt_ids)] == prompt_ids
            assert example["token_ids"][len(prompt_ids):] == tok.encode(record["output"])
            assert tok.decode(example["token_ids"]) == format_example(record, style)
        assert dataset.lengths == [len(e["token_ids"]) for e in dataset.examples]


# --- samplers --------------------------------------------------------------------------------------


def test_samplers_cover_every_index_and_are_seeded():
    lengths = [(i * 37) % 50 + 1 for i in range(203)]
    for make in (lambda seed: LengthGroupedSampler(lengths, 8, seed=seed, batches_per_bucket=4),
                 lambda seed: RandomBatchSampler(len(lengths), 8, seed=seed)):
        sampler = make(5)
        epoch0, epoch1 = list(sampler), list(sampler)  # each pass advances the epoch
        assert len(sampler) == len(epoch0) == 26
        assert sorted(i for b in epoch0 for i in b) == list(range(203))
        assert epoch0 != epoch1
        sampler.set_epoch(0)
        assert list(sampler) == epoch0 and list(make(5)) == epoch0 and list(make(6)) != epoch0
    dropped = RandomBatchSampler(203, 8, drop_last=True)
    assert len(dropped) == len(list(dropped)) == 25


def test_length_grouping_keeps_similar_lengths_together():
    lengths = [(i * 37) % 50 + 1 for i in range(400)]
    def spread(batches):
        return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    grouped = list(LengthGroupedSampler(lengths, 8, seed=1))
    random_batches = list(RandomBatchSampler(400, 8, seed=1))
    assert spread(grouped) < spread(random_batches) / 4


def test_padding_fraction_on_toy_batch():
    batch = collate(TOY, pad_id=EOS, eos_id=EOS)
    assert padding_fraction([batch]) == pytest.approx(5 / 15)  # row 1 has 3 padding slots, row 2 has 2
    masked = collate([{"token_ids": [0, 1, 2, 3, 4], "prompt_length": 3}, [5, 6]], pad_id=EOS, eos_id=EOS,
                     mask_instructions=True)
    assert padding_fraction([masked]) == pytest.approx(3 / 10)  # the masked prompt is not padding


# --- the whole data -> batch path on real data -----------------------------------------------------

DATASETS = {"course": COURSE_DATA, "book": SHARED_DATA}


@pytest.fixture(scope="module", params=sorted(DATASETS))
def real_splits(request):
    path = DATASETS[request.param]
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return request.param, split_records(load_records(path), verbose=False)


@pytest.mark.parametrize("style", ["alpaca", "phi3"])
@pytest.mark.parametrize("mask_instructions", [False, True])
def test_whole_path_passes_self_check(real_splits, tok, style, mask_instructions):
    name, splits = real_splits
    loaders = make_loaders(splits, tok, batch_size=8, style=style, mask_instructions=mask_instructions)
    for split_name, loader in loaders._asdict().items():
        summary = check_loader(loader)  # every batch, prompt lengths known: no response token masked
        assert summary["rows"] == len(getattr(splits, split_name))
        assert (summary["masked_prompt_targets"] > 0) == mask_instructions
        seen = 0
        for inputs, targets in loader:  # the batches the loader itself yields
            check_batch(inputs, targets, eos_id=tok.eos_id,
                        mask_instructions=None if mask_instructions else False)
            seen += inputs.shape[0]
        assert seen == len(loader.dataset)
    assert loaders.train.collate_stats.truncated_rows == 0


def test_truncated_loaders_pass_self_check_and_count(real_splits, tok):
    _, splits = real_splits
    loaders = make_loaders(splits, tok, style="phi3", mask_instructions=True, allowed_max_length=48)
    longer = sum(length > 48 for length in loaders.train.dataset.lengths)
    assert longer > 0
    for inputs, targets in loaders.train:
        assert inputs.shape[1] <= 48
        check_batch(inputs, targets, eos_id=tok.eos_id, allowed_max_length=48)
    assert loaders.train.collate_stats.truncated_rows == longer
    assert check_loader(loaders.train)["truncated_rows"] == longer


def test_loaders_deterministic_and_eval_in_order(real_splits, tok):
    _, splits = real_splits
    for grouped in (True, False):
        a = make_loaders(splits, tok, grouped=grouped, seed=7)
        b = make_loaders(splits, tok, grouped=grouped, seed=7)
        first = [x for x, _ in a.train]
        assert all(torch.equal(x, y) for x, (y, _) in zip(first, b.train))
        second = [x for x, _ in a.train]  # next epoch: new order
        assert any(x.shape != y.shape or not torch.equal(x, y) for x, y in zip(first, second))
    val_first_row = next(iter(a.val))[0][0]
    expected = a.val.dataset[0]["token_ids"]
    assert val_first_row[:len(expected)].tolist() == expected


def test_no_hard_coded_end_of_text(real_splits, tok):
    """A tokenizer whose pad id differs from its end-of-text id must work end to end."""

    class PadWithZero:
        name, eos_id, pad_id, eos_text, vocab_size = "gpt2-pad0", tok.eos_id, 0, tok.eos_text, tok.vocab_size
        encode, decode = staticmethod(tok.encode), staticmethod(tok.decode)

    _, splits = real_splits
    loaders = make_loaders(splits, PadWithZero(), batch_size=8, mask_instructions=True)
    check_loader(loaders.train)
    inputs, targets = next(iter(loaders.val))
    row_lengths = [len(e["token_ids"]) for e in loaders.val.dataset.examples[:8]]
    for row, length in enumerate(row_lengths):
        assert inputs[row, length:].tolist()[:1] in ([], [tok.eos_id])  # appended end-of-text
        assert all(v == 0 for v in inputs[row, length + 1:].tolist())  # then pad id 0


def test_length_grouping_cuts_padding(real_splits, tok):
    name, splits = real_splits
    random_loaders = make_loaders(splits, tok, batch_size=8, grouped=False)
    grouped_loaders = make_loaders(splits, tok, batch_size=8, grouped=True)
    random_fraction = padding_fraction(random_loaders.train)
    grouped_fraction = padding_fraction(grouped_loaders.train)
    print(f"\n{name} train split ({len(splits.train)} records, batch 8): padding random "
          f"{random_fraction:.3f}, length-grouped {grouped_fraction:.3f}")
    assert grouped_fraction < random_fraction / 2
    assert grouped_loaders.train.batch_sampler.epoch == 0  # measuring did not shift the training order


def test_start_token_is_put_in_front_when_the_tokenizer_has_one():
    """Gemma trains and generates with <bos> first; the prompt length covers it so masking stays exact."""
    from helpers.tokenizers import get_tokenizer

    class WithStart:
        def __init__(self, tok, bos_id):
            self.tok, self.bos_id = tok, bos_id
            self.name, self.eos_id, self.pad_id = tok.name, tok.eos_id, tok.pad_id

        def encode(self, text):
            return self.tok.encode(text)

    gpt2 = get_tokenizer("gpt2")
    record = {"instruction": "Name a colour.", "input": "", "output": "Blue is a colour."}
    plain = InstructionDataset([record], gpt2)[0]
    started = InstructionDataset([record], WithStart(gpt2, bos_id=7))[0]
    assert started["token_ids"] == [7] + plain["token_ids"]
    assert started["prompt_length"] == plain["prompt_length"] + 1
