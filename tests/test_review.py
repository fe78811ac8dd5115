"""Manual review: the headless session saves every click atomically and resumes after a restart;
the widget drives the same session; responses are generated with the real tokenizer and generation code."""

import json

import pytest

from helpers.review import (
    ReviewSession,
    auto_review,
    generate_responses,
    load_responses,
    normalize_answer,
    record_key,
    reference_scores,
    review_widget,
    save_responses,
    to_100,
    token_f1,
)

RECORDS = [
    {"instruction": "What is the capital of Australia?", "input": "", "output": "Canberra.",
     "response": "Sydney.", "model_name": "toy"},
    {"instruction": "Give the plural.", "input": "mouse", "output": "mice", "response": "mice",
     "model_name": "toy"},
    {"instruction": "Convert 5 km to m.", "input": "", "output": "5000 m", "response": "500 m",
     "model_name": "toy"},
    {"instruction": "Antonym of hot?", "input": "", "output": "cold", "response": "cold",
     "model_name": "toy"},
]


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_session_saves_every_click_and_resumes_after_restart(tmp_path, suffix):
    path = tmp_path / f"review{suffix}"
    session = ReviewSession(RECORDS, path)
    assert session.progress() == (0, 4)
    session.score(1)
    assert path.exists(), "the first click must already be on disk"
    session.verdict("wrong")
    session.note("capital is Canberra")
    session.next()
    session.score(5)
    session.verdict("correct")
    session.next()  # the reviewer stops on record 2 without scoring it
    assert not list(tmp_path.glob("*.tmp")), "atomic writes leave no temp files behind"

    restarted = ReviewSession(RECORDS, path)  # a new kernel: same records, same file
    assert restarted.position == 2
    assert restarted.progress() == (2, 4)
    assert restarted.reviews[0]["score"] == 1 and restarted.reviews[0]["verdict"] == "wrong"
    assert restarted.reviews[0]["note"] == "capital is Canberra"
    assert restarted.reviews[1]["score"] == 5
    assert restarted.human_scores() == [0.0, 100.0, None, None]
    restarted.verdict("partly")  # record 2
    restarted.jump(0)
    assert restarted.jump_to_unreviewed()["index"] == 3  # skips the reviewed 1 and 2
    restarted.score(4)
    assert restarted.jump_to_unreviewed() is None  # all done
    assert restarted.human_scores() == [0.0, 100.0, 50.0, 75.0]


def test_reviews_follow_records_by_content_not_position(tmp_path):
    path = tmp_path / "review.json"
    session = ReviewSession(RECORDS, path)
    session.jump(3)
    session.score(2)
    reordered = ReviewSession(list(reversed(RECORDS)), path)
    assert reordered.reviews[0]["score"] == 2
    assert reordered.position == 0  # the record the reviewer was on, now first
    subset = ReviewSession(RECORDS[:2], path)  # reviews of other records are kept in the file
    subset.score(3)
    again = ReviewSession(RECORDS, path)
    assert again.reviews[3]["score"] == 2 and again.reviews[subset.position]["score"] == 3


