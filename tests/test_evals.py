"""Multiple choice by log-likelihood: the real MMLU parse, scores a test can compute by hand, Wilson
intervals."""

import math

import matplotlib

matplotlib.use("Agg")
import pytest
import torch
import torch.nn as nn

from helpers import evals
from helpers.evals import MCQuestion
from helpers.judge import bootstrap_ci

# ---------------------------------------------------------------------------------------------- MMLU parse


def test_mmlu_from_lm_eval_parses_all_282_questions_over_57_subjects():
    questions, report = evals.load_mmlu_lm_eval()
    assert report["files"] == 57 and report["samples"] == 282
    assert report["parsed"] == len(questions) == 282, report["skipped"]
    assert len({q.subject for q in questions}) == 57
    # college chemistry has one (A)-(E) question
    assert sorted(len(q.choices) for q in questions) == [4] * 281 + [5]
    assert all(0 <= q.answer < len(q.choices) and q.question and all(q.choices) for q in questions)
    first = next(q for q in questions if q.source == "mmlu_abstract_algebra.yaml#0")
    assert first.choices == ("True, True", "False, False", "True, False", "False, True")
    assert first.answer_letter == "C" and first.question.startswith("Statement 1 | Every element of a group")
    assert "(A)" not in first.question  # the choices line is cut off the stem


def test_parse_errors_name_the_source():
    with pytest.raises(ValueError, match="x.yaml#3.*answer is"):
        evals.parse_flan_sample("Q?\n(A) a (B) b", "no verdict here", "s", "x.yaml#3")
    with pytest.raises(ValueError, match="x.yaml#4.*\\(A\\)"):
        evals.parse_flan_sample("Q without choices", "The answer is (A).", "s", "x.yaml#4")


def test_shots_come_from_the_same_subject_and_never_the_question_itself():
    questions, _ = evals.load_mmlu_lm_eval(subjects=["anatomy", "virology"])
    q = questions[0]
    shots = evals.pick_shots(q, questions, 3)
    assert len(shots) == 3 and all(s.subject == q.subject and s != q for s in shots)
    prompt, conts = evals.mc_prompt(q, shots, "letter")
    assert prompt.count("\nAnswer:") == 4 and prompt.endswith("Answer:") and conts == [" A", " B", " C", " D"]
    assert f"Answer: {shots[0].answer_letter}\n\n" in prompt


# ------------------------------------------------- a model whose log-likelihoods the test computes by hand


class CharTokenizer:
    """One token per printable character (plus newline): token i is chr(i + 31), newline is 0."""

    name, eos_text = "chars", "\n"
    eos_id = pad_id = 0
    vocab_size = 96

    def encode(self, text):
        return [0 if ch == "\n" else ord(ch) - 31 for ch in text]

    def decode(self, ids):
        return "".join("\n" if i == 0 else chr(i + 31) for i in ids)


class BigramModel(nn.Module):
    """log p(next | prev) = log_softmax(W[prev])[next], whatever came before: the shared model interface."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.cfg = {"context_length": 4096}

    def body(self, idx, positions=None, attn_mask=None, cache=None):
        return nn.functional.one_hot(idx, self.weight.shape[0]).float()  # (B, T, V)

    def head(self, hidden):
        return hidden @ self.weight  # (..., V)


def by_hand(weight, tok, prompt, continuation):
    """Sum of bigram log-probabilities of the continuation's characters, one at a time in plain Python."""
    ids = tok.encode(prompt + continuation)
    start = len(tok.encode(prompt))
    table = torch.log_softmax(weight, dim=-1)
    return sum(table[ids[t - 1], ids[t]].item() for t in range(start, len(ids)))


HAND_MADE = [
    MCQuestion("toy", "2 + 2 = ?", ("3", "22", "4", "5"), 2, "toy#0"),
    MCQuestion("toy", "Capital of France?", ("Paris", "Rome", "Oslo", "Bern"), 0, "toy#1"),
    MCQuestion("toy", "Opposite of hot?", ("warm", "boiling", "cold", "red"), 2, "toy#2"),
    MCQuestion("toy", "Colour of grass?", ("blue", "green", "pink", "black"), 1, "toy#3"),
]


