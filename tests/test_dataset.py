"""The course's own data set (data/course-instructions.json, notebook 01).

The file must be exactly what data/build_dataset.py writes, have the right shape and size, ask every task
family in at least five ways, hold no duplicate or near-duplicate whole records, split leak-free with the
held-out families in the test split only, and every answer that can be computed must be right. The checks
below re-derive each answer from the record's own text with rules and tables written here, independently
of the generator (it is imported only for the regeneration check and for its list of instruction templates,
which the records are matched against). ``test_checks_catch_corrupted_records`` proves that the checks fail.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import re
from collections import Counter, defaultdict
from fractions import Fraction

import numpy as np
import pytest

from helpers.config import REPO_ROOT

DATA_FILE = REPO_ROOT / "data" / "course-instructions.json"
BUILD_SCRIPT = REPO_ROOT / "data" / "build_dataset.py"
KEYS = ("instruction", "input", "output", "family")


@pytest.fixture(scope="module")
def records() -> list[dict]:
    assert DATA_FILE.exists(), f"{DATA_FILE} is missing; run: python data/build_dataset.py"
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("build_dataset", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------------
# Reproducible, well formed, big and varied enough
# --------------------------------------------------------------------------------------------------


def test_committed_file_is_exactly_the_generator_output(builder):
    expected = builder.render(builder.build_records())
    assert DATA_FILE.read_text(encoding="utf-8") == expected, (
        "data/course-instructions.json drifted from data/build_dataset.py; run `python "
        "data/build_dataset.py` and commit the result")
    assert builder.main(["--check"]) == 0


def test_schema_and_no_empty_fields(records):
    assert isinstance(records, list)
    for i, r in enumerate(records):
        assert isinstance(r, dict) and tuple(r) == KEYS, f"record {i}: keys {list(r)} != {list(KEYS)}"
        for key in KEYS:
            assert isinstance(r[key], str), f"record {i}: {key} is {type(r[key]).__name__}, not str"
            assert r[key] == r[key].strip(), f"record {i}: {key} has leading/trailing white space"
        for key in ("instruction", "output", "family"):
            assert r[key], f"record {i}: empty {key}"
        assert r["output"][-1] in ".?!", f"record {i}: output is not a finished sentence: {r['output']!r}"
        for key in ("instruction", "input", "output"):
            assert not re.search(r"(?<!\.)\.\.(?!\.)|  |\s[,?!]|\s\.(?!\.\.)", r[key]), (
                f"record {i}: stray punctuation in {key}: {r[key]!r}")


def test_course_loader_accepts_the_file(records):
    from helpers.data import load_records

    loaded = load_records(DATA_FILE)
    assert len(loaded) == len(records)


def test_size_families_and_input_share(records):
    families = Counter(r["family"] for r in records)
    assert 2000 <= len(records) <= 2600, f"{len(records)} records (fine-tuning time on a CPU grows with it)"
    assert len(families) >= 40, sorted(families)
    small = {f: n for f, n in families.items() if n < 20}
    assert not small, f"families with fewer than 20 records: {small}"
    assert max(families.values()) <= 0.05 * len(records), f"one family dominates: {families.most_common(3)}"
    share = sum(1 for r in records if r["input"]) / len(records)
    assert 0.30 <= share <= 0.45, f"share of records with input is {share:.3f}"


def template_pattern(template: str) -> re.Pattern:
    """'What is the plural of {a}?' -> a regex with one lazy group per slot."""
    parts = re.split(r"\{\w+\}", template)
    return re.compile("(.+?)".join(re.escape(p) for p in parts), flags=re.S)


def literal_words(template: str) -> list[str]:
    return re.findall(r"[a-z']+", re.sub(r"\{\w+\}", " ", template).lower())


def phrasings_used(records, builder) -> dict[str, dict[tuple[str, bool], int]]:
    """family -> {(instruction template, uses input): records}; every instruction must match a template."""
    used: dict[str, dict] = defaultdict(Counter)
    unmatched = []
    for family, phrasings in builder.PHRASINGS.items():
        # most specific template first, so a bare '{q}' only takes what nothing else matches
        ordered = sorted({(p.instruction, bool(p.input)) for p in phrasings},
                         key=lambda t: -len(re.sub(r"\{\w+\}", "", t[0])))
        patterns = [(t, template_pattern(t[0])) for t in ordered]
        for r in (r for r in records if r["family"] == family):
            match = next((t for t, pattern in patterns if t[1] == bool(r["input"])
                          and pattern.fullmatch(r["instruction"])),
                         None)
            if match is None:
                unmatched.append(f"{family}: {r['instruction']!r}")
            else:
                used[family][match] += 1
    assert not unmatched, f"{len(unmatched)} instructions match no template of their family: {unmatched[:5]}"
    return used


def test_every_family_is_asked_in_at_least_five_ways(records, builder):
    """Questions and imperatives, with and without an input field, short and long: per family."""
    assert sorted(builder.PHRASINGS) == sorted({r["family"] for r in records})
    used = phrasings_used(records, builder)
    for family, counts in used.items():
        templates = list(counts)
        assert len(templates) >= 5, f"{family} uses {len(templates)} phrasings: {templates}"
        words = {(tuple(literal_words(t)), has_input) for t, has_input in templates}
        assert len(words) == len(templates), f"{family}: two phrasings differ only in punctuation"
        assert {True, False} <= {has_input for _, has_input in templates}, (
            f"{family}: needs phrasings with and without input")
        questions = [r["instruction"].endswith("?") for r in records if r["family"] == family]
        assert any(questions) and not all(questions), f"{family}: needs both questions and imperatives"
        lengths = [len(literal_words(t)) for t, _ in templates]
        assert max(lengths) - min(lengths) >= 4, f"{family}: phrasings are all about as long ({lengths})"
        assert sum(n >= 2 for n in counts.values()) >= 5, (
            f"{family}: fewer than five phrasings used twice: {counts}")


def test_phrasing_check_fails_on_a_single_template(records, builder):
    one = [dict(r, instruction="What is the plural of 'cat'?", input="")
           for r in records if r["family"] == "plurals"]
    with pytest.raises(AssertionError):
        test_every_family_is_asked_in_at_least_five_ways(
            one + [r for r in records if r["family"] != "plurals"], builder)


def card_table(card: str) -> dict[str, tuple[int, int, int]]:
    rows = re.findall(r"^\| `(\w+)` \| ([\d,]+) \| ([\d,]+) \| (\d+) \|", card, flags=re.M)
    return {family: (int(n.replace(",", "")), int(k.replace(",", "")), int(p)) for family, n, k, p in rows}


def test_data_card_counts_match_the_file(records, builder):
    from helpers.data import HOLDOUT_FAMILIES

    card = (REPO_ROOT / "data" / "README.md").read_text(encoding="utf-8")
    used = phrasings_used(records, builder)
    in_file = {}
    for family in sorted({r["family"] for r in records}):
        members = [r for r in records if r["family"] == family]
        in_file[family] = (len(members), sum(bool(r["input"]) for r in members), len(used[family]))
    assert card_table(card) == in_file, (
        "data/README.md family table is out of date: update it from the file's counts")
    total = re.search(r"^\| \*\*total\*\* \| \*\*([\d,]+)\*\* \| \*\*([\d,]+)\*\* \|", card, flags=re.M)
    assert total and (total[1], total[2]) == (f"{len(records):,}",
                                              f"{sum(bool(r['input']) for r in records):,}")
    assert f"{len(records):,} records in {len(in_file)} task families" in card
    for family in HOLDOUT_FAMILIES:
        assert re.search(rf"^\| `{family}` \|.*\| held out \|", card, flags=re.M), (
            f"card must mark {family} as held out")


# --------------------------------------------------------------------------------------------------
# Duplicates and splits
# --------------------------------------------------------------------------------------------------


def whole_record(r: dict) -> str:
    text = " \n ".join(r[k] for k in ("instruction", "input", "output"))
    return re.sub(r"\s+", " ", text.lower()).strip()


def near_duplicates(texts: list[str], threshold: float = 0.95) -> list[tuple[int, int, float]]:
    """Pairs whose character 3-gram count vectors have cosine >= threshold (dense, exact integer dots)."""
    vocab: dict[str, int] = {}
    rows = []
    for text in texts:
        grams: dict[int, int] = {}
        for i in range(len(text) - 2):
            col = vocab.setdefault(text[i:i + 3], len(vocab))
            grams[col] = grams.get(col, 0) + 1
        rows.append(grams)
    matrix = np.zeros((len(texts), len(vocab)), dtype=np.float32)
    for row, grams in enumerate(rows):
        for col, n in grams.items():
            matrix[row, col] = n
    dots = matrix @ matrix.T
    norms = np.sqrt(np.diag(dots))
    cosine = dots / np.outer(norms, norms)
    hits = np.argwhere(np.triu(cosine >= threshold - 1e-6, k=1))
    return [(int(i), int(j), float(cosine[i, j])) for i, j in hits]


def test_no_exact_or_near_duplicate_records(records):
    texts = [whole_record(r) for r in records]
    first: dict[str, int] = {}
    exact = []
    for i, t in enumerate(texts):
        if t in first:
            exact.append((first[t], i))
        first.setdefault(t, i)
    assert not exact, f"exact duplicate records (index pairs): {exact[:10]}"
    near = near_duplicates(texts)
    assert not near, "near-duplicate records (3-gram cosine >= 0.95): " + "; ".join(
        f"{i} ~ {j} ({c:.3f}): {texts[i]!r} / {texts[j]!r}" for i, j, c in near[:5])


def test_near_duplicate_detector_finds_a_planted_pair(records):
    planted = copy.deepcopy(records[:50])
    longest = max(planted, key=lambda r: len(whole_record(r)))
    twin = dict(longest, output=longest["output"][:-1] + "!")  # one character changed
    assert near_duplicates([whole_record(r) for r in planted + [twin]])
    assert not near_duplicates([whole_record(r) for r in planted])


def test_consistency_check_catches_a_contradiction(records):
    assert not check_consistent_facts(records)
    some = next(r for r in records if r["family"] == "capitals" and r["output"].startswith("The capital of "))
    wrong = dict(some, instruction="Which city is the capital?",
                 output=some["output"].replace(" is ", " is not ", 1))
    assert check_consistent_facts(records + [wrong])


def test_seeded_split_holds_out_whole_families_and_does_not_leak(records):
    from helpers.data import HOLDOUT_FAMILIES, is_holdout, leakage_report, split_records

    families = sorted({r["family"] for r in records})
    assert set(HOLDOUT_FAMILIES) <= set(families) and len(HOLDOUT_FAMILIES) >= 4
    in_family = [f for f in families if f not in HOLDOUT_FAMILIES]
    # the course's default
    splits = split_records(records, fractions=(0.85, 0.05, 0.10), seed=123, verbose=False)
    assert splits == split_records(records, seed=123, holdout_families=HOLDOUT_FAMILIES, verbose=False)
    for name in ("train", "val", "test"):
        present = {r["family"] for r in getattr(splits, name)}
        assert not [f for f in in_family if f not in present], f"split {name} lacks in-family families"
        if name != "test":
            assert not present & set(HOLDOUT_FAMILIES), f"held-out families leaked into {name}"
    held = [r for r in records if r["family"] in HOLDOUT_FAMILIES]
    assert (sorted(map(whole_record, (r for r in splits.test if is_holdout(r))))
            == sorted(map(whole_record, held)))
    assert all(is_holdout(r) == (r["family"] in HOLDOUT_FAMILIES) for r in splits.test)
    rest = len(records) - len(held)
    assert (len(splits.train), len(splits.test) - len(held)) == (int(rest * 0.85), int(rest * 0.10))
    report = leakage_report(splits)
    assert report.ok, str(report)
    plain = split_records(records, seed=123, holdout_families=None, verbose=False)  # every family everywhere
    for part in plain:
        assert {r["family"] for r in part} == set(families)
    assert leakage_report(plain).ok


# --------------------------------------------------------------------------------------------------
# Correctness: every computable answer re-derived here
# --------------------------------------------------------------------------------------------------

NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"


def num(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def numbers_in(text: str) -> list[Fraction]:
    return [num(m) for m in re.findall(NUMBER, text)]


def subject_text(r: dict) -> str:
    """What the task is about: the input, else a quoted sentence, else the part after ': ' or after '? '."""
    if r["input"]:
        return r["input"]
    instruction = r["instruction"]
    quoted = re.search(r'"([^"]+)"', instruction)
    if quoted:
        return quoted[1] + "."
    for mark in (": ", "? "):
        if mark in instruction:
            return instruction.split(mark, 1)[1]
    return instruction


# -- arithmetic ------------------------------------------------------------------------------------

OPS = {"plus": lambda a, b: a + b, "minus": lambda a, b: a - b, "times": lambda a, b: a * b,
       "divided by": lambda a, b: a / b, "+": lambda a, b: a + b, "-": lambda a, b: a - b,
       "×": lambda a, b: a * b, "÷": lambda a, b: a / b}
ARITHMETIC_FORMS = [  # searched for anywhere in the instruction
    (rf"({NUMBER})% of ({NUMBER})", lambda m: num(m[1]) * num(m[2]) / 100),
    (rf"({NUMBER}) (plus|minus|times|divided by) ({NUMBER})", lambda m: OPS[m[2]](num(m[1]), num(m[3]))),
    (rf"^Add ({NUMBER}) and ({NUMBER})\.$", lambda m: num(m[1]) + num(m[2])),
    (rf"^Subtract ({NUMBER}) from ({NUMBER})\.$", lambda m: num(m[2]) - num(m[1])),
    (rf"^Multiply ({NUMBER}) by ({NUMBER})\.$", lambda m: num(m[1]) * num(m[2])),
    (rf"^Divide ({NUMBER}) by ({NUMBER})\.$", lambda m: num(m[1]) / num(m[2])),
]


def check_arithmetic(r: dict, facts: dict) -> str | None:
    if r["input"]:
        m = re.fullmatch(r"(\d+) ([+\-×÷]) (\d+)", r["input"])
        value = OPS[m[2]](int(m[1]), int(m[3])) if m else None
    else:
        value = None
        for pattern, compute in ARITHMETIC_FORMS:
            m = re.search(pattern, r["instruction"])
            if m:
                value = compute(m)
                break
    if value is None:
        return "cannot parse the calculation"
    found = numbers_in(r["output"])
    if not found or found[-1] != value:
        return f"answer should be {value}, output says {r['output']!r}"
    return None


# -- word problems ---------------------------------------------------------------------------------

WORD_PROBLEM_FORMS = [  # (instruction pattern, output pattern with the answer as <ans>, answer)
    (r"\w+ has (?P<a>\d+) \w+\. (He|She) buys (?P<b>\d+) more\. How many \w+ does (he|she) have now\?",
     r"\w+ has (?P<ans>\d+) \w+ now\.", lambda v: v["a"] + v["b"]),
    (r"\w+ had (?P<a>\d+) \w+ and gave (?P<b>\d+) of them to a friend\. "
     r"How many \w+ does (he|she) have left\?",
     r"\w+ has (?P<ans>\d+) \w+ left\.", lambda v: v["a"] - v["b"]),
    (r"A box holds (?P<a>\d+) \w+\. How many \w+ are in (?P<b>\d+) boxes\?",
     r"There are (?P<ans>\d+) \w+ in \d+ boxes\.", lambda v: v["a"] * v["b"]),
    (r"\w+ shares (?P<a>\d+) \w+ equally among (?P<b>\d+) friends\. How many \w+ does each friend get\?",
     r"Each friend gets (?P<ans>\d+) \w+\.", lambda v: Fraction(v["a"], v["b"])),
    (r"A ticket to the museum costs (?P<a>\d+) dollars\. How much do (?P<b>\d+) tickets cost\?",
     r"Together, \d+ tickets cost (?P<ans>\d+) dollars\.", lambda v: v["a"] * v["b"]),
    (r"\w+ reads (?P<a>\d+) pages every day\. How many pages does (he|she) read in (?P<b>\d+) days\?",
     r"\w+ reads (?P<ans>\d+) pages in \d+ days\.", lambda v: v["a"] * v["b"]),
    (r"A bus has (?P<a>\d+) passengers\. At the next stop, (?P<b>\d+) people get off and "
     r"(?P<c>\d+) people get on\. How many passengers are on the bus now\?",
     r"There are (?P<ans>\d+) passengers on the bus now\.", lambda v: v["a"] - v["b"] + v["c"]),
    (r"\w+ saved (?P<a>\d+) dollars in January and (?P<b>\d+) dollars in February\. "
     r"How much did (he|she) save in total\?",
     r"\w+ saved (?P<ans>\d+) dollars in total\.", lambda v: v["a"] + v["b"]),
    (r"A train travels at (?P<a>\d+) kilometers per hour\. How far does it travel in (?P<b>\d+) hours\?",
     r"The train travels (?P<ans>\d+) kilometers in \d+ hours\.", lambda v: v["a"] * v["b"]),
    (r"\w+ is (?P<a>\d+) years old\. How old will (he|she) be in (?P<b>\d+) years\?",
     r"\w+ will be (?P<ans>\d+) years old in \d+ years\.", lambda v: v["a"] + v["b"]),
    (r"A baker made (?P<a>\d+) muffins in the morning and (?P<b>\d+) muffins in the afternoon\. "
     r"How many muffins did the baker make\?",
     r"The baker made (?P<ans>\d+) muffins\.", lambda v: v["a"] + v["b"]),
    (r"A garden has (?P<a>\d+) rows of plants with (?P<b>\d+) plants in each row\. "
     r"How many plants are in the garden\?",
     r"There are (?P<ans>\d+) plants in the garden\.", lambda v: v["a"] * v["b"]),
    (r"\w+ ran (?P<a>\d+) laps on Monday and (?P<b>\d+) laps on Tuesday\. "
     r"How many laps did (he|she) run altogether\?",
     r"Altogether, \w+ ran (?P<ans>\d+) laps\.", lambda v: v["a"] + v["b"]),
    (r"There were (?P<a>\d+) birds on a fence\. Then (?P<b>\d+) flew away\. "
     r"How many birds are still on the fence\?",
     r"There are (?P<ans>\d+) birds still on the fence\.", lambda v: v["a"] - v["b"]),
    (r"A class of (?P<a>\d+) students splits into groups of (?P<b>\d+), with (?P<c>\d+) students left over\. "
     r"How many full groups are there\?", r"There are (?P<ans>\d+) full groups\.",
     lambda v: v["a"] // v["b"] if v["a"] % v["b"] == v["c"] else None),
    (r"\w+ buys (?P<b>\d+) notebooks that cost (?P<a>\d+) dollars each and pays with a "
     r"(?P<c>\d+)-dollar bill\. How much change does (he|she) get\?",
     r"\w+ gets (?P<ans>\d+) dollars in change\.", lambda v: v["c"] - v["a"] * v["b"]),
    (r"A library had (?P<a>\d+) books and received (?P<b>\d+) boxes of new books with (?P<c>\d+) "
     r"books in each box\. How many books does it have now\?",
     r"The library now has (?P<ans>\d+) books\.", lambda v: v["a"] + v["b"] * v["c"]),
    (r"\w+ picked (?P<a>\d+) strawberries and ate (?P<b>\d+) of them on the way home\. "
     r"How many strawberries were left\?",
     r"\w+ had (?P<ans>\d+) strawberries left\.", lambda v: v["a"] - v["b"]),
    (r"A water tank holds (?P<a>\d+) liters\. "
     r"If (?P<b>\d+) liters are used each day, how many liters are left after (?P<c>\d+) days\?",
     r"After \d+ days, (?P<ans>\d+) liters are left in the tank\.", lambda v: v["a"] - v["b"] * v["c"]),
    (r"Each of (?P<b>\d+) shelves holds (?P<a>\d+) jars\. How many jars are on the shelves in total\?",
     r"The shelves hold (?P<ans>\d+) jars in total\.", lambda v: v["a"] * v["b"]),
]


def check_word_problem(r: dict, facts: dict) -> str | None:
    problem = r["input"] or r["instruction"]
    for question, answer, compute in WORD_PROBLEM_FORMS:
        m = re.search(question, problem)
        if not m:
            continue
        values = {k: int(v) for k, v in m.groupdict().items() if v is not None}
        expected = compute(values)
        out = re.fullmatch(answer, r["output"])
        if expected is None or expected < 0 or Fraction(expected).denominator != 1:
            return f"the problem has no whole, non-negative answer ({expected})"
        if not out or int(out["ans"]) != expected:
            return f"answer should be {expected}, output says {r['output']!r}"
        return None
    return "no known word-problem form matches the instruction"


# -- unit conversions ------------------------------------------------------------------------------

UNIT_SIZES = {  # unit -> (quantity, size in that quantity's smallest unit here)
    "millimeter": ("length", 1), "centimeter": ("length", 10), "meter": ("length", 1000),
    "kilometer": ("length", 1_000_000), "inch": ("imperial length", 1), "foot": ("imperial length", 12),
    "yard": ("imperial length", 36), "gram": ("mass", 1), "kilogram": ("mass", 1000),
    "ounce": ("imperial mass", 1), "pound": ("imperial mass", 16), "milliliter": ("volume", 1),
    "liter": ("volume", 1000), "quart": ("imperial volume", 1), "gallon": ("imperial volume", 4),
    "second": ("time", 1), "minute": ("time", 60), "hour": ("time", 3600), "day": ("time", 86400),
    "week": ("time", 604800), "month": ("calendar", 1), "year": ("calendar", 12),
    "cent": ("money", 1), "dollar": ("money", 100),
}
UNIT_PLURALS = {"foot": "feet", "inch": "inches"}


def unit_form(unit: str, value: Fraction) -> str:
    return unit if value == 1 else UNIT_PLURALS.get(unit, unit + "s")


def parse_unit(name: str) -> str | None:
    for unit in UNIT_SIZES:
        if name in (unit, unit_form(unit, Fraction(2))):
            return unit
    return None


def check_unit_conversion(r: dict, facts: dict) -> str | None:
    m = re.fullmatch(r"Convert (-?\d+) degrees Celsius to Fahrenheit\.", r["instruction"])
    if m:
        c = Fraction(int(m[1]))
        expected = f"{m[1]} degrees Celsius is {c * 9 / 5 + 32} degrees Fahrenheit."
        return None if r["output"] == expected else f"expected {expected!r}"
    m = re.fullmatch(r"What is (-?\d+) degrees Fahrenheit in degrees Celsius\?", r["instruction"])
    if m:
        c = (Fraction(int(m[1])) - 32) * 5 / 9
        if c.denominator != 1:
            return "the Celsius value is not a whole number"
        expected = f"{m[1]} degrees Fahrenheit is {c} degrees Celsius."
        return None if r["output"] == expected else f"expected {expected!r}"
    source = re.search(rf"({NUMBER}) ([a-z]+)", r["input"] or r["instruction"])
    if not source:
        return "cannot find the quantity"
    rest = r["instruction"] if r["input"] else r["instruction"].replace(source[0], " ", 1)
    targets = [w for w in re.findall(r"[a-z]+", rest) if parse_unit(w)]
    if len(targets) != 1:
        return f"cannot find one target unit in {r['instruction']!r}"
    value, unit_from, unit_to = num(source[1]), parse_unit(source[2]), parse_unit(targets[0])
    if unit_from is None or unit_to is None or UNIT_SIZES[unit_from][0] != UNIT_SIZES[unit_to][0]:
        return f"incompatible or unknown units {source[2]!r} -> {targets[0]!r}"
    if unit_form(unit_from, value) != source[2]:
        return f"'{source[1]} {source[2]}' uses the wrong singular/plural form"
    result = value * UNIT_SIZES[unit_from][1] / UNIT_SIZES[unit_to][1]
    out = re.fullmatch(rf"({NUMBER}) ([a-z]+) is ({NUMBER}) ([a-z]+)\.", r["output"])
    if not out:
        return f"output {r['output']!r} is not '<x> <unit> is <y> <unit>.'"
    if num(out[1]) != value or out[2] != source[2]:
        return "output restates a different quantity"
    if num(out[3]) != result:
        return f"{value} {source[2]} is {float(result)} {unit_form(unit_to, result)}, output says {out[3]}"
    if out[4] != unit_form(unit_to, result):
        return f"output unit should be {unit_form(unit_to, result)!r}"
    return None


# -- plurals, past tenses, verb forms ----------------------------------------------------------------

IRREGULAR_PLURALS = {"mouse": "mice", "louse": "lice", "goose": "geese", "tooth": "teeth", "foot": "feet",
                     "man": "men", "woman": "women", "child": "children", "person": "people", "ox": "oxen",
                     "sheep": "sheep", "deer": "deer", "moose": "moose", "fish": "fish"}
F_TO_VES = ["leaf", "knife", "wife", "wolf", "half", "shelf", "loaf", "calf", "life", "thief", "elf", "scarf"]
O_TAKES_ES = ["potato", "tomato", "hero", "echo", "veto", "torpedo"]


def is_vowel(ch: str) -> bool:
    return ch in "aeiou"


def plural_of(noun: str) -> str:
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun in F_TO_VES:
        return re.sub(r"fe?$", "ves", noun)
    if noun in O_TAKES_ES or noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and not is_vowel(noun[-2]):
        return noun[:-1] + "ies"
    return noun + "s"


IRREGULAR_PAST = {
    "go": "went", "eat": "ate", "see": "saw", "take": "took", "write": "wrote", "run": "ran", "swim": "swam",
    "sing": "sang", "drink": "drank", "begin": "began", "give": "gave", "come": "came", "make": "made",
    "buy": "bought", "bring": "brought", "think": "thought", "teach": "taught", "catch": "caught",
    "fight": "fought", "sell": "sold", "tell": "told", "find": "found", "hold": "held", "stand": "stood",
    "speak": "spoke", "break": "broke", "choose": "chose", "drive": "drove", "ride": "rode", "fly": "flew",
    "draw": "drew", "grow": "grew", "know": "knew", "throw": "threw", "fall": "fell", "feel": "felt",
    "keep": "kept", "sleep": "slept", "leave": "left", "meet": "met", "send": "sent", "spend": "spent",
    "build": "built", "lose": "lost", "pay": "paid", "say": "said", "sit": "sat", "forget": "forgot",
    "win": "won", "hear": "heard", "cut": "cut", "put": "put", "hit": "hit", "hide": "hid", "wear": "wore",
    "steal": "stole", "freeze": "froze", "shake": "shook", "do": "did", "have": "had", "dig": "dug",
    "feed": "fed", "lend": "lent", "read": "read", "get": "got", "set": "set",
}
STRESSED_LAST_SYLLABLE = ["admit", "prefer", "occur", "refer", "permit", "regret", "commit",
                          "control", "begin"]


def syllables(word: str) -> int:
    return len(re.findall(r"[aeiouy]+", word.rstrip("e"))) or 1


def past_of(verb: str) -> str:
    if verb in IRREGULAR_PAST:
        return IRREGULAR_PAST[verb]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and not is_vowel(verb[-2]):
        return verb[:-1] + "ied"
    cvc = (len(verb) >= 3 and not is_vowel(verb[-3]) and is_vowel(verb[-2]) and not is_vowel(verb[-1])
           and verb[-1] not in "wxy")
    if cvc and (syllables(verb) == 1 or verb in STRESSED_LAST_SYLLABLE):
        return verb + verb[-1] + "ed"
    return verb + "ed"


def third_person_of(verb: str) -> str:
    special = {"have": "has", "go": "goes", "do": "does"}
    if verb in special:
        return special[verb]
    if verb.endswith(("s", "x", "z", "ch", "sh")):
        return verb + "es"
    if verb.endswith("y") and not is_vowel(verb[-2]):
        return verb[:-1] + "ies"
    return verb + "s"


def check_word_form(r: dict, what: str, rule) -> str | None:
    word = r["input"] or (re.search(r"'([a-z]+)'", r["instruction"]) or [None, None])[1]
    if not word:
        return f"cannot find the word in {r['instruction']!r}"
    m = re.fullmatch(rf"The (?:{what}) (?:form )?of '([a-z]+)' is '([a-z]+)'\.", r["output"])
    if not m or m[1] != word:
        return f"output {r['output']!r} does not answer for {word!r}"
    if m[2] != rule(word):
        return f"{what} of {word!r} should be {rule(word)!r}, output says {m[2]!r}"
    return None


# -- ordering, counting, numbers -------------------------------------------------------------------


def check_number_sorting(r: dict, facts: dict) -> str | None:
    given = [int(x) for x in re.findall(r"\d+", r["input"] or r["instruction"])]
    descending = any(w in r["instruction"] for w in ("largest to smallest", "descending", "decreasing"))
    expected = sorted(given, reverse=descending)
    m = re.fullmatch(r"From (?:smallest to largest|largest to smallest), the numbers are: "
                     r"([\d, ]+)\.", r["output"])
    if len(given) < 3 or not m or [int(x) for x in m[1].split(", ")] != expected:
        return f"expected {expected}, output says {r['output']!r}"
    if ("largest to smallest" in r["output"]) != descending:
        return "output names the wrong order"
    return None


def check_alphabetical(r: dict, facts: dict) -> str | None:
    words = subject_text(r).rstrip(".?").split(", ")
    m = re.fullmatch(r"(?:In alphabetical order, the words are|In a dictionary, the words appear in this "
                     r"order): ([a-z, ]+)\.", r["output"])
    if len(words) < 3 or not m or m[1].split(", ") != sorted(words, key=str.lower):
        return f"expected {sorted(words)}, output says {r['output']!r}"
    return None


def check_counting(r: dict, facts: dict) -> str | None:
    text = r["input"] or (r["instruction"].split(": ", 1)[1] if ": " in r["instruction"] else "")
    if " " in text:
        n = len(text.split())
        return None if r["output"] == f"The sentence has {n} words." else f"the sentence has {n} words"
    word = (re.search(r"'([a-z]+)'", r["instruction"]) or [None, r["input"]])[1]
    if "vowel" in r["instruction"]:
        n, noun = sum(ch in "aeiou" for ch in word), "vowel"
    else:
        n, noun = len(word), "letter"
    expected = f"The word '{word}' has {n} {noun}{'' if n == 1 else 's'}."
    return None if r["output"] == expected else f"expected {expected!r}"


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def check_prime_answer(n: int, output: str) -> str | None:
    if is_prime(n):
        return None if output == f"Yes, {n} is a prime number." else f"{n} is prime"
    m = re.fullmatch(rf"No, {n} is not a prime number because it is divisible by (\d+)\.", output)
    if not m or not (1 < int(m[1]) < n and n % int(m[1]) == 0):
        return f"{n} is not prime; output says {output!r}"
    return None


def check_number_facts(r: dict, facts: dict) -> str | None:
    text, output = r["instruction"] + " " + r["input"], r["output"]
    if re.search(r"\bodd\b.*\beven\b", text):
        n = int(re.search(r"\d+", text)[0])
        expected = f"{n} is an {'even' if n % 2 == 0 else 'odd'} number."
        return None if output == expected else f"expected {expected!r}"
    if "prime" in text:
        return check_prime_answer(int(re.search(r"\d+", text)[0]), output)
    m = re.fullmatch(r"Which number is (larger|smaller), (\d+) or (\d+)\?", r["instruction"])
    if m:
        a, b = int(m[2]), int(m[3])
        big, small = max(a, b), min(a, b)
        expected = f"{big} is larger than {small}." if m[1] == "larger" else f"{small} is smaller than {big}."
        return None if output == expected else f"expected {expected!r}"
    return "unknown number question"


# -- grammar and voice -----------------------------------------------------------------------------

AN_EXCEPTIONS = {"hour": "an", "honest": "an", "honorary": "an", "heir": "an", "uniform": "a",
                 "european": "a", "useful": "a", "university": "a", "unicorn": "a", "one": "a"}


def article_for(word: str) -> str:
    return AN_EXCEPTIONS.get(word.lower(), "an" if is_vowel(word[0].lower()) else "a")


def check_grammar(r: dict, facts: dict) -> str | None:
    right_text = r["output"].split("The correct sentence is: ", 1)[-1]
    wrong, right = subject_text(r).split(" "), right_text.split(" ")
    if len(wrong) != len(right):
        return "the correction changes the number of words"
    changed = [i for i, (a, b) in enumerate(zip(wrong, right)) if a != b]
    if len(changed) != 1:
        return f"expected exactly one corrected word, found {len(changed)}"
    i = changed[0]
    before, after = wrong[i], right[i]
    if before in ("a", "an") and after in ("a", "an"):
        return None if after == article_for(right[i + 1]) else f"'{after} {right[i + 1]}' is wrong"
    if before == "was" and after == "were":
        return None if right[i - 1].endswith(("s", "children", "people")) else "'were' needs a plural subject"
    if after == third_person_of(before):
        return None
    return f"{before!r} -> {after!r} is not a known correction"


PARTICIPLES = {"wrote": "written", "broke": "broken", "drew": "drawn", "chose": "chosen", "took": "taken",
               "built": "built", "found": "found", "caught": "caught", "sold": "sold", "fed": "fed",
               "read": "read", "ate": "eaten", "gave": "given"}


def check_voice(r: dict, facts: dict) -> str | None:
    target = re.search(r"(?:in|into|to) (?:the )?(passive|active) voice", r["instruction"])
    if not target:
        return "the instruction names no voice to change to"
    source = subject_text(r)
    active, passive = (source, r["output"]) if target[1] == "passive" else (r["output"], source)
    p = re.fullmatch(r"(?P<obj>.+) (?P<aux>was|were) (?P<part>\w+) by (?P<agent>.+)\.", passive)
    if not p:
        return f"{passive!r} is not a passive sentence"
    obj, agent = p["obj"][0].lower() + p["obj"][1:], p["agent"]
    m = re.fullmatch(rf"{re.escape(agent[0].upper() + agent[1:])} (?P<past>\w+) {re.escape(obj)}\.", active)
    if not m:
        return f"{active!r} does not have the same agent and object as {passive!r}"
    if p["part"] != PARTICIPLES.get(m["past"], m["past"] if m["past"].endswith("ed") else None):
        return f"participle of {m['past']!r} should not be {p['part']!r}"
    singular = obj.startswith(("a ", "an ")) or not obj.endswith("s")
    if p["aux"] != ("was" if singular else "were"):
        return f"{obj!r} needs {'was' if singular else 'were'}"
    return None


# -- questions, negatives and the future tense from one statement --------------------------------------

AUXILIARIES = ("is", "are", "was", "were", "can", "will", "has", "have")
CAPITALIZED_DETERMINERS = ("The", "My", "Your", "Our", "Their", "His", "Her", "They", "We", "She", "He")


def is_participle(word: str) -> bool:
    return word.endswith(("ed", "en")) or word in PARTICIPLES.values()


def statement_words(r: dict) -> list[str] | None:
    text = subject_text(r)
    return text[:-1].split() if text.endswith(".") else None


def check_question(r: dict, facts: dict) -> str | None:
    s, q = statement_words(r), r["output"]
    if not s or not q.endswith("?"):
        return "needs a statement ending in '.' and a question ending in '?'"
    q = q[:-1].split()
    aux = q[0].lower()
    for k in range(1, min(4, len(s) - 1)):
        subject, verb, rest = s[:k], s[k], s[k + 1:]
        expected_subject = ([subject[0].lower() if subject[0] in CAPITALIZED_DETERMINERS else subject[0]]
                            + subject[1:])
        if q[1:1 + k] != expected_subject:
            continue
        if verb == aux and aux in AUXILIARIES and q[1 + k:] == rest:
            if aux in ("has", "have") and not is_participle(rest[0]):
                return f"'{aux}' is the main verb here: the question needs do-support"
            return None
        base = q[1 + k] if len(q) > 1 + k else ""
        if q[2 + k:] == rest and ((aux == "does" and verb == third_person_of(base) != base) or
                                  (aux == "do" and verb == base) or (aux == "did" and verb == past_of(base))):
            return None
    return f"{q} is not the yes/no question of {s}"


def check_negation(r: dict, facts: dict) -> str | None:
    s, n = statement_words(r), r["output"]
    if not s or not n.endswith("."):
        return "needs two sentences ending in '.'"
    n = n[:-1].split()
    d = next((i for i, (a, b) in enumerate(zip(s, n)) if a != b), None)
    if d is None or d == 0:
        return "the negative sentence must keep the subject and change the verb"
    if n[d] == "not" and s[d - 1] in AUXILIARIES and n[d + 1:] == s[d:]:
        if s[d - 1] in ("has", "have") and not is_participle(s[d]):
            return f"'{s[d - 1]}' is the main verb here: the negative needs 'does not have'"
        return None
    if s[d] == "can" and n[d] == "cannot" and n[d + 1:] == s[d + 1:]:
        return None
    if len(n) > d + 2 and n[d] in ("does", "do", "did") and n[d + 1] == "not" and n[d + 3:] == s[d + 1:]:
        base, verb = n[d + 2], s[d]
        if ((n[d] == "does" and verb == third_person_of(base) != base) or (n[d] == "do" and verb == base)
                or (n[d] == "did" and verb == past_of(base))):
            return None
    return f"{n} is not the negative of {s}"


TIME_TO_FUTURE = [("yesterday", "tomorrow"), ("last night", "tomorrow night"), ("last ", "next ")]


def check_future(r: dict, facts: dict) -> str | None:
    s, f = statement_words(r), r["output"]
    if not s or not f.endswith("."):
        return "needs two sentences ending in '.'"
    f = f[:-1].split()
    d = next((i for i, (a, b) in enumerate(zip(s, f)) if a != b), None)
    if d is None or d == 0 or f[d] != "will" or len(f) < d + 2:
        return f"{f} does not put 'will' after the subject of {s}"
    verb, base = s[d], f[d + 1]
    if verb in ("is", "are"):
        ok = base == "be"
    else:
        ok = verb in (base, third_person_of(base), past_of(base)) and base not in AUXILIARIES
    rest = " ".join(s[d + 1:])
    if verb == past_of(base) != base:
        for before, after in TIME_TO_FUTURE:
            rest = rest.replace(before, after)
    if not ok or " ".join(f[d + 2:]) != rest:
        return f"{f} is not the future form of {s} (expected ... will {base} {rest})"
    return None


# -- parts of speech -----------------------------------------------------------------------------------

LEXICON = {  # the words the sentences use, tagged by hand here
    **dict.fromkeys(["hungry", "small", "old", "tired", "happy", "brown", "young", "clever", "lazy",
                     "noisy"], "adjective"),
    **dict.fromkeys(["cat", "dog", "rabbit", "fox", "puppy", "kitten", "squirrel", "mouse", "field", "garden",
                     "river", "fence", "wall", "tree", "fire", "door", "gate", "pond", "park", "bed", "shed",
                     "window"], "noun"),
    **dict.fromkeys(["ran", "jumped", "slept", "waited", "played", "walked", "hid", "sat"], "verb"),
    **dict.fromkeys(["quickly", "happily", "suddenly", "easily", "peacefully", "soundly", "quietly",
                     "patiently", "calmly", "noisily", "slowly", "carefully"], "adverb"),
    **dict.fromkeys(["across", "through", "along", "over", "onto", "under", "near", "by", "in",
                     "behind", "on"], "preposition"),
    "the": "article",
}


def check_parts_of_speech(r: dict, facts: dict) -> str | None:
    sentence = subject_text(r)
    words = sentence.rstrip(".").lower().split()
    unknown = [w for w in words if w not in LEXICON]
    if unknown:
        return f"words not in the test's lexicon: {unknown}"
    m = re.fullmatch(r"(?:In this sentence|Here), '(\w+)' is (a|an) (\w+)\.", r["output"])
    if m:
        word = m[1]
        asked = re.search(r"'(\w+)'", r["instruction"])[1]
        if word != asked or word not in words:
            return f"the answer is about {word!r}, not the word asked about ({asked!r})"
        if m[3] != LEXICON[word] or m[2] != article_for(m[3]):
            return f"{word!r} is {article_for(LEXICON[word])} {LEXICON[word]}, output says {m[2]} {m[3]}"
        return None
    m = re.fullmatch(r"The (\w+) (?:in this sentence )?is '(\w+)'\.", r["output"])
    asked = re.search(r"is an? (\w+)\?|Find the (\w+) in", r["instruction"])
    if m and asked:
        pos = asked[1] or asked[2]
        candidates = [w for w in words if LEXICON[w] == pos]
        if m[1] != pos or candidates != [m[2]]:
            return f"the {pos} of {sentence!r} is {candidates}, output says {m[2]!r}"
        return None
    return f"cannot parse {r['output']!r}"


# -- true or false --------------------------------------------------------------------------------------


def claim_truth(claim: str, facts: dict) -> tuple[bool, str] | None:
    """(is the claim true, the true statement) for claims the test can decide, else None."""
    m = re.fullmatch(r"The capital of (.+) is (.+)\.", claim)
    if m and ("capital", m[1]) in facts:
        truth = facts[("capital", m[1])]
        return m[2] == truth, f"The capital of {m[1]} is {truth}."
    m = re.fullmatch(r"The chemical symbol for (\w+) is (\w+)\.", claim)
    if m and ("element", m[1]) in facts:
        truth = facts[("element", m[1])]
        return m[2] == truth, f"The chemical symbol for {m[1]} is {truth}."
    m = re.fullmatch(r"(\d+) is a prime number\.", claim)
    if m:
        return is_prime(int(m[1])), "prime"
    m = re.fullmatch(r"(\d+) times (\d+) is (\d+)\.", claim)
    if m:
        a, b = int(m[1]), int(m[2])
        return a * b == int(m[3]), f"{a} times {b} is {a * b}."
    return None


def check_true_false(r: dict, facts: dict) -> str | None:
    m = re.fullmatch(r"Is it true that (.+)\?", r["instruction"])
    claim = m[1][0].upper() + m[1][1:] + "." if m else subject_text(r)
    verdict, _, statement = r["output"].partition(". ")
    if verdict not in ("True", "False"):
        return f"the answer must start with 'True.' or 'False.': {r['output']!r}"
    if verdict == "True" and statement != claim:
        return "a true claim must be repeated as it stands"
    if verdict == "False" and (statement == claim or not statement.endswith(".")):
        return "a false claim needs a corrected statement"
    decided = claim_truth(claim, facts)
    if decided is None:
        return None  # hand-written facts: the shape is checked, the content was checked by hand
    true, fact = decided
    if (verdict == "True") != true:
        return f"the claim {claim!r} is {'true' if true else 'false'}"
    if verdict == "False":
        if fact == "prime":
            n = int(claim.split()[0])
            m = re.fullmatch(rf"{n} is not a prime number because it is divisible by (\d+)\.", statement)
            return (None if m and 1 < int(m[1]) < n and n % int(m[1]) == 0
                    else f"wrong correction {statement!r}")
        if statement != fact:
            return f"the correction should be {fact!r}"
    return None


# -- categories: odd one out, classify, examples -------------------------------------------------------


def category_claims(r: dict) -> tuple[list[tuple[str, str]], str | None]:
    """(item, category) pairs the record states, and a structural problem if any."""
    items_text = subject_text(r).rstrip(".?")
    if r["family"] == "odd_one_out":
        given = items_text.split(", ")
        m = re.fullmatch(r"The odd one out is '([\w ]+)': (.+) are ([\w ]+), but '\1' is an? "
                         r"([\w ]+)\.", r["output"])
        if not m:
            return [], f"cannot parse {r['output']!r}"
        odd, same = m[1], re.findall(r"'([\w ]+)'", m[2])
        if sorted(same + [odd]) != sorted(given) or len(same) < 3:
            return [], f"the answer names {same + [odd]}, the list is {given}"
        single = m[4].removeprefix("piece of ")
        return [(w, m[3]) for w in same] + [(odd, single + "s")], None
    if r["family"] == "categorize":
        asked = re.search(r"into ([\w ]+) and ([\w ]+)[.:]|groups: ([\w ]+) or ([\w ]+)\."
                          r"|are ([\w ]+) and which are ([\w ]+):|split it into ([\w ]+) and ([\w ]+)\?"
                          r"|categories, ([\w ]+) or ([\w ]+),", r["instruction"])
        categories = [c for c in (asked.groups() if asked else ()) if c]
        if r["input"]:
            items_text = r["input"]
        elif "I have a list: " in r["instruction"]:
            items_text = r["instruction"].split("I have a list: ")[1].split(". Can you")[0]
        given = items_text.split(", ")
        groups = re.findall(r"([A-Z][\w ]*): ([^.]+)\.", r["output"])
        named = [g[0][0].lower() + g[0][1:] for g in groups]
        listed = [w for _, words in groups for w in words.split(", ")]
        if named != categories or sorted(listed) != sorted(given):
            return [], f"groups {named} / {listed} do not sort {given} into {categories}"
        return [(w, name) for name, (_, words) in zip(named, groups) for w in words.split(", ")], None
    m = re.fullmatch(r"(?:Here are (\w+) ([\w ]+): |(\w+) examples of ([\w ]+) are )(.+)\.", r["output"])
    asked = re.search(r"(two|three|four|five)", r["instruction"])
    if not m:
        return [], f"cannot parse {r['output']!r}"
    count, category = (m[1] or m[3]).lower(), m[2] or m[4]
    examples = re.split(r", | and ", m[5])
    wanted = r["input"] or (category if f" {category}" in r["instruction"]
                            else "the category the instruction names")
    if (category != wanted or not asked or count != asked[1]
            or len(examples) != ["two", "three", "four", "five"].index(count) + 2):
        return [], f"asked for {asked[1] if asked else '?'} {wanted}, answered {count} {category}: {examples}"
    if len(set(examples)) != len(examples):
        return [], "an example is repeated"
    return [(w, category) for w in examples], None


def category_map(records: list[dict]) -> dict[str, Counter]:
    """item (singular; examples are matched to it through plural_of) -> Counter of categories claimed."""
    claims: dict[str, Counter] = defaultdict(Counter)
    singular_claims = [(w, c) for r in records if r["family"] in ("odd_one_out", "categorize")
                       for w, c in category_claims(r)[0]]
    for w, c in singular_claims:
        claims[w][c] += 1
    by_plural = {plural_of(w): w for w in claims}
    for r in records:
        if r["family"] == "category_examples":
            for w, c in category_claims(r)[0]:
                claims[by_plural.get(w, w)][c] += 1
    return claims


def check_categories(r: dict, facts: dict) -> str | None:
    pairs, problem = category_claims(r)
    if problem:
        return problem
    by_plural = {plural_of(w): w for w in facts["categories"]}
    words = [(word if r["family"] != "category_examples" else by_plural.get(word, word), category)
             for word, category in pairs]
    mine = Counter(words)
    for word, category in words:
        others = (facts["categories"].get(word, Counter())
                  - Counter({c: n for (w, c), n in mine.items() if w == word}))
        if others and others.most_common(1)[0][0] != category:  # the other records' majority decides
            return f"{word!r} is {category!r} here but {others.most_common(1)[0][0]!r} in most other records"
    return None


# -- sequences, Roman numerals ----------------------------------------------------------------------


def check_number_sequence(r: dict, facts: dict) -> str | None:
    run = re.search(r"(?:\d+|_)(?:, (?:\d+|_))+", r["input"] or r["instruction"])
    if not run:
        return "cannot find the sequence"
    terms = run[0].split(", ")
    known = [(k, int(t)) for k, t in enumerate(terms) if t != "_"]
    gaps = [k for k, t in enumerate(terms) if t == "_"]
    if len(gaps) > 1 or len(known) < 3:
        return "needs at least three numbers and at most one gap"
    (k0, a0), (k1, a1) = known[0], known[1]
    candidates = []
    if (a1 - a0) % (k1 - k0) == 0:
        d = (a1 - a0) // (k1 - k0)
        candidates.append(lambda k, d=d: a0 + d * (k - k0))
    if a0 and a1 % a0 == 0 and k1 == k0 + 1:
        q = a1 // a0
        candidates.append(lambda k, q=q: a0 * q ** (k - k0))
    root = math.isqrt(a0)
    if root * root == a0:
        candidates.append(lambda k: (root + k - k0) ** 2)
    rule = next((f for f in candidates if all(f(k) == t for k, t in known)), None)
    if rule is None:
        return f"no arithmetic, geometric or square rule fits {terms}"
    expected = rule(gaps[0] if gaps else len(terms))
    m = re.match(r"The (?:next|missing) number is (\d+), because", r["output"])
    if not m or int(m[1]) != expected:
        return f"the answer should be {expected}, output says {r['output']!r}"
    step = re.search(r"is (\d+) (more|less) than|go up by (\d+)", r["output"])
    if step:
        d = int(step[1] or step[3]) * (-1 if step[2] == "less" else 1)
        if d != rule(1) - rule(0):
            return f"the rule in the answer ({d}) is not the sequence's step"
    return None


ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
ROMAN_DIGITS = [["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX"],
                ["", "X", "XX", "XXX", "XL", "L", "LX", "LXX", "LXXX", "XC"],
                ["", "C", "CC", "CCC", "CD", "D", "DC", "DCC", "DCCC", "CM"], ["", "M", "MM", "MMM"]]


def to_roman(n: int) -> str:
    digits = [int(d) for d in str(n)][::-1]
    return "".join(ROMAN_DIGITS[place][d] for place, d in reversed(list(enumerate(digits))))


def from_roman(text: str) -> int:
    values = [ROMAN_VALUES[ch] for ch in text]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def check_roman(r: dict, facts: dict) -> str | None:
    text = r["instruction"] + " " + r["input"]
    numeral = re.search(r"\b([IVXLCDM]+)\b", text)
    number = re.search(r"\b(\d+)\b", text)
    if numeral and not number:
        value = from_roman(numeral[1])
        if to_roman(value) != numeral[1]:
            return f"{numeral[1]} is not a well-formed Roman numeral"
        found = [int(x) for x in re.findall(r"\d+", r["output"])]
        return None if found == [value] else f"{numeral[1]} is {value}, output says {r['output']!r}"
    if number and not numeral:
        n = int(number[1])
        m = re.fullmatch(rf"{n} in Roman numerals is ([IVXLCDM]+)\.", r["output"])
        return None if m and m[1] == to_roman(n) else f"{n} is {to_roman(n)}, output says {r['output']!r}"
    return "cannot tell which way to convert"


# -- comparatives ------------------------------------------------------------------------------------

IRREGULAR_COMPARISON = {"good": ("better", "best"), "bad": ("worse", "worst"), "far": ("farther", "farthest")}


def compared(adjective: str) -> tuple[str, str]:
    """(comparative, superlative) by the usual spelling rules."""
    if adjective in IRREGULAR_COMPARISON:
        return IRREGULAR_COMPARISON[adjective]
    if adjective.endswith("y") and not is_vowel(adjective[-2]) and syllables(adjective) <= 2:
        return adjective[:-1] + "ier", adjective[:-1] + "iest"
    if syllables(adjective) >= 2:
        return "more " + adjective, "most " + adjective
    if adjective.endswith("e"):
        return adjective + "r", adjective + "st"
    cvc = (not is_vowel(adjective[-3]) and is_vowel(adjective[-2]) and not is_vowel(adjective[-1])
           and adjective[-1] not in "wxy")
    stem = adjective + adjective[-1] if len(adjective) >= 3 and cvc else adjective
    return stem + "er", stem + "est"


def check_comparatives(r: dict, facts: dict) -> str | None:
    adjective = r["input"] or re.search(r"'([a-z]+)'", r["instruction"])[1]
    comparative, superlative = compared(adjective)
    out = r["output"]
    forms = re.findall(r"'([a-z ]+)'", out)
    patterns = [(r"The comparative of '(.+)' is '(.+)', and the superlative is '(.+)'\.", ("a", "c", "s")),
                (r"The comparative form of '(.+)' is '(.+)'\.", ("a", "c")),
                (r"The superlative (?:form )?of '(.+)' is '(.+)'\.", ("a", "s")),
                (r"To compare two things we say '(.+)', and for three or more we say '(.+)'\.", ("c", "s"))]
    expected = {"a": adjective, "c": comparative, "s": superlative}
    for pattern, roles in patterns:
        m = re.fullmatch(pattern, out)
        if m:
            wrong = [(role, got) for role, got in zip(roles, m.groups()) if got != expected[role]]
            return None if not wrong else f"{adjective}: expected {expected}, output has {forms}"
    return f"cannot parse {out!r}"


# -- combining and splitting sentences --------------------------------------------------------------------


def first_lower(text: str) -> list[str]:
    """A clause as it may appear after a comma: first letter lower case, or kept (names, 'I')."""
    return [text[0].lower() + text[1:], text]


def check_combine(r: dict, facts: dict) -> str | None:
    quoted = re.findall(r'"([^"]+)"', r["instruction"])
    if quoted:
        s1, s2 = (q + "." for q in quoted)
    else:
        text = subject_text(r)
        s1, _, s2 = text.partition(". ")
        s1 += "."
    if not s2.endswith("."):
        return "cannot find two sentences"
    named = re.search(r"'(and|but|so|because)'", r["instruction"])
    joins = [named[1]] if named else ["and", "but", "so", "because"]
    options = [f"{s1[:-1]}{' ' if j == 'because' else ', '}{j} {second}" for j in joins
               for second in first_lower(s2)]
    return None if r["output"] in options else f"{r['output']!r} is not {s1!r} + {s2!r} joined with {joins}"


def check_split(r: dict, facts: dict) -> str | None:
    m = re.fullmatch(r"(.+), (and|but|so) (.+)\.", subject_text(r))
    if not m:
        return "cannot find 'A, and/but/so b.'"
    first, join, second = m[1] + ".", m[2], m[3] + "."
    opener = {"and": "", "but": "However, ", "so": "As a result, "}[join]
    expected = f"{first} {opener}{second}" if opener else f"{first} {second[0].upper() + second[1:]}"
    return None if r["output"] == expected else f"expected {expected!r}"


# -- rhymes, calendar, clock, averages ---------------------------------------------------------------------


def rhyme_key(word: str) -> str:
    """The spelled rhyme: from the last vowel group on, a silent final 'e' dropped ('snake' -> 'ak')."""
    stem = word[:-1] if word.endswith("e") and len(word) > 2 and not is_vowel(word[-2]) else word
    m = re.search(r"[aeiou]+[^aeiou]*$", stem)
    return m[0] if m else stem


def check_rhymes(r: dict, facts: dict) -> str | None:
    word = r["input"] or re.search(r"'([a-z]+)'", r["instruction"])[1]
    offered = [w for w in re.findall(r"'([a-z]+)'", r["output"]) if w != word]
    unquoted = re.sub(r"'[a-z]+'", "", r["instruction"])
    wanted = {"two": 2, "three": 3}.get((re.search(r"\b(two|three)\b", unquoted) or [None, None])[1], 1)
    if len(offered) != wanted or len(set(offered)) != wanted:
        return f"asked for {wanted} rhyme(s), got {offered}"
    bad = [w for w in offered if rhyme_key(w) != rhyme_key(word)]
    return f"{bad} do not rhyme with {word!r}" if bad else None


WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTH_DAYS = {"January": 31, "February": 28, "March": 31, "April": 30, "May": 31, "June": 30, "July": 31,
              "August": 31, "September": 30, "October": 31, "November": 30, "December": 31}
MONTH_NAMES = list(MONTH_DAYS)


def check_calendar(r: dict, facts: dict) -> str | None:
    text, out = r["instruction"] + " " + r["input"], r["output"]
    day = re.search(r"\b(" + "|".join(WEEKDAYS) + r")\b", text)
    month = re.search(r"\b(" + "|".join(MONTH_NAMES) + r")\b", text)
    k = re.search(r"\b(\d+) (?:days|months)\b", text)
    if "leap year" in text:
        year = int(re.search(r"\d{4}", text)[0])
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        expected = f"Yes, {year} is a leap year." if leap else f"No, {year} is not a leap year."
    elif day:
        i = WEEKDAYS.index(day[1])
        step = int(k[1]) if k else (-1 if "before" in text else 1)
        target = WEEKDAYS[(i + step) % 7]
        expected = (f"In {k[1]} days, it will be {target}." if k else
                    f"The day {'before' if step < 0 else 'after'} {day[1]} is {target}.")
    elif month and "How many days" in text:
        n = MONTH_DAYS[month[1]]
        expected = ("February has 28 days, or 29 in a leap year." if month[1] == "February"
                    else f"{month[1]} has {n} days.")
    elif month:
        i = MONTH_NAMES.index(month[1])
        step = int(k[1]) if k else 1
        target = MONTH_NAMES[(i + step) % 12]
        expected = (f"The month that comes {step} months after {month[1]} is {target}." if k else
                    f"The month after {month[1]} is {target}.")
    else:
        return "cannot parse the calendar question"
    return None if out == expected else f"expected {expected!r}"


def minutes_of(text: str) -> int:
    m = re.fullmatch(r"(\d{1,2}):(\d{2}) ([ap])\.m\.", text)
    if m:
        h = int(m[1]) % 12 + (12 if m[3] == "p" else 0)
        return 60 * h + int(m[2])
    m = re.fullmatch(r"(\d{2}):(\d{2})", text)
    return 60 * int(m[1]) + int(m[2])


TIME = r"\d{1,2}:\d{2}(?: [ap]\.m\.)?"


def check_clock(r: dict, facts: dict) -> str | None:
    text, out = r["instruction"] + " " + r["input"], r["output"]
    times = re.findall(TIME, text)
    answer_times = re.findall(TIME, out)
    if not times or not answer_times:
        return "cannot find the times"
    start = minutes_of(times[0])
    if "24-hour time" in text:
        other = minutes_of(answer_times[-1] if times[0] in answer_times[:1] else answer_times[0])
        return (None if other == start and set(answer_times) - {times[0]}
                else f"{out!r} names a different time")
    if "between" in text:
        minutes = minutes_of(times[1]) - start
        found = int(re.search(r"There are (\d+) minutes", out)[1])
        return None if found == minutes else f"{minutes} minutes, output says {found}"
    m = re.search(r"(\d+) minutes after|lasts (\d+) hours? and (\d+) minutes", text)
    if not m:
        return "cannot find the duration"
    minutes = int(m[1]) if m[1] else 60 * int(m[2]) + int(m[3])
    return (None if minutes_of(answer_times[-1]) == start + minutes
            else f"{out!r}: expected {start + minutes} minutes")


def check_averages(r: dict, facts: dict) -> str | None:
    text = r["input"] or r["instruction"]
    listed = re.search(r"\d+(?:, \d+)*(?: and \d+)?", text.split(" scored ")[-1])
    numbers = [int(x) for x in re.split(r", | and ", listed[0])]
    answer = num(re.findall(NUMBER, r["output"])[-1])
    instruction = r["instruction"]
    if "median" in instruction:
        expected = sorted(numbers)[len(numbers) // 2] if len(numbers) % 2 else None
    elif "range" in instruction:
        expected = max(numbers) - min(numbers)
        if f"{max(numbers)} - {min(numbers)} =" not in r["output"]:
            return "the range must show largest - smallest"
    elif "total" in instruction:
        expected = sum(numbers)
    else:  # mean / average
        expected = Fraction(sum(numbers), len(numbers))
        if "scored" in instruction and f"on {len(numbers)} tests" not in instruction:
            return "the number of tests does not match the scores"
    return (None if expected is not None and answer == expected
            else f"expected {expected}, output says {r['output']!r}")


# -- rewrites that cannot be computed, but can be checked for what they must not do --------------------------

INFORMAL = (r"n't|'re\b|'ll\b|'ve\b|'m\b|'s (?:off|going)"
            r"|\b(?:gonna|wanna|kids|guys|asap|stuff|hey|lots of|kind of|messed|grab)\b|!")


def check_formal(r: dict, facts: dict) -> str | None:
    informal = subject_text(r)
    if re.search(INFORMAL, r["output"], flags=re.I):
        return f"the formal version {r['output']!r} is still informal"
    return None if r["output"] != informal else "the rewrite changes nothing"


def long_words(text: str) -> int:
    return sum(len(w) >= 9 for w in re.findall(r"[A-Za-z]+", text))


def mean_word_length(text: str) -> float:
    words = re.findall(r"[A-Za-z]+", text)
    return sum(map(len, words)) / len(words)


def check_simpler(r: dict, facts: dict) -> str | None:
    hard, easy = subject_text(r), r["output"]
    if mean_word_length(easy) >= mean_word_length(hard) or long_words(easy) > long_words(hard):
        return f"{easy!r} is not simpler than {hard!r}"
    return None


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def check_spelling(r: dict, facts: dict) -> str | None:
    wrong = r["input"] or (re.search(r"'(\w+)'", r["instruction"]) or [None, subject_text(r)])[1]
    right = (re.search(r"'(\w+)'", r["output"]) or [None, r["output"]])[1]
    distance = edit_distance(wrong.lower(), right.lower())
    return (None if 1 <= distance <= 3
            else f"{wrong!r} -> {right!r} is {distance} edits (a misspelling is 1-3)")


# -- facts that must agree across records --------------------------------------------------------------------


def fact_claims(r: dict) -> list[tuple[tuple, str]]:
    text = r["output"]
    if r["family"] == "capitals":
        m = re.fullmatch(r"The capital of (.+) is (.+)\.", text)
        if m:
            return [(("capital", m[1]), m[2])]
        m = re.fullmatch(r"(.+?) is the capital of (.+)\.", text)
        return [(("capital", m[2]), m[1])] if m else [(("unparsed", text), "")]
    if r["family"] == "chemical_symbols":
        m = re.fullmatch(r"The chemical symbol for (\w+) is (\w+)\.", text)
        if m:
            return [(("element", m[1]), m[2])]
        m = re.fullmatch(r"The symbol (\w+) stands for (\w+)\.", text)
        return [(("element", m[2]), m[1])] if m else [(("unparsed", text), "")]
    if r["family"] == "translation":
        m = re.fullmatch(r'In (\w+), "(.+)" is "(.+)"\.', text)
        return [((m[1], m[2]), m[3])] if m else [(("unparsed", text), "")]
    if r["family"] == "abbreviations":
        m = (re.fullmatch(r"'(.+)' (?:stands for|is short for) '(.+)'\.", text) or
             re.fullmatch(r"The abbreviation for '(.+)' is '(.+)'\.", text) or
             re.fullmatch(r"'(.+)' is usually shortened to '(.+)'\.", text))
        if not m:
            return [(("unparsed", text), "")]
        short, full = (m[1], m[2]) if "stands for" in text or "short for" in text else (m[2], m[1])
        return [(("expands", short), full), (("shortens", full), short)]
    return []


def check_consistent_facts(records: list[dict]) -> list[str]:
    """The same country, element, English word or abbreviation always gets the same answer."""
    problems, seen = [], {}
    for i, r in enumerate(records):
        for key, value in fact_claims(r):
            if key[0] == "unparsed":
                problems.append(f"record {i} ({r['family']}): cannot parse {key[1]!r}")
            elif key in seen and seen[key][1] != value:
                problems.append(f"records {seen[key][0]} and {i} disagree on {key}: "
                                f"{seen[key][1]!r} vs {value!r}")
            seen.setdefault(key, (i, value))
    return problems


CHECKS = {
    "arithmetic": check_arithmetic,
    "word_problems": check_word_problem,
    "unit_conversion": check_unit_conversion,
    "plurals": lambda r, facts: check_word_form(r, "plural", plural_of),
    "past_tense": lambda r, facts: check_word_form(r, "past tense|simple past", past_of),
    "number_sorting": check_number_sorting,
    "alphabetical_order": check_alphabetical,
    "counting": check_counting,
    "number_facts": check_number_facts,
    "grammar": check_grammar,
    "voice": check_voice,
    "spelling": check_spelling,
    "question_forming": check_question,
    "negation": check_negation,
    "future_tense": check_future,
    "parts_of_speech": check_parts_of_speech,
    "true_false": check_true_false,
    "odd_one_out": check_categories,
    "categorize": check_categories,
    "category_examples": check_categories,
    "number_sequences": check_number_sequence,
    "roman_numerals": check_roman,
    "comparatives": check_comparatives,
    "combine_sentences": check_combine,
    "split_sentences": check_split,
    "rhymes": check_rhymes,
    "calendar": check_calendar,
    "clock_time": check_clock,
    "averages": check_averages,
    "formal_rewrite": check_formal,
    "simplify_sentence": check_simpler,
}
# by hand; the last four for consistency
NOT_CHECKED = ["antonyms", "synonyms", "definitions", "explanations", "simple_facts", "summaries",
               "sentiment", "capitals", "chemical_symbols", "translation", "abbreviations"]


def computed_problems(records: list[dict]) -> list[str]:
    facts = {key: value for r in records for key, value in fact_claims(r)}
    facts["categories"] = category_map(records)
    problems = []
    for i, r in enumerate(records):
        check = CHECKS.get(r["family"])
        if check is not None:
            problem = check(r, facts)
            if problem:
                problems.append(f"record {i} ({r['family']}): {problem} | "
                                f"{r['instruction']!r} {r['input']!r}")
    return problems + check_consistent_facts(records)


def test_every_computable_answer_is_right(records):
    assert not set(CHECKS) & set(NOT_CHECKED)
    assert sorted(list(CHECKS) + NOT_CHECKED) == sorted({r["family"] for r in records}), (
        "a family has no check entry")
    problems = computed_problems(records)
    assert not problems, f"{len(problems)} wrong or unparsable records:\n" + "\n".join(problems[:25])
    checked = sum(1 for r in records if r["family"] in CHECKS)
    assert checked >= 0.65 * len(records), f"only {checked} records have answers the test can check"


def bump_first_number(text: str) -> str:
    return re.sub(r"\d+", lambda m: str(int(m[0]) + 1), text, count=1)


def bump_last_number(text: str) -> str:
    return re.sub(r"(\d+)(?!.*\d)", lambda m: str(int(m[1]) + 1), text)


def corrupt_pos(r: dict) -> None:
    if r["output"].startswith("The "):  # "The adverb is 'x'." -> names a word that is no adverb
        r["output"] = re.sub(r"'\w+'", "'the'", r["output"])
    else:
        r["output"] = re.sub(r"\b(an?) (\w+)\.$",
                             lambda m: "a noun." if m[2] != "noun" else "a verb.", r["output"])


def corrupt_clock(r: dict) -> None:
    out = re.sub(r":(\d{2})(?!.*:\d{2})", lambda m: f":{(int(m[1]) + 1) % 60:02d}", r["output"])
    r["output"] = re.sub(r"There are (\d+)", lambda m: f"There are {int(m[1]) + 1}", out)


def swap_odd_one_out(r: dict) -> None:
    m = re.fullmatch(r"The odd one out is '([\w ]+)': '([\w ]+)'(.*)", r["output"])
    r["output"] = (f"The odd one out is '{m[2]}': '{m[1]}'{m[3]}"
                   .replace(f"but '{m[1]}' is", f"but '{m[2]}' is"))


def move_one_item(r: dict) -> None:
    groups = re.findall(r"([A-Z][\w ]*): ([^.]+)\.", r["output"])
    (c1, w1), (c2, w2) = groups
    moved, *rest = w2.split(", ")
    r["output"] = f"{c1}: {w1}, {moved}. {c2}: {', '.join(rest) or moved}."


CORRUPTIONS = [  # (family, how to break a record of that family)
    ("arithmetic",
     lambda r: r.update(output=re.sub(r"(\d+)\.$", lambda m: f"{int(m[1]) + 1}.", r["output"]))),
    ("word_problems", lambda r: r.update(output=re.sub(r"\d+", lambda m: str(int(m[0]) + 2), r["output"]))),
    ("unit_conversion", lambda r: r.update(output=r["output"].replace(" is ", " is 1"))),
    ("plurals", lambda r: r.update(output=re.sub(r"'(\w+)'\.$", lambda m: f"'{m[1]}s'.", r["output"]))),
    ("past_tense", lambda r: r.update(output=re.sub(r"'(\w+)'\.$", lambda m: f"'{m[1]}ed'.", r["output"]))),
    ("number_sorting", lambda r: r.update(output=r["output"].replace(": ", ": 1000, ", 1))),
    ("alphabetical_order", lambda r: r.update(output=r["output"].replace(": ", ": aardvark, zebra, ", 1))),
    ("counting", lambda r: r.update(output=re.sub(r"\d+", lambda m: str(int(m[0]) + 1), r["output"]))),
    ("number_facts", lambda r: r.update(instruction=bump_first_number(r["instruction"]),
                                        input=bump_first_number(r["input"]))),
    ("grammar", lambda r: r.update(output=subject_text(r))),
    ("voice", lambda r: r.update(output=subject_text(r))),
    ("spelling", lambda r: r.update(output="The correct spelling is 'banana'.")),
    ("question_forming", lambda r: r.update(output=subject_text(r)[:-1] + "?")),
    ("negation", lambda r: r.update(output=subject_text(r))),
    ("future_tense", lambda r: r.update(output=subject_text(r))),
    ("parts_of_speech", corrupt_pos),
    ("true_false", lambda r: r.update(output=("False" if r["output"].startswith("True") else "True")
                                      + r["output"][r["output"].index("."):])),
    ("odd_one_out", swap_odd_one_out),
    ("categorize", move_one_item),
    ("category_examples", lambda r: r.update(output=re.sub(r"(: |are )([\w ]+?)(,| and)",
                                                           r"\1Mars\3" if "planets" not in r["output"]
                                                           else r"\1hammers\3",
                                                           r["output"], count=1))),
    ("number_sequences", lambda r: r.update(output=bump_first_number(r["output"]))),
    ("roman_numerals", lambda r: r.update(output=bump_first_number(r["output"]))),
    ("comparatives", lambda r: r.update(output=re.sub(r"'([a-z ]+)'\.$", r"'more \1'.", r["output"]))),
    ("combine_sentences", lambda r: r.update(output=r["output"][:-1].rsplit(" ", 1)[0] + ".")),
    ("split_sentences", lambda r: r.update(output=r["output"].replace(". ", ", ", 1))),
    ("rhymes", lambda r: r.update(output=re.sub(
        r"'(\w+)'", lambda m: m[0] if m[1] in (r["input"], *re.findall(r"'(\w+)'", r["instruction"]))
        else "'qzx'", r["output"]))),
    ("calendar", lambda r: r.update(output=r["output"][:-1] + "x.")),
    ("clock_time", corrupt_clock),
    ("averages", lambda r: r.update(output=bump_last_number(r["output"]))),
    ("formal_rewrite", lambda r: r.update(output=subject_text(r))),
    ("simplify_sentence", lambda r: r.update(output=subject_text(r))),
]


def test_every_check_has_a_corruption():
    assert sorted(f for f, _ in CORRUPTIONS) == sorted(CHECKS)


@pytest.mark.parametrize("family,corrupt", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_checks_catch_corrupted_records(records, family, corrupt):
    """Break every record of a family in a copy: the checks must flag (nearly) all of them."""
    broken = copy.deepcopy(records)
    targets = [i for i, r in enumerate(broken) if r["family"] == family]
    for i in targets:
        corrupt(broken[i])
    flagged = {int(p.split()[1]) for p in computed_problems(broken) if p.startswith("record ")}
    caught = sum(1 for i in targets if i in flagged)
    assert caught >= 0.9 * len(targets), (
        f"{family}: only {caught} of {len(targets)} corrupted records flagged")
