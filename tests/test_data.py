"""helpers.data: loading, validation, prompt formatting, splitting and the leakage check (issue 2)."""

import hashlib
import http.server
import json
import threading
from functools import partial

import pytest

from helpers import data
from helpers.config import REPO_ROOT
from helpers.data import (
    COURSE_DATA,
    PROMPT_STYLES,
    DataFileMissing,
    RecordError,
    Splits,
    format_example,
    format_prompt,
    format_response,
    leakage_report,
    load_course_data,
    load_records,
    split_records,
    validate_records,
)

SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "instruction-data.json"

WITH_INPUT = {"instruction": "Convert to passive voice.", "input": "The cat chased the mouse.",
              "output": "The mouse was chased by the cat."}
WITHOUT_INPUT = {"instruction": "What is the capital of France?", "input": "",
                 "output": "The capital of France is Paris."}


# --- formatting ------------------------------------------------------------------------------------


def test_alpaca_with_input_exact():
    expected_prompt = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request."
        "\n\n### Instruction:\nConvert to passive voice."
        "\n\n### Input:\nThe cat chased the mouse."
        "\n\n### Response:\n"
    )
    assert format_prompt(WITH_INPUT, "alpaca") == expected_prompt
    assert format_response(WITH_INPUT, "alpaca") == "The mouse was chased by the cat."
    assert format_example(WITH_INPUT, "alpaca") == expected_prompt + "The mouse was chased by the cat."


def test_alpaca_without_input_has_no_input_section():
    expected = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request."
        "\n\n### Instruction:\nWhat is the capital of France?"
        "\n\n### Response:\nThe capital of France is Paris."
    )
    assert format_example(WITHOUT_INPUT) == expected  # alpaca is the default style
    missing_input = {"instruction": WITHOUT_INPUT["instruction"], "output": WITHOUT_INPUT["output"]}
    assert format_example(missing_input) == expected


def test_phi3_exact_with_and_without_input():
    assert format_prompt(WITH_INPUT, "phi3") == (
        "<|user|>\nConvert to passive voice.\nThe cat chased the mouse.\n\n<|assistant|>\n")
    assert format_example(WITH_INPUT, "phi3") == (
        "<|user|>\nConvert to passive voice.\nThe cat chased the mouse.\n\n<|assistant|>\nThe mouse "
        "was chased by the cat."
    )
    assert format_example(WITHOUT_INPUT, "phi3") == (
        "<|user|>\nWhat is the capital of France?\n\n<|assistant|>\nThe capital of France is Paris."
    )


def test_style_registry_and_errors():
    assert set(PROMPT_STYLES) == {"alpaca", "phi3"}
    for name, style in PROMPT_STYLES.items():
        assert format_prompt(WITH_INPUT, name).endswith(style.response_header)
    with pytest.raises(KeyError, match="alpaca"):
        format_prompt(WITH_INPUT, "chatml")


# --- loading ---------------------------------------------------------------------------------------


def test_load_json_and_jsonl(tmp_path):
    records = [WITH_INPUT, {"instruction": "Say hi.", "output": "Hi.", "family": "greeting"}]
    json_path = tmp_path / "d.json"
    json_path.write_text(json.dumps(records))
    jsonl_path = tmp_path / "d.jsonl"
    jsonl_path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    for path in (json_path, jsonl_path, str(jsonl_path)):
        loaded = load_records(path)
        assert loaded[0] == WITH_INPUT
        assert loaded[1] == {"instruction": "Say hi.", "input": "", "output": "Hi.", "family": "greeting"}


def test_missing_file_says_where_to_put_it(tmp_path):
    with pytest.raises(DataFileMissing) as info:
        load_records(tmp_path / "nowhere.json")
    assert str(tmp_path / "nowhere.json") in str(info.value) and "Place" in str(info.value)