@pytest.mark.parametrize("method", ["letter", "choice"])
@pytest.mark.parametrize("k_shot", [0, 2])
def test_scores_equal_hand_computed_log_likelihoods(method, k_shot):
    torch.manual_seed(0)
    tok, weight = CharTokenizer(), torch.randn(96, 96) * 2
    model = BigramModel(weight)
    results = evals.evaluate_multiple_choice(model, tok, HAND_MADE, method=method, k_shot=k_shot)
    for q in HAND_MADE:
        prompt, conts = evals.mc_prompt(q, evals.pick_shots(q, HAND_MADE, k_shot), method)
        expected = [by_hand(weight, tok, prompt, c) for c in conts]
        rows = results[results["source"] == q.source].set_index("scoring")
        assert rows.loc[method, "scores"] == pytest.approx(expected, abs=1e-3)
        assert rows.loc[method, "predicted"] == max(range(4), key=expected.__getitem__)
        if method == "choice":
            normed = [e / len(c.strip()) for e, c in zip(expected, conts)]
            assert rows.loc["choice_norm", "scores"] == pytest.approx(normed, abs=1e-3)
            assert rows.loc["choice_norm", "predicted"] == max(range(4), key=normed.__getitem__)


@pytest.mark.parametrize("favoured", ["C", "B"])
def test_a_model_forced_to_one_letter_scores_the_share_of_that_letter(favoured):
    """After a space the model is certain of one letter, so it always picks it: accuracy is computable."""
    tok = CharTokenizer()
    weight = torch.zeros(96, 96)
    weight[tok.encode(" ")[0], tok.encode(favoured)[0]] = 20.0
    results = evals.evaluate_multiple_choice(BigramModel(weight), tok, HAND_MADE, method="letter")
    assert set(results["predicted"]) == {"ABCD".index(favoured)}
    share = sum(q.answer_letter == favoured for q in HAND_MADE) / len(HAND_MADE)  # C: 2/4, B: 1/4
    summary = evals.accuracy_summary(results)
    assert (summary.loc[0, "accuracy"] == share and summary.loc[0, "n"] == 4
            and summary.loc[0, "chance"] == 0.25)


def test_rotations_move_the_right_answer_through_every_position_and_keep_its_text():
    for q in HAND_MADE:
        rotated = [evals.rotate_choices(q, shift) for shift in range(4)]
        assert sorted(r.answer for r in rotated) == [0, 1, 2, 3]
        assert all(r.choices[r.answer] == q.choices[q.answer] for r in rotated)
        assert all(sorted(r.choices) == sorted(q.choices) for r in rotated)
        assert rotated[0] == MCQuestion(q.subject, q.question, q.choices, q.answer, q.source + "@0")


@pytest.mark.parametrize("favoured", ["C", "B"])
def test_a_one_letter_model_shows_in_the_letter_table_and_loses_its_score_in_circular_evaluation(favoured):
    """Always one letter: plain accuracy = that letter's share, mean over rotations = chance, circular = 0."""
    tok = CharTokenizer()
    weight = torch.zeros(96, 96)
    weight[tok.encode(" ")[0], tok.encode(favoured)[0]] = 20.0
    model = BigramModel(weight)
    results = evals.evaluate_multiple_choice(model, tok, HAND_MADE, method="letter", model_name="m")
    letters = evals.letter_distribution(results)
    assert letters.loc[favoured, "m 0-shot"] == 1.0 and letters["m 0-shot"].sum() == 1.0
    assert list(letters["true answers"]) == [0.25, 0.25, 0.5, 0.0]  # answers A, C, C, B of HAND_MADE
    reused = evals.evaluate_circular(model, tok, HAND_MADE, model_name="m", results=results)
    fresh = evals.evaluate_circular(model, tok, HAND_MADE, model_name="m")
    assert len(fresh) == 16 and sorted(fresh["rotation"].unique()) == [0, 1, 2, 3]
    assert list(reused["correct"]) == list(fresh["correct"])
    row = evals.circular_summary(fresh).iloc[0]
    share = sum(q.answer_letter == favoured for q in HAND_MADE) / 4
    assert row["plain"] == share and row["mean_over_rotations"] == 0.25 and row["circular"] == 0.0
    assert row["circular_chance"] == pytest.approx(0.25 ** 4) and row["chance"] == 0.25
    assert row["circular_ci"][0] == 0.0 and 0 < row["circular_ci"][1] < 1
    evals.plot_letter_distribution(letters)


