"""DPO (helpers.dpo): answer-only log-probabilities, ln 2 at the start, a step prefers the chosen answer,
pairs from the model's own mistakes or corruptions, and a run that resumes exactly."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from helpers.batching import InstructionDataset, collate
from helpers.dpo import (
    DPOSettings,
    corrupt,
    dpo_loss,
    make_pairs,
    pair_batches,
    sequence_logprobs,
    train_dpo,
)
from helpers.tokenizers import get_tokenizer
from test_training import tiny_model

TOKENIZER = get_tokenizer("gpt2")
RECORDS = [
    {"instruction": "Give the plural of cat.", "input": "", "output": "cats"},
    {"instruction": "Add the numbers.", "input": "12 and 30", "output": "42"},
    {"instruction": "Give the opposite of hot.", "input": "", "output": "cold"},
    {"instruction": "Give the past tense.", "input": "walk", "output": "walked"},
    {"instruction": "Give the plural of city.", "input": "", "output": "cities"},
    {"instruction": "How many legs has a spider?", "input": "", "output": "A spider has 8 legs."},
]


def pairs():
    wrong = [{"response": r} for r in ("dogs", "41", "cold", "walking", "city", "A spider has 8 legs.")]
    return make_pairs(RECORDS, wrong)


def test_pairs_use_the_models_wrong_answer_else_a_corruption():
    made = {p["instruction"]: p for p in pairs()}
    cat = made["Give the plural of cat."]
    assert cat["rejected"] == "dogs" and cat["source"] == "model"
    assert made["Give the opposite of hot."]["source"] == "wrong word form"  # the model was right
    assert made["Give the opposite of hot."]["rejected"] == "colds"
    spider = made["How many legs has a spider?"]
    assert spider["source"] == "wrong number" and spider["rejected"] == "A spider has 9 legs."
    assert all(p["chosen"] == r["output"] for p, r in zip(pairs(), RECORDS))


def test_a_wrong_looking_answer_the_judge_calls_right_is_not_rejected():
    records = [RECORDS[0]]
    said = [{"response": "The plural of cat is cats."}]  # right in other words: no exact match
    assert make_pairs(records, said)[0]["source"] == "model"
    assert make_pairs(records, said, judge_scores=[90.0])[0]["source"] == "wrong word form"
    assert make_pairs(records, said, judge_scores=[10.0])[0]["source"] == "model"


CORRUPTIONS = [("cities", "city"), ("faster", "fast"), ("walked", "walk"), ("sun", "suns"),
               ("12 and 30 make 42", "12 and 30 make 43"), ("It has 7.", "It has 6."),
               ("It is 0.", "It is 1.")]


@pytest.mark.parametrize("output,expected", CORRUPTIONS)
def test_corruptions(output, expected):
    assert corrupt({"output": output})[0] == expected
    assert corrupt({"output": "?"}) is None


def test_sequence_logprobs_count_the_answer_tokens_only():
    model = tiny_model().eval()
    inputs, targets = pair_batches(pairs()[:2], TOKENIZER, batch_size=2)[0]  # (4, T)
    assert (targets == -100).any(dim=1).all()  # the prompt is masked in every row
    with torch.no_grad():
        got = sequence_logprobs(model, inputs, targets)
        logp = F.log_softmax(model(inputs), dim=-1)  # (4, T, V): every position
    by_hand = torch.stack([sum(logp[r, t, targets[r, t]] for t in range(targets.shape[1])
                               if targets[r, t] != -100) for r in range(len(inputs))])
    assert torch.allclose(got, by_hand, atol=1e-4)
    # the same rows with the prompt's targets kept: more (negative) terms, so a lower sum in every row
    rows = [InstructionDataset([{**p, "output": p[f]} for p in pairs()[:2]], TOKENIZER)
            for f in ("chosen", "rejected")]
    _, unmasked = collate([rows[0][0], rows[0][1], rows[1][0], rows[1][1]], pad_id=TOKENIZER.pad_id,
                          eos_id=TOKENIZER.eos_id, mask_instructions=False)
    assert unmasked.shape == targets.shape and (unmasked != -100).sum() > (targets != -100).sum()
    with torch.no_grad():
        assert (sequence_logprobs(model, inputs, unmasked) < got - 1.0).all()


@pytest.mark.parametrize("beta", [0.05, 0.1, 1.0, 5.0])
def test_loss_is_ln2_when_policy_equals_reference(beta):
    logp = torch.tensor([-12.0, -3.5, -40.0])
    other = torch.tensor([-9.0, -8.0, -41.0])
    loss, stats = dpo_loss(logp, other, logp.clone(), other.clone(), beta)
    assert loss.item() == pytest.approx(math.log(2)) and stats["reward_margin"] == 0


def test_a_gradient_step_raises_chosen_over_rejected():
    model = tiny_model().eval()
    inputs, targets = pair_batches(pairs(), TOKENIZER, batch_size=6)[0]
    with torch.no_grad():
        reference = sequence_logprobs(model, inputs, targets)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    logp = sequence_logprobs(model, inputs, targets)
    loss, before = dpo_loss(logp[:6], logp[6:], reference[:6], reference[6:], beta=0.1)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        logp = sequence_logprobs(model, inputs, targets)
    _, after = dpo_loss(logp[:6], logp[6:], reference[:6], reference[6:], beta=0.1)
    assert after["reward_margin"] > before["reward_margin"] + 1e-4


def batches():
    made = pairs()
    return (pair_batches(made[:4], TOKENIZER, batch_size=2), pair_batches(made[4:], TOKENIZER, batch_size=2))


SETTINGS = DPOSettings(lr=3e-3, epochs=4, batch_size=2, warmup_steps=1, eval_every=2, beta=0.5,
                       freeze_embeddings=False)


def test_train_dpo_starts_at_ln2_and_learns_the_preference(tmp_path):
    model = tiny_model()
    train, val = batches()
    history = train_dpo(model, train, train, SETTINGS, checkpoint_dir=tmp_path)  # validate on train: must fit
    first = history.rows[0]
    assert first["step"] == 0 and first["val_loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert history.best_val_loss < math.log(2) - 0.05
    assert history.rows[-1]["val_reward_margin"] > 0
    assert {"val_accuracy", "val_chosen_logp", "val_rejected_logp", "train_loss"} <= set(history.rows[-1])
    assert (tmp_path / "reference_logprobs.safetensors").exists() and (tmp_path / "best.json").exists()


def test_train_dpo_resumes_to_the_uninterrupted_result(tmp_path):
    train, val = batches()

    def run(folder, crash_at=None, resume=False):
        model = tiny_model()

        def on_step(step, loss):
            if step == crash_at:
                raise KeyboardInterrupt("simulated crash")

        return model, train_dpo(model, train, val, SETTINGS, checkpoint_dir=folder, resume=resume,
                                on_step=on_step)

    full_model, full = run(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "crashed", crash_at=5)
    resumed_model, resumed = run(tmp_path / "crashed", resume=True)
    assert [dict(r, seconds=0) for r in resumed.rows] == [dict(r, seconds=0) for r in full.rows]
    assert resumed.best_step == full.best_step
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="other settings"):
        train_dpo(tiny_model(), train, val, DPOSettings(beta=0.2), checkpoint_dir=tmp_path / "crashed",
                  resume=True)