def test_bad_inputs_get_clear_errors(tmp_path):
    session = ReviewSession(RECORDS, tmp_path / "r.json")
    with pytest.raises(ValueError, match="1-5 scale"):
        session.score(7)
    with pytest.raises(ValueError, match="verdict"):
        session.verdict("great")
    with pytest.raises(IndexError, match="0..3"):
        session.jump(9)
    session.score(3)
    with pytest.raises(ValueError, match="scale='1-5'"):
        ReviewSession(RECORDS, tmp_path / "r.json", scale="0-100")
    with pytest.raises(KeyError, match="response"):
        ReviewSession([{"instruction": "x", "output": "y"}], tmp_path / "s.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        ReviewSession(RECORDS, tmp_path / "broken.json")


def test_scale_conversion_and_summary_table(tmp_path):
    assert [to_100(s, "1-5") for s in (1, 3, 5)] == [0.0, 50.0, 100.0]
    assert to_100(70, "0-100") == 70.0
    session = ReviewSession(RECORDS, tmp_path / "r.csv", scale="0-100")
    session.score(70)
    session.verdict("partly")
    table = session.table()
    assert list(table["score_100"].iloc[:2]) [0] == 70.0
    summary = session.summary()
    assert summary.loc[0, "reviewed"] == 1 and summary.loc[0, "partly"] == 1


def test_widget_buttons_drive_and_save_the_session(tmp_path):
    path = tmp_path / "review.json"
    box = review_widget(ReviewSession(RECORDS, path))
    controls = box.controls
    assert "Record 1 of 4</b> · 0 of 4 reviewed" in box.header.value and box.progress.value == 0
    assert "Canberra." in box.body.value and "Sydney." in box.body.value
    controls["score"][2].click()
    # live progress
    assert "0 of 4 reviewed" not in box.header.value and "1 of 4 reviewed" in box.header.value
    assert box.progress.value == 1
    controls["verdict"]["wrong"].click()
    controls["note"].value = "close, but wrong city"
    controls["next"].click()
    controls["score"][5].click()
    controls["prev"].click()
    controls["unreviewed"].click()
    assert "Record 3 of 4</b> · 2 of 4 reviewed" in box.header.value and box.progress.value == 2
    controls["goto"].value = 4
    assert box.session.position == 3

    saved = json.loads(path.read_text())
    assert saved["position"] == 3
    restored = ReviewSession(RECORDS, path)
    assert restored.reviews[0] == {**restored.reviews[0], "score": 2, "verdict": "wrong",
                                   "note": "close, but wrong city"}
    assert restored.reviews[1]["score"] == 5
    assert restored.position == 3
    # the widget on the restored session shows the saved state
    box2 = review_widget(restored)
    box2.controls["prev"].click()
    box2.controls["prev"].click()
    box2.controls["prev"].click()
    assert box2.controls["note"].value == "close, but wrong city"
    assert box2.controls["score"][2].button_style == "danger"  # "2 · poor" is not shown as a success


def test_widget_colours_scores_by_meaning_and_keeps_its_buttons_in_place(tmp_path):
    long_input = "word " * 400 + "https://example.org/" + "x" * 300
    records = [dict(RECORDS[0]), dict(RECORDS[1], input=long_input), dict(RECORDS[3], response="cold " * 200)]
    box = review_widget(ReviewSession(records, tmp_path / "review.json"))
    styles = {}
    for value, button in box.controls["score"].items():
        button.click()
        styles[value] = button.button_style
        assert [b.button_style for v, b in box.controls["score"].items() if v != value] == [""] * 4
    assert styles == {1: "danger", 2: "danger", 3: "warning", 4: "success", 5: "success"}
    box.controls["verdict"]["partly"].click()
    assert box.controls["verdict"]["partly"].button_style == "warning"
    heights = set()
    for _ in records:  # every record, short or long, sits in the same fixed-height, scrolling area
        body = box.body.value
        assert "overflow-y:auto" in body and "overflow-x:hidden" in body and "overflow-wrap:anywhere" in body
        heights.add(body.split("height:")[1].split(";")[0])
        box.controls["next"].click()
    assert heights == {"26em"}
    unreviewed = box.controls["unreviewed"]
    # a share, never cut
    assert "%" in unreviewed.layout.width and unreviewed.layout.min_width == "max-content"


def test_generate_responses_with_real_tokenizer_and_generation(tmp_path):
    import torch

    from helpers.config import set_seed
    from helpers.models import TINY_GPT_CONFIG, GPTModel
    from helpers.tokenizers import get_tokenizer

    tok = get_tokenizer("gpt2")
    set_seed(123)
    model = GPTModel(TINY_GPT_CONFIG).eval()
    records = [{k: r[k] for k in ("instruction", "input", "output")} for r in RECORDS[:3]]
    out = generate_responses(model, tok, records, model_name="tiny-random", max_new_tokens=5, batch_size=2,
                             progress=False)
    assert len(out) == 3
    for rec, src in zip(out, records):
        assert rec["instruction"] == src["instruction"] and rec["output"] == src["output"]
        assert rec["model_name"] == "tiny-random" and rec["prompt_style"] == "alpaca"
        assert rec["generation"]["max_new_tokens"] == 5 and isinstance(rec["response"], str)
    # batched equals one at a time (greedy)
    single = generate_responses(model, tok, records[:1], model_name="tiny-random", max_new_tokens=5,
                                batch_size=1, progress=False)
    assert single[0]["response"] == out[0]["response"]
    path = save_responses(out, tmp_path / "responses.json")
    assert load_responses(path) == out
    assert record_key(out[0]) != record_key(out[1])
    (tmp_path / "bad.json").write_text(json.dumps([{"instruction": "x"}]))
    with pytest.raises(ValueError, match="record 0"):
        load_responses(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="generate_responses"):
        load_responses(tmp_path / "missing.json")
    del torch


def test_reference_scores_exact_match_and_word_overlap():
    assert normalize_answer("  The Capital is CANBERRA. ") == "the capital is canberra"
    assert token_f1("mice", "mice") == 1.0 and token_f1("Sydney.", "Canberra.") == 0.0
    # "the capital city of greece is athens" vs "the capital of greece is athens": 6 common words, P 6/7, R 1
    f1 = token_f1("The capital city of Greece is Athens.", "The capital of Greece is Athens.")
    assert f1 == pytest.approx(12 / 13)
    scores = reference_scores(RECORDS)
    assert (scores["n"], scores["exact"], scores["exact_match"]) == (4, 2, 0.5)  # mice and cold
    assert scores["mean_f1"] == pytest.approx((0 + 1 + 0.5 + 1) / 4)  # "500 m" vs "5000 m": one word of two
    assert scores["exact_ci95"][0] < 0.5 < scores["exact_ci95"][1]
    with pytest.raises(ValueError, match="at least one"):
        reference_scores([])


def test_auto_review_fills_only_unreviewed_records_and_says_so(tmp_path):
    session = ReviewSession(RECORDS, tmp_path / "review.json")
    session.score(1)  # a person's review of record 0 must survive
    assert auto_review(session) == 3
    table = session.table()
    assert list(table["score"]) == [1, 5, 3, 5]  # F1 1.0 -> 5, F1 0.5 -> 3
    assert list(table["verdict"].iloc[1:]) == ["correct", "partly", "correct"]
    assert all(note.startswith("auto:") for note in table["note"].iloc[1:])
    assert auto_review(ReviewSession(RECORDS, tmp_path / "review.json")) == 0  # saved, nothing left to fill


# ----------------------------------------------------------------------------- no review is ever lost

import gc  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import helpers.review as review  # noqa: E402


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_identical_records_keep_separate_reviews(tmp_path, suffix):
    records = [RECORDS[0], RECORDS[1], dict(RECORDS[0])]  # records 0 and 2: same instruction, input, response
    path = tmp_path / f"review{suffix}"
    session = ReviewSession(records, path)
    session.score(1)
    session.jump(2)
    session.score(4)
    session.note("the second copy")
    again = ReviewSession(records, path)
    assert [r["score"] for r in again.reviews] == [1, None, 4]
    assert again.reviews[2]["note"] == "the second copy" and again.position == 2
    moved = ReviewSession([RECORDS[1], *records[::2]], path)  # reordered: matched by content, in order
    assert [r["score"] for r in moved.reviews] == [None, 1, 4]


def test_a_review_file_saved_before_positions_were_used_still_loads(tmp_path):
    path = tmp_path / "old.json"  # as the first version wrote it: content keys, no other_reviews
    items = [{"key": record_key(r), "index": i, "score": s, "verdict": None, "note": "", "updated": None}
             for i, (r, s) in enumerate(zip(RECORDS, [2, None, 5, None]))]
    path.write_text(json.dumps({"format": "course-review-v1", "scale": "1-5", "position": 2,
                                "position_key": record_key(RECORDS[2]), "reviews": items}))
    session = ReviewSession(list(reversed(RECORDS)), path)
    assert [r["score"] for r in session.reviews] == [None, 5, None, 2] and session.position == 1


@pytest.mark.parametrize("name, content", [
    ("a.json", '{"a": 1}'), ("numbers.json", "[1, 2, 3]"), ("responses.json", json.dumps(RECORDS)),
    ("text.json", '"hello"'), ("null.json", "null"),
    ("shape.json", '{"format": "course-review-v1", "reviews": "oops"}'),
    ("items.json", '{"format": "course-review-v1", "reviews": [1, 2]}'),
    ("table.csv", "a,b\n1,2\n"),
])
def test_a_file_that_is_not_a_review_file_is_refused_and_never_overwritten(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(review.ReviewFileError, match=rf"{name}.*not a review file.*another path"):
        ReviewSession(RECORDS, path)
    assert issubclass(review.ReviewFileError, ValueError)
    assert path.read_text() == content


def _open_in_another_process(path) -> str:
    """Open a ReviewSession on ``path`` in a fresh Python; returns what it printed (or its error)."""
    code = ("import json, sys\nfrom helpers.review import ReviewSession\n"
            "try:\n    ReviewSession(json.loads(sys.argv[2]), sys.argv[1]).score(5)\n    print('opened')\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path), json.dumps(RECORDS)], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    return done.stdout + done.stderr


def test_a_second_process_is_refused_and_told_who_holds_the_file(tmp_path):
    import os

    path = tmp_path / "review.json"
    session = ReviewSession(RECORDS, path)
    session.score(2)
    saved = path.read_text()
    out = _open_in_another_process(path)
    assert out.startswith("ReviewFileLocked") and f"PID {os.getpid()}" in out, out
    assert path.read_text() == saved  # the refused session wrote nothing
    session.close()  # close() releases the lock ...
    assert _open_in_another_process(path).strip() == "opened"
    with pytest.raises(review.ReviewFileLocked, match="closed"):
        session.score(3)  # ... and a closed session writes no more
    session = ReviewSession(RECORDS, path)
    assert session.reviews[0]["score"] == 5  # the other process's review
    del session
    gc.collect()  # so does garbage collection
    assert _open_in_another_process(path).strip() == "opened"


def test_a_newer_session_in_the_same_process_takes_over_and_the_older_one_stops(tmp_path):
    path = tmp_path / "review.json"
    old = ReviewSession(RECORDS, path)  # a notebook cell ...
    old.score(2)
    new = ReviewSession(RECORDS, path)  # ... run again: the widget of the first run still holds `old`
    assert new.reviews[0]["score"] == 2
    new.score(4)
    with pytest.raises(review.ReviewFileLocked, match="newer ReviewSession"):
        old.score(1)  # would overwrite the newer session's review
    assert json.loads(path.read_text())["reviews"][0]["score"] == 4
    with pytest.raises(ValueError, match="scale"):
        ReviewSession(RECORDS, path, scale="0-100")  # a failed open takes nothing over
    new.score(3)


def test_saved_answers_are_reused_only_for_the_same_model_and_settings(tmp_path, capsys):
    from helpers.registry import load_model
    from helpers.review import saved_or_generated

    records = [{"instruction": f"Give the plural of {w}.", "input": "", "output": w + "s"}
               for w in ("cat", "dog", "cup")]
    loads = []

    def loader():  # counts how often the model had to be loaded
        loads.append(1)
        return load_model("tiny-gpt", device="cpu")

    path = tmp_path / "answers.json"
    kw = dict(model_name="tiny-gpt (base)", max_new_tokens=4, path=path, progress=False)
    first = saved_or_generated(loader, None, records[:2], **kw)
    assert len(loads) == 1 and "0 answers reused, 2 generated" in capsys.readouterr().out
    again = saved_or_generated(loader, None, records[:2], **kw)
    assert len(loads) == 1 and again == first  # nothing loaded, nothing generated
    more = saved_or_generated(loader, None, records, **kw)  # one new record: only it is generated
    assert "2 answers reused, 1 generated" in capsys.readouterr().out.splitlines()[-1] and more[:2] == first
    other_model = saved_or_generated(loader, None, records[:1], **{**kw, "model_name": "gemma-3-270m (base)"})
    other_length = saved_or_generated(loader, None, records[:1], **{**kw, "max_new_tokens": 6})
    other_style = saved_or_generated(loader, None, records[:1], **{**kw, "style": "phi3"})
    assert len(loads) == 5 and other_model[0]["model_name"] == "gemma-3-270m (base)"
    assert other_length[0]["generation"]["max_new_tokens"] == 6 and other_style[0]["prompt_style"] == "phi3"


def test_an_interrupted_generation_keeps_every_finished_batch(tmp_path, capsys, monkeypatch):
    """Ctrl-C during the third batch: the first two batches are on disk, and the next call generates only
    what is missing."""
    from helpers import review
    from helpers.registry import load_model

    records = [{"instruction": f"Give the plural of {w}.", "input": "", "output": w + "s"}
               for w in ("cat", "dog", "cup", "pen", "car")]
    path = tmp_path / "answers.json"
    kw = dict(model_name="tiny-gpt (base)", max_new_tokens=4, path=path, progress=False, batch_size=2)
    model, tok = load_model("tiny-gpt", device="cpu")
    real, calls = review.generate_responses, []

    def interrupted_on_the_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(review, "generate_responses", interrupted_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        review.saved_or_generated(model, tok, records, **kw)
    assert [r["instruction"] for r in review.load_responses(path)] == [r["instruction"] for r in records[:4]]
    monkeypatch.setattr(review, "generate_responses", real)
    capsys.readouterr()
    answers = review.saved_or_generated(model, tok, records, **kw)
    assert "4 answers reused, 1 generated" in capsys.readouterr().out and len(answers) == 5


# ------------------------------------------------------------------- hand labels (data/hand-labels.json)


def test_the_shipped_hand_labels_load_and_cover_both_models_on_test_records(capsys):
    from collections import Counter

    from helpers.data import is_holdout, load_course_data, split_records
    from helpers.review import HAND_LABEL_KINDS, VERDICTS, hand_label_scores, load_hand_labels

    labels = load_hand_labels()
    assert len(labels) >= 60
    pairs = Counter((lab["instruction"], lab["input"], lab["output"], lab["model"]) for lab in labels)
    assert max(pairs.values()) == 1, "every (record, model) answer is labelled once"
    models = Counter(lab["model"] for lab in labels)
    assert set(models) == {"base", "fine-tuned"} and models["base"] == models["fine-tuned"]
    records = Counter(key[:3] for key in pairs)
    assert set(records.values()) == {2}, "each record is labelled for both models"
    assert sum(lab["holdout"] for lab in labels) >= 10, "at least 10 out-of-family answers"
    # every labelled record is a test record, with its family and held-out flag
    test = {(r["instruction"], r.get("input") or "", r["output"]): r
            for r in split_records(load_course_data(), verbose=False).test}
    for i, lab in enumerate(labels):
        record = test.get((lab["instruction"], lab["input"], lab["output"]))
        assert record is not None, f"label {i} is not a test-split record"
        assert (lab["family"], lab["holdout"]) == (record["family"], is_holdout(record)), f"label {i}"
    scores = hand_label_scores(labels)
    assert len(scores) == len(labels) and set(scores) <= {0.0, 50.0, 100.0}
    assert [s == 100.0 for s in scores] == [lab["verdict"] == "correct" for lab in labels]
    with capsys.disabled():  # the counts, for the log (the data card lists them)
        for model in ("base", "fine-tuned"):
            ours = [lab for lab in labels if lab["model"] == model]
            verdicts = Counter(lab["verdict"] for lab in ours)
            kinds = Counter(lab["kind"] for lab in ours)
            print(f"\n{model:>10}: " + ", ".join(f"{v} {verdicts[v]}" for v in VERDICTS)
                  + " | " + ", ".join(f"{k} {kinds[k]}" for k in HAND_LABEL_KINDS if kinds[k]))


@pytest.mark.parametrize("field, value, message", [
    ("verdict", "mostly", "label 3 field 'verdict' is 'mostly'"),
    ("kind", "guess", "label 3 field 'kind' is 'guess'"),
    ("model", "gemma", "label 3 field 'model'"),
    ("holdout", "no", "label 3 field 'holdout' must be true or false"),
    ("response", None, "label 3 lacks the text field 'response'"),
])
def test_a_broken_hand_label_is_refused_naming_its_index_and_field(tmp_path, field, value, message):
    from helpers.review import HAND_LABELS_FILE, load_hand_labels

    data = json.loads(HAND_LABELS_FILE.read_text(encoding="utf-8"))
    if value is None:
        del data["labels"][3][field]
    else:
        data["labels"][3][field] = value
    path = tmp_path / "hand-labels.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_hand_labels(path)
    with pytest.raises(FileNotFoundError, match="missing.json does not exist"):
        load_hand_labels(tmp_path / "missing.json")