def test_batched_pass_equals_full_forward_per_choice_on_a_real_gpt():
    from helpers.models import TINY_GPT_CONFIG, GPTModel
    from helpers.tokenizers import get_tokenizer

    torch.manual_seed(1)
    model, tok = GPTModel(TINY_GPT_CONFIG).eval(), get_tokenizer("gpt2")
    context = tok.encode("Question: Which planet is known as the red planet?\nAnswer:")
    for texts in ([" Mars", " the planet Jupiter", " Venus, the second planet"], [" A", " B", " C", " D"]):
        conts = [tok.encode(t) for t in texts]
        got = evals.continuation_logprobs(model, context, conts, pad_id=tok.pad_id)
        for c, score in zip(conts, got):
            with torch.no_grad():
                logprobs = torch.log_softmax(model(torch.tensor([context + c])), dim=-1)[0]  # (T, V)
            expected = sum(logprobs[len(context) - 1 + j, t].item() for j, t in enumerate(c))
            assert score == pytest.approx(expected, abs=1e-4)


def test_overlong_context_is_cut_from_the_left():
    torch.manual_seed(0)
    weight = torch.randn(96, 96)
    model, tok = BigramModel(weight), CharTokenizer()
    model.cfg["context_length"] = 8
    ctx, conts = tok.encode("a long prompt that does not fit"), [tok.encode(" xy"), tok.encode(" z")]
    assert evals.continuation_logprobs(model, ctx, conts) == pytest.approx(
        evals.continuation_logprobs(model, ctx[-6:], conts), abs=1e-6)


# ---------------------------------------------------------------------------------------- statistics, plots


def test_wilson_interval_known_values_and_edges():
    assert evals.wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    low, high = evals.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert evals.wilson_interval(10, 10)[1] == 1.0
    assert evals.wilson_interval(0, 0) == (0.0, 1.0)
    narrow, wide = evals.wilson_interval(70, 282), evals.wilson_interval(7, 28)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    with pytest.raises(ValueError):
        evals.wilson_interval(11, 10)


def test_paired_counts_and_plot_draws_the_chance_line():
    tok = CharTokenizer()
    weight_c, weight_b = torch.zeros(96, 96), torch.zeros(96, 96)
    weight_c[tok.encode(" ")[0], tok.encode("C")[0]] = 20.0
    weight_b[tok.encode(" ")[0], tok.encode("B")[0]] = 20.0
    import pandas as pd

    results = pd.concat([
        evals.evaluate_multiple_choice(BigramModel(weight_c), tok, HAND_MADE, model_name="base"),
        evals.evaluate_multiple_choice(BigramModel(weight_b), tok, HAND_MADE, model_name="fine-tuned"),
    ])
    counts = evals.paired_counts(results, "base", "fine-tuned", "letter")
    assert counts == {"questions": 4, "both": 0, "only base": 2, "only fine-tuned": 1, "neither": 1}
    ax = evals.plot_accuracy(evals.accuracy_summary(results))
    assert any(list(line.get_xdata()) == [0.25, 0.25] for line in ax.get_lines())
    ax = evals.plot_subject_accuracy(results)
    assert any(list(line.get_xdata()) == [0.25, 0.25] for line in ax.get_lines())


# ------------------------------------------------------------------------------------------- online loaders


def test_full_mmlu_says_what_to_download_when_absent_and_reads_a_placed_folder(tmp_path):
    with pytest.raises(evals.BenchmarkDataMissing, match="hendrycks/data.tar"):
        evals.load_mmlu_full(tmp_path / "nothing.tar")
    (tmp_path / "data" / "test").mkdir(parents=True)
    (tmp_path / "data" / "test" / "virology_test.csv").write_text(
        '"What is a virus?",cell,"small, infectious agent",plant,rock,B\n')
    questions = evals.load_mmlu_full(tmp_path / "data")
    import tarfile

    # the release's layout: data/test/<subject>_test.csv
    with tarfile.open(tmp_path / "data.tar", "w") as tar:
        tar.add(tmp_path / "data", arcname="data")
    assert evals.load_mmlu_full(tmp_path / "data.tar") == questions
    assert questions == [MCQuestion("virology", "What is a virus?",
                                    ("cell", "small, infectious agent", "plant", "rock"), 1,
                                    "virology_test.csv#0")]
    assert math.isclose(evals.accuracy_summary(
        evals.evaluate_multiple_choice(BigramModel(torch.zeros(96, 96)),
                                       CharTokenizer(), questions)).loc[0, "chance"], 0.25)


