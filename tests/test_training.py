"""Training loop: supervised-only loss, loss falls, freezing, early stopping, exact resume, NaN stop,
plots."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader

from helpers import training
from helpers.config import set_seed
from helpers.models import TINY_GPT_CONFIG, GPTModel
from helpers.tokenizers import get_tokenizer
from helpers.training import (
    FinetuneSettings,
    History,
    NonFiniteLossError,
    full_logits_loss,
    supervised_loss,
    train,
)

TOKENIZER = get_tokenizer("gpt2")
# The plain loop of these tests: constant lr, no warmup, every parameter trained, no early stopping.
PLAIN = FinetuneSettings(model="tiny-gpt", warmup_steps=0, cosine=False, patience=None,
                         freeze_embeddings=False, eval_every=50)

RECORDS = [
    ("Give the plural of cat.", "cats"), ("Give the plural of dog.", "dogs"),
    ("Give the plural of box.", "boxes"), ("Give the plural of mouse.", "mice"),
    ("Give the plural of child.", "children"), ("Give the plural of city.", "cities"),
    ("Give the opposite of hot.", "cold"), ("Give the opposite of big.", "small"),
    ("Give the opposite of fast.", "slow"), ("Give the opposite of up.", "down"),
    ("Give the opposite of early.", "late"), ("Give the opposite of light.", "dark"),
]


def collate(batch, mask_prompt=True):
    """Minimal stand-in for helpers.batching: pad with end-of-text, shift, -100 on padding and prompt."""
    eos = TOKENIZER.eos_id
    seqs, prompt_lens = [], []
    for instruction, answer in batch:
        prompt = TOKENIZER.encode(f"### Instruction:\n{instruction}\n\n### Response:\n")
        seqs.append(prompt + TOKENIZER.encode(answer) + [eos])
        prompt_lens.append(len(prompt))
    width = max(len(s) for s in seqs) + 1
    inputs, targets = [], []
    for seq, plen in zip(seqs, prompt_lens):
        padded = seq + [eos] * (width - len(seq))
        x, y = torch.tensor(padded[:-1]), torch.tensor(padded[1:])
        y[len(seq):] = -100  # padding after the first end-of-text
        if mask_prompt:
            y[: plen - 1] = -100
        inputs.append(x)
        targets.append(y)
    return torch.stack(inputs), torch.stack(targets)


def make_loaders(train_records=RECORDS[:8], val_records=RECORDS[8:], batch_size=2, shuffle=True):
    return SimpleNamespace(
        train=DataLoader(train_records, batch_size=batch_size, shuffle=shuffle, collate_fn=collate),
        val=DataLoader(val_records, batch_size=batch_size, shuffle=False, collate_fn=collate),
    )


def tiny_model(seed=1, drop_rate=0.0):
    set_seed(seed)
    return GPTModel({**TINY_GPT_CONFIG, "drop_rate": drop_rate})


def test_supervised_loss_equals_full_logits_loss():
    model = tiny_model()
    inputs, targets = collate(RECORDS[:4])
    assert (targets == -100).any() and (targets != -100).any()
    assert torch.allclose(supervised_loss(model, inputs, targets),
                          full_logits_loss(model, inputs, targets), atol=1e-5)


def test_initial_loss_of_random_model_is_about_ln_vocab():
    model = tiny_model()
    inputs, targets = collate(RECORDS)
    loss = supervised_loss(model, inputs, targets).item()
    assert abs(loss - math.log(TINY_GPT_CONFIG["vocab_size"])) < 0.5


def test_loss_falls_and_history_rows(tmp_path):
    model = tiny_model()
    history = train(model, make_loaders(), PLAIN, epochs=4, lr=3e-3, eval_every=2, eval_batches=None,
                    progress=False)
    assert set(history.rows[0]) >= {"step", "epoch", "tokens_seen", "train_loss", "val_loss", "lr", "seconds"}
    assert history.rows[0]["step"] == 0 and history.rows[-1]["epoch"] == 4
    assert history.rows[-1]["train_loss"] < history.rows[0]["train_loss"] - 2.0
    tokens = [r["tokens_seen"] for r in history.rows]
    assert tokens == sorted(tokens) and tokens[-1] > 0


def test_freezing_embeddings_and_early_blocks():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, make_loaders(), PLAIN, epochs=1, lr=1e-3, eval_every=100, eval_batches=1, progress=False,
          freeze_embeddings=True, train_last_n_blocks=1)
    after = model.state_dict()
    for name in ("tok_emb.weight", "pos_emb.weight", "out_head.weight", "blocks.0.att.qkv.weight"):
        assert torch.equal(before[name], after[name]), name
    assert not torch.equal(before["blocks.1.att.qkv.weight"], after["blocks.1.att.qkv.weight"])


def test_early_stopping_restores_best_weights(tmp_path):
    # Validation wants the *other* answers, so learning the training answers makes val loss rise.
    swapped = [(q, RECORDS[(i + 1) % len(RECORDS)][1]) for i, (q, _) in enumerate(RECORDS)]
    loaders = make_loaders(train_records=RECORDS, val_records=swapped)
    model = tiny_model()
    history = train(model, loaders, PLAIN, epochs=30, lr=3e-3, eval_every=3, eval_batches=None, patience=2,
                    checkpoint_dir=tmp_path, progress=False)
    assert history.stopped_early
    assert history.rows[-1]["step"] < 30 * len(loaders.train)
    assert history.best_step < history.rows[-1]["step"]
    assert history.overfit_epoch == history.best_epoch
    # The model now holds the best weights: its val loss equals the best one recorded.
    val = training.evaluate(model, list(loaders.val))
    assert val == pytest.approx(history.best_val_loss, abs=1e-5)
    assert json.loads((tmp_path / "best.json").read_text())["step"] == history.best_step


def _run(tmp_path, interrupt_at=None, resume=False, grad_accum=1, batch_size=2):
    model = tiny_model(drop_rate=0.1)  # dropout: the random state must be restored too

    def on_step(step, loss):
        if interrupt_at is not None and step == interrupt_at:
            raise KeyboardInterrupt(f"simulated crash at step {step}")

    history = train(model, make_loaders(batch_size=batch_size), PLAIN, epochs=3, lr=2e-3, eval_every=2,
                    eval_batches=2, cosine=True, warmup_steps=2, grad_accum=grad_accum,
                    checkpoint_dir=tmp_path, resume=resume, progress=False, on_step=on_step)
    return model, history


@pytest.mark.parametrize("grad_accum,batch_size,crash_step", [(1, 2, 7), (3, 1, 5)])
def test_resume_after_crash_matches_uninterrupted_run(tmp_path, grad_accum, batch_size, crash_step):
    kw = dict(grad_accum=grad_accum, batch_size=batch_size)
    full_model, full_history = _run(tmp_path / "full", **kw)
    # Crash mid-epoch; the last checkpoint (step crash_step - 1) is mid-epoch too.
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "crashed", interrupt_at=crash_step, **kw)
    state = json.loads((tmp_path / "crashed" / f"step-{crash_step - 1:06d}.state.json").read_text())
    assert state["batch_index"] > 0 and state["step"] == crash_step - 1
    resumed_model, resumed_history = _run(tmp_path / "crashed", resume=True, **kw)
    assert resumed_history.rows == [dict(r, seconds=rr["seconds"])
                                    for r, rr in zip(full_history.rows, resumed_history.rows)]
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name


def test_resume_of_finished_run_returns_its_history(tmp_path):
    model, history = _run(tmp_path)
    again_model, again = _run(tmp_path, resume=True)
    assert again.rows == history.rows
    assert torch.equal(model.blocks[0].att.qkv.weight, again_model.blocks[0].att.qkv.weight)
    assert History.load(tmp_path / "history.json").rows == history.rows


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    model = tiny_model()

    def poison(step, loss):
        if step == 4:
            with torch.no_grad():
                model.final_norm.weight.fill_(float("nan"))

    with pytest.raises(NonFiniteLossError, match=r"step 5 \(epoch 2, batch 0 of 4\)"):
        train(model, make_loaders(), PLAIN, epochs=3, lr=1e-3, eval_every=2, eval_batches=1,
              checkpoint_dir=tmp_path, progress=False, on_step=poison)
    pointer = json.loads((tmp_path / "latest.json").read_text())
    assert pointer["step"] == 4
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / pointer["checkpoints"][0]["files"]["weights"]["name"]))
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_learning_rate_schedule():
    lrs = [training.learning_rate_at(s, 10, 1.0, warmup_steps=2, cosine=True) for s in range(1, 11)]
    assert lrs[0] == 0.5 and lrs[1] == 1.0
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:])) and lrs[-1] == pytest.approx(0.1)


def test_loss_plot_saved(tmp_path):
    from helpers.plots import plot_losses

    rows = [{"epoch": e, "tokens_seen": 100 * e, "train_loss": 3 - e, "val_loss": v}
            for e, v in zip(range(4), [3.0, 2.0, 2.2, 2.5])]
    fig = plot_losses(rows, path=tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 1000
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "overfitting" in labels and any(label.startswith("best val 2.000") for label in labels)


def test_checkpoint_of_another_run_is_refused_not_resumed(tmp_path):
    _run(tmp_path)
    saved = (tmp_path / "latest.json").read_text()
    with pytest.raises(training.CheckpointMismatch, match=r"Not resuming.*epochs: saved 3, now 1.*--restart"):
        train(tiny_model(), make_loaders(), PLAIN, epochs=1, lr=1e-3, eval_every=2, eval_batches=1,
              checkpoint_dir=tmp_path, resume=True, progress=False)
    assert (tmp_path / "latest.json").read_text() == saved  # nothing of the first run was touched
    history = train(tiny_model(), make_loaders(), PLAIN, epochs=1, lr=1e-3, eval_every=2, eval_batches=1,
                    checkpoint_dir=tmp_path, resume=False, progress=False)  # starting over is explicit
    assert history.rows[-1]["epoch"] == 1


def test_train_reads_one_settings_object_and_refuses_other_names():
    loaders = make_loaders()
    a = train(tiny_model(), loaders, PLAIN, epochs=1, lr=1e-3, eval_every=2, progress=False)
    settings = FinetuneSettings(**{**PLAIN.as_dict(), "epochs": 1, "lr": 1e-3, "eval_every": 2})
    b = train(tiny_model(), loaders, settings, progress=False)  # the same run, all in the object
    assert [r["val_loss"] for r in a.rows] == [r["val_loss"] for r in b.rows]
    with pytest.raises(TypeError, match=r"cannot change \['mask_instructions'\].*build_loaders"):
        train(tiny_model(), loaders, PLAIN, mask_instructions=False)  # would silently do nothing
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['learning_rate'\]"):
        train(tiny_model(), loaders, PLAIN, learning_rate=1e-3)
    assert FinetuneSettings().val_batches is None  # early stopping watches the whole validation split


def test_validation_loss_covers_the_whole_split_with_its_noise():
    loaders = make_loaders(val_records=RECORDS[4:], batch_size=2)  # 8 validation records in 4 batches
    model = tiny_model()
    expected = training.evaluate(model, list(loaders.val))
    history = train(model, loaders, PLAIN, epochs=1, lr=1e-3, eval_every=2, eval_batches=1, progress=False)
    first = history.rows[0]  # before any step: the untouched model on every validation record
    assert first["val_loss"] == pytest.approx(expected, abs=1e-6)
    assert first["val_loss"] != pytest.approx(training.evaluate(model, list(loaders.val)[:1]), abs=1e-3)
    assert all(r["val_loss_se"] > 0 for r in history.rows)
    assert "standard error" in history.summary()


def test_record_losses_split_the_batch_loss_by_record():
    model = tiny_model()
    inputs, targets = collate(RECORDS[:4])
    sums, counts = training.record_losses(model, [(inputs, targets)])
    assert counts.tolist() == (targets != -100).sum(dim=1).tolist()
    assert float(sums.sum() / counts.sum()) == pytest.approx(supervised_loss(model, inputs, targets).item(),
                                                             abs=1e-5)
    for i in range(4):  # each record's sum is its own mean loss times its token count
        own = supervised_loss(model, inputs[i:i + 1], targets[i:i + 1]).item()
        assert sums[i].item() == pytest.approx(own * counts[i].item(), rel=1e-4)


def test_bootstrap_se_matches_the_formula_and_leaves_the_random_state_alone():
    torch.manual_seed(0)
    losses = torch.rand(400, dtype=torch.float64) * 4  # one token per record: the loss is a plain mean
    state = torch.get_rng_state()
    se = training.bootstrap_se(losses, torch.ones(400, dtype=torch.int64), n_resamples=2000)
    assert torch.equal(state, torch.get_rng_state())
    assert se == pytest.approx(losses.std(unbiased=False).item() / math.sqrt(400), rel=0.1)
    # one record: no spread
    assert math.isnan(training.bootstrap_se(losses[:1], torch.ones(1, dtype=torch.int64)))


def test_gradient_accumulation_equals_one_larger_batch():
    """Batches of one record, two per step, must give the weights of batches of two: a mean over *tokens*."""
    def weights(batch_size, grad_accum):
        model = tiny_model()
        loaders = make_loaders(batch_size=batch_size, shuffle=False)  # the same records in the same order
        train(model, loaders, PLAIN, epochs=1, lr=3e-3, grad_accum=grad_accum, eval_every=100, progress=False)
        return model.state_dict()

    inputs, targets = collate(RECORDS[:8])
    per_record = (targets != -100).sum(dim=1).view(4, 2)
    # some pair differs in length: loss / 2 would be wrong
    assert (per_record[:, 0] != per_record[:, 1]).any()
    large, accumulated = weights(2, 1), weights(1, 2)
    # AdamW's first steps move every weight by about lr (3e-3) whatever the gradient's size, so rounding
    # (batches of other shapes) shows up as ~3e-5; averaging per batch (loss / grad_accum) gives ~1e-2.
    for name in large:
        assert torch.allclose(large[name], accumulated[name], atol=5e-4), name


def test_evaluation_batches_do_not_depend_on_earlier_passes_over_the_loader():
    from helpers.batching import make_loaders as course_loaders
    from helpers.data import load_course_data

    records = load_course_data()[:40]
    loaders = course_loaders((records[:32], records[32:36], records[36:]), TOKENIZER, batch_size=4)
    first = training.fixed_batches(loaders.train, 3)
    for _ in loaders.train:  # a pass over the data (the sampler counts its epochs) ...
        pass
    epoch = loaders.train.batch_sampler.epoch
    again = training.fixed_batches(loaders.train, 3)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))  # ... does not change the sample
    assert loaders.train.batch_sampler.epoch == epoch  # and drawing it does not move the training order