def test_sha256_checked(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([WITH_INPUT]))
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_records(path, sha256=good) == [WITH_INPUT]
    with pytest.raises(ValueError, match="sha256"):
        load_records(path, sha256="0" * 64)


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": }\n]')
    with pytest.raises(RecordError, match=r"broken\.json[\s\S]*line 3"):
        load_records(path)
    path = tmp_path / "broken.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{oops\n')
    with pytest.raises(RecordError, match="line 2"):
        load_records(path)


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served (stands in for 'online')."""
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_downloaded_once_and_cached(local_server, tmp_path, monkeypatch):
    served, base = local_server
    cache = tmp_path / "cache"

    def fake_cache_dir(*parts):
        folder = cache.joinpath(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    monkeypatch.setattr(data, "cache_dir", fake_cache_dir)
    (served / "records.jsonl").write_text(json.dumps(WITH_INPUT) + "\n")
    digest = hashlib.sha256((served / "records.jsonl").read_bytes()).hexdigest()
    assert load_records(f"{base}/records.jsonl", sha256=digest) == [WITH_INPUT]
    assert len(list((cache / "data").glob("*records.jsonl"))) == 1
    (served / "records.jsonl").unlink()  # the server no longer has it: the cached copy is used
    assert load_records(f"{base}/records.jsonl") == [WITH_INPUT]
    with pytest.raises(DataFileMissing):
        load_records(f"{base}/records.jsonl", cache=False)


def test_unreachable_url_says_which_file_to_place_where(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "cache_dir", lambda *parts: tmp_path)
    url = "http://127.0.0.1:9/course/records.json"  # nothing listens on port 9
    with pytest.raises(DataFileMissing) as info:
        load_records(url)
    message = str(info.value)
    assert url in message and str(tmp_path) in message and "records.json" in message


# --- validation ------------------------------------------------------------------------------------


def test_validation_reports_every_bad_record():
    records = [
        WITH_INPUT,  # 0 fine
        {"input": "x", "output": "y"},  # 1 missing instruction
        {"instruction": "x", "output": 3},  # 2 output wrong type
        {"instruction": "   ", "output": "y"},  # 3 blank instruction
        {"instruction": "x", "input": ["a"], "output": ""},  # 4 input wrong type AND empty output
        "just a string",  # 5 not a record
        {"instruction": "x", "input": None, "output": "y", "extra": 1},  # 6 fine
    ]
    with pytest.raises(RecordError) as info:
        validate_records(records, source="planted.json")
    problems = {(index, field) for index, field, _ in info.value.problems}
    assert problems == {(1, "instruction"), (2, "output"), (3, "instruction"), (4, "input"), (4, "output"),
                        (5, "(record)")}
    message = str(info.value)
    assert "planted.json" in message and "6 problem(s)" in message and "Fix:" in message
    for needle in ("record 1, field 'instruction': missing key", "record 2, field 'output': wrong type",
                   "record 3, field 'instruction': empty", "record 4, field 'input': wrong type",
                   "record 4, field 'output': empty", "record 5"):
        assert needle in message


def test_validation_keeps_extra_keys_and_defaults_input():
    clean = validate_records([{"instruction": "x", "output": "y", "family": "f"},
                              {"instruction": "x", "input": None, "output": "y"}])
    assert clean == [{"instruction": "x", "input": "", "output": "y", "family": "f"},
                     {"instruction": "x", "input": "", "output": "y"}]


def test_not_a_list():
    with pytest.raises(RecordError, match="expected a list"):
        validate_records({"instruction": "x", "output": "y"})


# --- splitting -------------------------------------------------------------------------------------


def _toy_records(n, families=1):
    return [{"instruction": f"Task {i}", "input": "", "output": f"Answer {i}.", "family": f"f{i % families}"}
            for i in range(n)]


def test_split_sizes_and_book_order(capsys):
    records = _toy_records(1100)
    splits = split_records(records, shuffle=False)
    assert isinstance(splits, Splits)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (935, 55, 110)
    # the book: train first, then test, then validation, in file order
    assert splits.train == records[:935] and splits.test == records[935:1045] and splits.val == records[1045:]
    assert "train 935 (85.0 %)" in capsys.readouterr().out
    assert splits.describe() == "train 935 (85.0 %) | val 55 (5.0 %) | test 110 (10.0 %)"
    small = split_records(_toy_records(20), verbose=False)
    assert (len(small.train), len(small.val), len(small.test)) == (17, 1, 2)


def test_split_is_seeded_and_complete():
    records = _toy_records(200)
    before = list(records)
    a = split_records(records, seed=1, verbose=False)
    b = split_records(records, seed=1, verbose=False)
    c = split_records(records, seed=2, verbose=False)
    assert a == b and a != c
    assert records == before  # input untouched
    ids = [r["instruction"] for part in a for r in part]
    assert sorted(ids) == sorted(r["instruction"] for r in records)  # every record exactly once
    assert a.train != records[:170]  # actually shuffled


def test_stratified_split_puts_every_family_in_every_split():
    records = _toy_records(400, families=16)  # 25 per family: a plain 5 % val split would likely miss some
    splits = split_records(records, stratify="family", verbose=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (340, 20, 40)
    for part in splits:
        assert {r["family"] for r in part} == {f"f{i}" for i in range(16)}
    with pytest.raises(ValueError, match="fractions"):
        split_records(records, fractions=(0.8, 0.1, 0.2))


# --- leakage ---------------------------------------------------------------------------------------


def _varied_records():
    words = ["cat", "dog", "tree", "house", "river", "cloud", "apple", "train", "stone", "bird"]
    records = [{"instruction": f"What is the plural of '{w}'?", "input": "",
                "output": f"The plural of '{w}' is '{w}s'."}
               for w in words]
    records += [{"instruction": f"Write a sentence about a {a} and a {b}.", "input": "",
                 "output": f"The {a} looked at the {b} for a long time before it moved."}
                for a in words for b in words[:3] if a != b]
    return records


def test_leakage_finds_planted_exact_and_near_duplicates():
    records = _varied_records()
    train, test = records[:30], records[30:]
    clean = leakage_report({"train": train, "test": test})
    assert clean.ok and clean.exact == [] and clean.near == []  # same template, different content: fine

    long_record = {"instruction": "Summarise the following paragraph in one sentence.",
                   "input": "The committee met on Tuesday to discuss the new library budget, which had grown "
                            "by twelve percent since last year because of repairs to the "
                            "roof and the heating.",
                   "output": "The committee discussed a library budget that grew twelve percent for repairs."}
    near_copy = {**long_record, "output": long_record["output"].replace("twelve percent", "twelve per cent")}
    exact_copy = {**records[3]}
    val = [near_copy, exact_copy]
    report = leakage_report(Splits(train=train + [long_record], val=val, test=test))
    assert not report.ok
    assert report.exact == [("train", 3, "val", 1)]
    assert [(a, i, b, j) for a, i, b, j, _ in report.near] == [("train", 30, "val", 0)]
    assert report.near[0][4] >= 0.95
    assert report.to_dict()["ok"] is False and "train[30] ~ val[0]" in str(report)


def test_leakage_whitespace_and_case_count_as_exact():
    a = {"instruction": "Name a colour.", "input": "", "output": "Red is a colour."}
    b = {"instruction": "name a  colour.", "input": None, "output": "Red is a colour. "}
    report = leakage_report({"train": [a], "test": [b]})
    assert report.exact == [("train", 0, "test", 0)] and report.near == []


# --- the real data sets ----------------------------------------------------------------------------


def test_shared_book_data_loads_and_splits_like_the_book():
    if not SHARED_DATA.is_file():
        pytest.skip(f"{SHARED_DATA} not present (CI has it beside the repo)")
    records = load_records(SHARED_DATA,
                           sha256="7e09a9af353722ca15c18bc580f093f9c39d3178335a75177319cb1e1d163944")
    assert len(records) == 1100 and sum(bool(r["input"]) for r in records) == 325
    book = split_records(records, shuffle=False, verbose=False)
    assert (len(book.train), len(book.val), len(book.test)) == (935, 55, 110)
    assert book.test[0] == records[935] and book.val[-1] == records[-1]
    report = leakage_report(split_records(records, verbose=False))
    print(report)
    assert report.exact == []  # the book's file has no exact duplicate records


def test_course_data_loads():
    if not COURSE_DATA.is_file():
        pytest.skip(f"{COURSE_DATA} not written yet")
    records = load_course_data()
    assert len(records) >= 1100
    splits = split_records(records, verbose=False)
    assert sum(len(part) for part in splits) == len(records)


def test_a_json_object_is_not_a_list(tmp_path):
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"data": [WITH_INPUT]}, indent=2))
    with pytest.raises(RecordError, match=r"one JSON object with keys \['data'\]"):
        load_records(path)
    path.write_text(json.dumps(WITH_INPUT, indent=2))  # a single pretty-printed record is fine
    assert load_records(path) == [WITH_INPUT]


# --- held-out families ---------------------------------------------------------------------------------


def test_holdout_families_are_test_only_and_every_other_family_is_everywhere():
    from helpers.data import is_holdout

    records = _toy_records(600, families=12)  # f0 .. f11, 50 records each
    before = [dict(r) for r in records]
    splits = split_records(records, holdout_families=("f3", "f7"), verbose=False)
    # the other 500 records split 85 / 5 / 10, then all 100 held-out records join the test split
    assert (len(splits.train), len(splits.val), len(splits.test)) == (425, 25, 50 + 100)
    in_family = {f"f{i}" for i in range(12)} - {"f3", "f7"}
    for part in (splits.train, splits.val):
        assert {r["family"] for r in part} == in_family
    assert {r["family"] for r in splits.test} == in_family | {"f3", "f7"}
    held = [r for r in splits.test if is_holdout(r)]
    assert (sorted(r["instruction"] for r in held)
            == sorted(r["instruction"] for r in records if r["family"] in ("f3", "f7")))
    assert all(r["holdout"] is (r["family"] in ("f3", "f7")) for r in splits.test)
    assert not any(is_holdout(r) for r in splits.train + splits.val)
    ids = sorted(r["instruction"] for part in splits for r in part)
    assert ids == sorted(r["instruction"] for r in records)  # every record exactly once
    assert records == before and all("holdout" not in r for r in records)  # input and its dicts untouched
    # the split of the other families is the usual one
    plain = split_records([r for r in records if r["family"] not in ("f3", "f7")], verbose=False)
    assert splits.train == plain.train and splits.val == plain.val
    assert ([{k: v for k, v in r.items() if k != "holdout"} for r in splits.test if not is_holdout(r)]
            == plain.test)


def test_holdout_split_is_seeded_and_every_prefix_of_test_mixes_both_kinds():
    from helpers.data import is_holdout

    records = _toy_records(400, families=8)
    a = split_records(records, seed=1, holdout_families=["f0", "f5"], verbose=False)
    assert a == split_records(records, seed=1, holdout_families=["f0", "f5"], verbose=False)
    assert a != split_records(records, seed=2, holdout_families=["f0", "f5"], verbose=False)
    for n in range(3, len(a.test) + 1):  # a FAST slice of any size sees in- and out-of-family records
        kinds = {is_holdout(r) for r in a.test[:n]}
        assert kinds == {True, False}, (
            f"test[:{n}] holds only {'out' if True in kinds else 'in'}-of-family records")
    first_held = [r["family"] for r in a.test if is_holdout(r)][:2]
    assert sorted(first_held) == ["f0", "f5"]  # the held-out families alternate too


def test_holdout_defaults_and_errors(capsys):
    from helpers.data import HOLDOUT_FAMILIES, is_holdout

    names = list(HOLDOUT_FAMILIES) + ["other_a", "other_b", "other_c", "other_d"]
    records = [{"instruction": f"Task {i}", "input": "", "output": f"Answer {i}.",
                "family": names[i % len(names)]}
               for i in range(400)]
    auto = split_records(records)  # the course's families present: held out by default
    assert "held out" in capsys.readouterr().out
    assert {r["family"] for r in auto.train} == {"other_a", "other_b", "other_c", "other_d"}
    assert auto == split_records(records, holdout_families=HOLDOUT_FAMILIES, verbose=False)
    for off in (None, ()):
        plain = split_records(records, holdout_families=off, verbose=False)
        assert {r["family"] for r in plain.train} == set(names) and "holdout" not in plain.test[0]
    assert {r["family"] for r in split_records(records, shuffle=False, verbose=False).train} == set(names)
    assert not is_holdout({"family": "other_a"}) and is_holdout({"family": HOLDOUT_FAMILIES[0]})
    assert not is_holdout({"family": HOLDOUT_FAMILIES[0], "holdout": False})  # the split's mark wins
    with pytest.raises(ValueError, match="do not occur"):
        split_records(records, holdout_families=["no_such_family"], verbose=False)


def test_course_run_holds_out_families_and_fast_slices_mix_them(tmp_path):
    """helpers.course.load_splits: held-out families for the course data set only; FAST slices see both
    kinds."""
    from helpers.course import FinetuneSettings, load_splits
    from helpers.data import HOLDOUT_FAMILIES, is_holdout

    if not COURSE_DATA.is_file():
        pytest.skip(f"{COURSE_DATA} not written yet")
    records = load_course_data()
    full = load_splits(FinetuneSettings.for_mode(fast=False), verbose=False)
    assert full == split_records(records, seed=123, holdout_families=HOLDOUT_FAMILIES, verbose=False)
    assert not {r["family"] for r in full.train + full.val} & set(HOLDOUT_FAMILIES)
    assert {r["family"] for r in full.test if is_holdout(r)} == set(HOLDOUT_FAMILIES)
    assert leakage_report(full).ok
    fast = load_splits(FinetuneSettings.for_mode(fast=True), verbose=False)
    assert {is_holdout(r) for r in fast.test} == {True, False}
    assert not any(is_holdout(r) for r in fast.train + fast.val)
    for name in ("train", "val", "test"):  # FAST takes the first records of the same split
        part = getattr(fast, name)
        assert part == getattr(full, name)[: len(part)]
    # the same file by path is the course data set; any other file holds nothing out
    assert load_splits(FinetuneSettings.for_mode(fast=False, data=str(COURSE_DATA)), verbose=False) == full
    other = tmp_path / "mine.json"
    other.write_text(json.dumps(records))
    mine = load_splits(FinetuneSettings.for_mode(fast=False, data=str(other)), verbose=False)
    assert {r["family"] for r in mine.train} >= set(HOLDOUT_FAMILIES) and "holdout" not in mine.test[0]