# ------------------------------------------------------------------------------------------- suites table


def test_suites_table_names_every_suite_and_which_run_offline():
    from helpers.suites import suites_table

    table = suites_table()
    assert list(table["suite"]) == ["MMLU", "LMSYS Chatbot Arena", "AlpacaEval", "GLUE", "SuperGLUE",
                                    "BIG-bench", "HELM", "OpenAI Evals", "HumanEval", "SQuAD", "TriviaQA"]
    assert table.notna().all().all() and (table["measures"].str.len() > 10).all()
    assert list(table.loc[table["offline here"].str.startswith("yes"), "suite"]) == ["MMLU", "HumanEval"]


@pytest.mark.parametrize("key", ["squad", "alpaca_eval", "arena", "triviaqa", "glue_sst2",
                                 "superglue_boolq", "bigbench"])
def test_online_only_suites_say_what_to_download_and_where(tmp_path, key):
    from helpers.suites import get_suite, load_suite

    missing = tmp_path / "absent" / (get_suite(key).filename or "x")
    with pytest.raises(evals.BenchmarkDataMissing) as err:
        load_suite(key, path=missing)
    message = str(err.value)
    assert str(missing) in message and ("http" in message or "load_dataset" in message)


def test_frameworks_explain_themselves():
    from helpers.suites import suite_path

    with pytest.raises(evals.BenchmarkDataMissing, match="crfm-helm"):
        suite_path("helm")


def test_placed_files_are_read(tmp_path):
    import json
    import zipfile

    from helpers.suites import load_suite

    squad = {"data": [{"title": "T", "paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "q1", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}]}]}]}]}
    (tmp_path / "dev.json").write_text(json.dumps(squad))
    assert load_suite("squad", path=tmp_path / "dev.json") == [
        {"title": "T", "context": "Paris is in France.", "question": "Where is Paris?",
         "answers": ["France"], "id": "q1"}]
    with zipfile.ZipFile(tmp_path / "BoolQ.zip", "w") as archive:
        archive.writestr("BoolQ/val.jsonl", '{"question": "is water wet", "label": true}\n')
    assert (load_suite("superglue_boolq", path=tmp_path / "BoolQ.zip")
            == [{"question": "is water wet", "label": True}])
    (tmp_path / "task.json").write_text(json.dumps({"name": "x",
                                                    "examples": [{"input": "a", "target": "b"}]}))
    assert load_suite("bigbench", path=tmp_path / "task.json") == [{"input": "a", "target": "b"}]
    assert len(load_suite("humaneval")) == 164


def test_win_rate_by_length_bins_and_length_controlled_mean():
    a = ["one two three four five"] * 4 + ["x"] * 2
    b = ["one"] * 2 + ["a b c d e"] * 2 + ["p q r s"] * 2  # ratios 0.2, 0.2, 1, 1, 4, 4
    outcomes = [0.0, 0.0, 0.5, 1.0, 1.0, 1.0]
    table = evals.win_rate_by_length(outcomes, a, b).set_index("bin")
    assert list(table["n"]) == [2, 2, 2, 6, 6]
    assert table["win_rate"].tolist() == pytest.approx([0.0, 0.75, 1.0, 3.5 / 6, (0 + 0.75 + 1) / 3])
    # the same bootstrap interval as pairwise_compare's win rate; a bin where every outcome is equal has no
    # spread
    assert (tuple(table.loc["all records", ["win_rate", "ci_low", "ci_high"]])
            == pytest.approx(bootstrap_ci(outcomes)))
    assert tuple(table.loc[table.index[0], ["ci_low", "ci_high"]]) == (0.0, 0.0)
    ax = evals.plot_win_rate_by_length(table.reset_index())
    assert any(list(line.get_xdata()) == [0.5, 0.5] for line in ax.get_lines())
    # it names the interval it draws
    assert "bootstrap" in ax.get_xlabel() and "Wilson" not in ax.get_xlabel()
    with pytest.raises(ValueError, match="one outcome per response pair"):
        evals.win_rate_by_length([1.0], a, b)
