"""Test-set responses and the manual review of them (notebook 05).

    records = generate_responses(model, tok, test_records, model_name="gemma-3-270m")   # batched, greedy
    save_responses(records, run_path("base_responses.json"))

    session = ReviewSession(records, run_path("review_base.json"))   # reloads where you stopped
    review_widget(session)                                            # buttons in Jupyter
    session.score(4); session.verdict("correct"); session.note("good"); session.next()   # headless
    session.table()                                                   # pandas summary

Every click is written at once (temp file + ``os.replace``, so a crash never leaves half a file), in JSON
or CSV by the file's suffix; a new ``ReviewSession`` on the same file after a kernel restart continues
at the record the reviewer was on. A session holds an OS lock on ``<file>.lock`` for its life, so a second
process cannot overwrite its reviews; a file that is not a review file is refused, never overwritten.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import html
import io
import json
import os
import re
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from helpers.checkpoints import LockHeld, atomic_write_bytes, take_lock
from helpers.config import DATA_DIR, GENERATION_BATCH_SIZE, run_path

# Stop strings that end a response when the model starts a new prompt section by itself.
STYLE_STOPS = {"alpaca": ["\n\n### ", "\n### Instruction"], "phi3": ["<|user|>", "<|end|>", "<|endoftext|>"]}


# ----------------------------------------------------------------------------- responses


def generate_responses(model, tokenizer, records: Sequence[Mapping], *, style: str = "alpaca",
                       model_name: str, max_new_tokens: int = 256, batch_size: int = GENERATION_BATCH_SIZE,
                       temperature: float = 0.0, seed: int = 123, device=None,
                       progress: bool = True) -> list[dict]:
    """Answer every record with batched KV-cache generation; one JSON-ready dict per record.

    Each dict holds instruction, input, expected ``output``, the model's ``response``, ``model_name``,
    ``prompt_style`` and the ``generation`` settings, so base and fine-tuned runs can be compared later.
    Works for any model with the course's model interface (base or fine-tuned). Taught in notebook 05.
    """
    from helpers.data import format_prompt
    from helpers.generation import generate

    stops = STYLE_STOPS.get(style, [])
    prompts = [format_prompt(r, style) for r in records]
    settings = {"max_new_tokens": max_new_tokens, "temperature": temperature, "batch_size": batch_size,
                "seed": seed, "stop": stops, "decoding": "greedy" if temperature == 0 else "sampling"}
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):  # chunks only for the progress line
        texts += generate(model, tokenizer, prompts[start : start + batch_size],
                          max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, stop=stops,
                          batch_size=batch_size, device=device)
        if progress:
            print(f"\r{min(start + batch_size, len(prompts))}/{len(prompts)} responses generated", end="",
                  flush=True)
    if progress and prompts:
        print()
    return [
        {"id": r.get("id", i), "instruction": r["instruction"], "input": r.get("input") or "",
         "output": r["output"], "response": text.strip(), "model_name": model_name, "prompt_style": style,
         "generation": settings}
        for i, (r, text) in enumerate(zip(records, texts))
    ]


def save_responses(records: Sequence[Mapping], path: str | Path) -> Path:
    """Save response records as a JSON list (atomically)."""
    atomic_write_bytes(Path(path), json.dumps(list(records), indent=1, ensure_ascii=False).encode("utf-8"))
    return Path(path)


def load_responses(path: str | Path) -> list[dict]:
    """Load response records saved by :func:`save_responses` (or notebook 03's ``{"records": [...]}``).

    Accepts ``model_response`` (the book's field name) for ``response``; names the record and field on errors.
    """
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist; generate it with helpers.review.generate_responses "
                                "and save_responses (notebook 05 does both)") from None
    if isinstance(records, dict) and isinstance(records.get("records"), list):
        # notebook 03's layout: shared fields at the top, one entry per record
        top = records
        records = [{"model_name": top.get("model", "?"), "prompt_style": top.get("prompt_style", "alpaca"),
                    "generation": top.get("settings", {}), **r} for r in top["records"]]
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of response records (or an object with a 'records' "
                         f"list), got {type(records).__name__}")
    for i, record in enumerate(records):
        if "response" not in record and "model_response" in record:  # the book's / helpers.course's name
            record["response"] = record["model_response"]
        missing = [f for f in ("instruction", "output", "response") if not isinstance(record.get(f), str)]
        if missing:
            raise ValueError(f"{path}: record {i} lacks the text field(s) {missing}; "
                             "regenerate the file with helpers.review.generate_responses")
    return records


def responses_path(model_name: str):
    """Where this run keeps ``model_name``'s answers: ``<run>/responses/<model-name>.json`` (one file per
    model)."""
    return run_path("responses", re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-") + ".json")


def _question(record: Mapping) -> tuple:
    return record["instruction"], record.get("input") or "", record["output"]


def saved_or_generated(model, tokenizer, records: Sequence[Mapping], *, model_name: str,
                       style: str = "alpaca", max_new_tokens: int = 256,
                       batch_size: int = GENERATION_BATCH_SIZE, path=None, device=None,
                       progress: bool = True) -> list[dict]:
    """``model_name``'s answers to ``records``: reused from ``path`` where saved, generated (and saved)
    otherwise.

    A saved answer is reused only when it is for the same record (instruction, input, expected output), by
    the same ``model_name``, in the same prompt ``style`` with the same ``max_new_tokens``: answers of another
    model or other settings are never passed off as these. Missing answers are generated with
    :func:`generate_responses` and merged into the file after every batch, so an interruption loses at most
    one batch and the next call continues. ``model`` may be a function returning ``(model, tokenizer)``, so
    that nothing is loaded when every answer is saved. ``path`` defaults to :func:`responses_path`. Prints
    what it did.
    """
    path = Path(path) if path is not None else responses_path(model_name)
    saved, others = {}, []  # others: answers of other models or settings, kept in the file
    for r in load_responses(path) if path.exists() else []:
        same = (r.get("model_name") == model_name and r.get("prompt_style") == style
                and (r.get("generation") or {}).get("max_new_tokens") == max_new_tokens)
        if same:
            saved[_question(r)] = r
        else:
            others.append(r)
    missing = [r for r in records if _question(r) not in saved]
    if missing:
        if callable(model) and not isinstance(model, torch.nn.Module):
            model, tokenizer = model()
        for start in range(0, len(missing), batch_size):
            for row in generate_responses(model, tokenizer, missing[start : start + batch_size], style=style,
                                          model_name=model_name, max_new_tokens=max_new_tokens,
                                          batch_size=batch_size, device=device, progress=False):
                saved[_question(row)] = row
            save_responses(others + list(saved.values()), path)  # progress kept batch by batch
            if progress:
                print(f"\r{min(start + batch_size, len(missing))}/{len(missing)} responses generated", end="",
                      flush=True)
        if progress:
            print()
    print(f"{model_name}: {len(records) - len(missing)} answers reused, {len(missing)} generated ({path})")
    return [saved[_question(r)] for r in records]


# ----------------------------------------------------------------------------- the review session

SCALES = {
    "1-5": {1: "1 · wrong", 2: "2 · poor", 3: "3 · partly right", 4: "4 · good", 5: "5 · correct"},
    "0-100": {v: str(v) for v in range(0, 101, 10)},
}
VERDICTS = ("correct", "partly", "wrong")
VERDICT_TO_100 = {"correct": 100.0, "partly": 50.0, "wrong": 0.0}
CSV_FIELDS = ("key", "index", "score", "verdict", "note", "updated", "current", "scale")


def to_100(score: float | None, scale: str) -> float | None:
    """A manual score on the 0–100 scale the judge uses (1–5 maps to 0, 25, 50, 75, 100)."""
    if score is None:
        return None
    return (float(score) - 1.0) * 25.0 if scale == "1-5" else float(score)


class ReviewFileError(ValueError):
    """The review file exists but is not one ReviewSession wrote (it is left untouched)."""


class ReviewFileLocked(RuntimeError):
    """Another ReviewSession (another process, or a newer session in this one) writes this review file."""


def _lock_or_refuse(lock_path: Path, path: Path):
    """An exclusive OS lock on ``lock_path`` (the open file; closing it releases the lock), holding our
    PID."""
    try:
        return take_lock(lock_path, f"PID {os.getpid()}")
    except LockHeld as held:
        raise ReviewFileLocked(
            f"{path} is open in another ReviewSession ({held.holder}); two sessions on one file would "
            "overwrite each other's reviews. Close that one (session.close(), or stop its kernel) or review "
            "into another file.") from None


_SESSIONS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # lock file -> the session holding it


def record_key(record: Mapping) -> str:
    """Identifies a (record, response) pair across files and restarts."""
    blob = json.dumps([record.get("instruction"), record.get("input") or "", record.get("output"),
                       record.get("response")], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class ReviewSession:
    """Manual review of response records, saved after every change (taught in notebook 05).

    ``path`` ends in ``.json`` (reviews + position) or ``.csv`` (one row per record, a ``current``
    column marks the position). If the file exists, its reviews are matched to ``records`` by position and
    content (then by content alone, for records that moved; identical records keep separate reviews) and
    the session continues where it stopped. ``scale`` is ``"1-5"`` (labelled) or ``"0-100"`` (steps of 10).

    The session locks the file until :meth:`close` (or garbage collection): another process is refused
    (:class:`ReviewFileLocked`, naming its PID); a newer session in this process (a re-run cell) takes
    the file over, and the older one refuses to write.
    """

    def __init__(self, records: Sequence[Mapping], path: str | Path, *, scale: str = "1-5"):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
        if not records:
            raise ValueError("ReviewSession needs at least one record to review")
        for i, record in enumerate(records):
            for field in ("instruction", "output", "response"):
                if field not in record:
                    raise KeyError(f"record {i} has no {field!r} field; review response records from "
                                   "helpers.review.generate_responses / load_responses")
        self.records = [dict(r) for r in records]
        self.path = Path(path)
        if self.path.suffix.lower() not in (".json", ".csv"):
            raise ValueError(f"{self.path}: use a .json or .csv file for reviews")
        self.scale = scale
        self.keys = [record_key(r) for r in self.records]
        self.reviews: list[dict] = [self._empty() for _ in self.records]
        self.position = 0
        self.last_saved: str | None = None
        self._foreign: list[dict] = []  # reviews in the file for records not in this session (kept on save)
        self._lock = None
        lock_path = self.path.with_name(self.path.name + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_key = str(lock_path.resolve())
        previous = _SESSIONS.get(lock_key)
        held = previous._lock if previous is not None else None
        lock = held or _lock_or_refuse(lock_path, self.path)
        try:
            if self.path.exists():
                self._load()
        except BaseException:
            if held is None:
                lock.close()
            raise
        if held is not None:
            previous._lock = None  # the older session in this process (a re-run cell) may no longer write
        self._lock = lock
        _SESSIONS[lock_key] = self

    def close(self) -> None:
        """Release the file lock; this session writes no more."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __del__(self):
        if getattr(self, "_lock", None) is not None:
            self._lock.close()

    @staticmethod
    def _empty() -> dict:
        return {"score": None, "verdict": None, "note": "", "updated": None}

    # -- state
    def __len__(self) -> int:
        return len(self.records)

    @property
    def current(self) -> dict:
        """The record under review with its review fields (score, verdict, note) and its index."""
        return {**self.records[self.position], **self.reviews[self.position], "index": self.position}

    def is_reviewed(self, i: int) -> bool:
        review = self.reviews[i]
        return review["score"] is not None or review["verdict"] is not None

    def progress(self) -> tuple[int, int]:
        """(reviewed, total)."""
        return sum(self.is_reviewed(i) for i in range(len(self))), len(self)

    # -- actions: each one saves at once
    def _touch(self) -> None:
        self.reviews[self.position]["updated"] = _dt.datetime.now().isoformat(timespec="seconds")
        self.save()

    def score(self, value: int | None) -> None:
        """Set the current record's score (on this session's scale; None clears it)."""
        if value is not None and value not in SCALES[self.scale]:
            raise ValueError(f"score {value!r} is not on the {self.scale} scale {list(SCALES[self.scale])}")
        self.reviews[self.position]["score"] = value
        self._touch()

    def verdict(self, label: str | None) -> None:
        """Set "correct", "partly" or "wrong" (None clears it)."""
        if label is not None and label not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {label!r}")
        self.reviews[self.position]["verdict"] = label
        self._touch()

    def note(self, text: str) -> None:
        self.reviews[self.position]["note"] = str(text)
        self._touch()

    def jump(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"record {index} does not exist; this session has records 0..{len(self) - 1}")
        self.position = index
        self.save()
        return self.current

    def next(self) -> dict:
        return self.jump(min(self.position + 1, len(self) - 1))

    def prev(self) -> dict:
        return self.jump(max(self.position - 1, 0))

    def jump_to_unreviewed(self) -> dict | None:
        """Go to the next unreviewed record after the current one (wrapping); None when all are done."""
        for step in range(1, len(self) + 1):
            i = (self.position + step) % len(self)
            if not self.is_reviewed(i):
                return self.jump(i)
        return None

    # -- results
    def human_scores(self) -> list[float | None]:
        """Per record, the manual score on 0–100 (from the score, else from the verdict), or None."""
        out = []
        for review in self.reviews:
            if review["score"] is not None:
                out.append(to_100(review["score"], self.scale))
            elif review["verdict"] is not None:
                out.append(VERDICT_TO_100[review["verdict"]])
            else:
                out.append(None)
        return out

    def table(self):
        """A pandas DataFrame: one row per record with its review (short texts for reading)."""
        import pandas as pd

        rows = []
        for i, (record, review, score100) in enumerate(zip(self.records, self.reviews, self.human_scores())):
            rows.append({
                "instruction": _short(record["instruction"]), "response": _short(record["response"]),
                "score": review["score"], "score_100": score100, "verdict": review["verdict"],
                "note": review["note"], "reviewed": self.is_reviewed(i),
            })
        return pd.DataFrame(rows)

    def summary(self):
        """Counts per verdict and the mean manual score (0–100) as a small DataFrame."""
        import pandas as pd

        table = self.table()
        reviewed = table[table["reviewed"]]
        data = {"reviewed": len(reviewed), "total": len(table),
                "mean_score_100": reviewed["score_100"].mean() if len(reviewed) else float("nan")}
        for label in VERDICTS:
            data[label] = int((reviewed["verdict"] == label).sum())
        return pd.DataFrame([data])

    # -- files
    def _items(self) -> list[dict]:
        return [{"key": k, "index": i, **review}
                for i, (k, review) in enumerate(zip(self.keys, self.reviews))]

    def save(self) -> None:
        """Write every review and the position atomically (JSON or CSV by suffix)."""
        if self._lock is None:
            raise ReviewFileLocked(f"This session no longer writes {self.path}: it was closed, or a newer "
                                   "ReviewSession on the same file took over (a re-run cell); use that one.")
        items = self._items()
        if self.path.suffix.lower() == ".json":
            text = json.dumps({"format": "course-review-v1", "scale": self.scale, "position": self.position,
                               "position_key": self.keys[self.position], "reviews": items,
                               "other_reviews": self._foreign}, indent=1, ensure_ascii=False)
        else:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for item in items + [dict(r, index="") for r in self._foreign]:
                writer.writerow({**{f: item.get(f) for f in CSV_FIELDS},
                                 "current": int(item.get("index") == self.position), "scale": self.scale})
            text = buffer.getvalue()
        atomic_write_bytes(self.path, text.encode("utf-8"))
        self.last_saved = _dt.datetime.now().strftime("%H:%M:%S")

    def _load(self) -> None:
        def refuse(why: str) -> ReviewFileError:
            return ReviewFileError(f"{self.path} is not a review file ({why}); it was left untouched. "
                                   "Pass another path (a new file) for the reviews.")

        try:
            if self.path.suffix.lower() == ".json":
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if not (isinstance(data, dict) and str(data.get("format")).startswith("course-review")
                        and isinstance(data.get("reviews"), list)):
                    responses = isinstance(data, list) and data and all(
                        isinstance(r, dict) and "response" in r for r in data)
                    found = "response records" if responses else f"a JSON {type(data).__name__}"
                    raise refuse(f"it holds {found}, not the JSON object a ReviewSession saves")
                items = data["reviews"] + list(data.get("other_reviews") or [])
                if not all(isinstance(item, dict) and isinstance(item.get("key"), str) for item in items):
                    raise refuse("its 'reviews' are not review entries")
                saved_scale, position = data.get("scale"), (data.get("position"), data.get("position_key"))
            else:
                with open(self.path, newline="", encoding="utf-8") as f:
                    reader = csv.DictReader(f)
                    rows = list(reader)
                if not set(CSV_FIELDS) <= set(reader.fieldnames or ()):
                    raise refuse(f"its columns are {reader.fieldnames}, a review file has {list(CSV_FIELDS)}")
                items = [{"key": row["key"], "index": int(row["index"]) if row["index"] else None,
                          "score": int(float(row["score"])) if row["score"] else None,
                          "verdict": row["verdict"] or None, "note": row["note"] or "",
                          "updated": row["updated"] or None} for row in rows]
                saved_scale = next((row["scale"] for row in rows if row["scale"]), None)
                position = next(((item["index"], item["key"]) for row, item in zip(rows, items)
                                 if row["current"] == "1"), (None, None))
        except ReviewFileError:
            raise
        except (json.JSONDecodeError, KeyError, ValueError, csv.Error) as exc:
            raise refuse(f"{type(exc).__name__}: {exc}") from None
        if saved_scale and saved_scale != self.scale:
            raise ValueError(f"{self.path} was reviewed on the {saved_scale} scale; open it with "
                             f"ReviewSession(records, path, scale={saved_scale!r})")

        def here(i, key) -> bool:  # record i is the one the review was saved for
            return isinstance(i, int) and 0 <= i < len(self) and self.keys[i] == key

        empty, placed, moved = self._empty(), {}, []
        for item in items:  # same position and content first
            review = {f: item.get(f, empty[f]) for f in empty}
            if here(item.get("index"), item["key"]) and item["index"] not in placed:
                placed[item["index"]] = review
            else:
                moved.append((item["key"], review))
        free: dict[str, list[int]] = {}
        for i, key in enumerate(self.keys):
            if i not in placed:
                free.setdefault(key, []).append(i)
        for key, review in moved:  # then the first free record with the same content (records moved)
            if free.get(key):
                placed[free[key].pop(0)] = review
            else:
                self._foreign.append({"key": key, **review})
        for i, review in placed.items():
            self.reviews[i] = review
        index, key = position
        if here(index, key) or key in self.keys:
            self.position = index if here(index, key) else self.keys.index(key)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ----------------------------------------------------------------------------- the widget


# Long words (URLs, code) wrap instead of widening the page; the record area has a fixed height and scrolls,
# so the buttons under it stay in one place whatever the record's length.
_WRAP = "white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word"
_BOX = ("border:1px solid #ccc;border-radius:4px;padding:4px 8px;margin:2px 0 6px 0;line-height:1.35;"
        "font-family:monospace;background:{bg};max-height:{height};overflow-y:auto;" + _WRAP)
RECORD_HEIGHT = "26em"  # the whole record; a long field also scrolls inside its own box
# A chosen score is coloured by what it means: red wrong, amber partly right, green correct.
VERDICT_STYLES = {"correct": "success", "partly": "warning", "wrong": "danger"}


def _section(title: str, text: str, bg: str, height: str = "7em") -> str:
    body = html.escape(text) if text else "<i>(empty)</i>"
    return f"<b>{title}</b><div style='{_BOX.format(bg=bg, height=height)}'>{body}</div>"


def score_style(score, scale: str) -> str:
    """The button colour of a chosen score: "danger" below 40 on 0-100, "warning" below 70, else "success"."""
    value = to_100(score, scale)
    return "danger" if value < 40 else "warning" if value < 70 else "success"


def review_widget(session: ReviewSession):
    """An ipywidgets UI over a :class:`ReviewSession` (taught in notebook 05).

    Shows the progress (updated on every click), instruction / input / expected / response in a scrolling
    area of fixed height, score buttons (a chosen score red, amber or green by meaning), correct / partly /
    wrong, a note, previous / next / next unreviewed / go to #. Every click saves the session file.
    Returns the widget box; ``box.controls`` holds the buttons so code (and tests) can press them, and
    ``box.header`` / ``box.body`` the HTML it shows.
    """
    import ipywidgets as w

    header = w.HTML(layout=w.Layout(width="100%"))
    progress = w.IntProgress(min=0, max=len(session), layout=w.Layout(width="98%", height="10px"))
    body = w.HTML(layout=w.Layout(width="100%"))
    status = w.HTML(layout=w.Layout(width="100%"))
    row = {"width": "100%", "flex_flow": "row wrap", "align_items": "center"}  # buttons wrap, never overflow

    def sized(width):  # a share of the row, never narrower than the button's label
        return w.Layout(width=width, min_width="max-content")

    score_buttons = {v: w.Button(description=text, tooltip=text, layout=sized("18%"))
                     for v, text in SCALES[session.scale].items()}
    verdict_buttons = {v: w.Button(description=v, tooltip=v, layout=sized("18%")) for v in VERDICTS}
    note = w.Textarea(placeholder="note (saved when you leave the box)", continuous_update=False,
                      layout=w.Layout(width="99%", height="4em"))
    prev_button = w.Button(description="◀ previous", layout=sized("20%"))
    next_button = w.Button(description="next ▶", layout=sized("20%"))
    unreviewed_button = w.Button(description="next unreviewed", tooltip="jump to the next unreviewed record",
                                 layout=sized("24%"))
    goto = w.BoundedIntText(value=1, min=1, max=len(session), description="go to #",
                            style={"description_width": "initial"}, layout=sized("24%"))

    def label(text):
        return w.HTML(f"<b>{text}</b>", layout=w.Layout(width="4.5em"))

    syncing = {"on": False}

    def refresh():
        syncing["on"] = True
        current = session.current
        done, total = session.progress()
        header.value = (f"<div style='{_WRAP}'><b style='font-size:1.1em'>Record {session.position + 1} of "
                        f"{total}</b> · {done} of {total} reviewed{' ✓ all done' if done == total else ''}"
                        f" · model: {html.escape(str(current.get('model_name', '?')))}</div>")
        progress.value = done
        given = current.get("input") or ""
        box = f"height:{RECORD_HEIGHT};overflow-y:auto;overflow-x:hidden;padding-right:4px"
        body.value = (f"<div style='{box}'>"
                      + _section("Instruction", current["instruction"], "#f7f7f7", "5em")
                      + (_section("Input", given, "#f7f7f7", "5em") if given else "")
                      + _section("Expected output", current["output"], "#eef7ee")
                      + _section("Model response", current["response"], "#eef2fb") + "</div>")
        for v, b in score_buttons.items():
            b.button_style = score_style(v, session.scale) if current["score"] == v else ""
        for v, b in verdict_buttons.items():
            b.button_style = VERDICT_STYLES[v] if current["verdict"] == v else ""
        note.value = current["note"] or ""
        goto.value = session.position + 1
        when = f"last saved at {session.last_saved}" if session.last_saved else "every click is saved"
        status.value = f"<small style='{_WRAP}'>{when} to {html.escape(str(session.path))}</small>"
        syncing["on"] = False

    def on_score(value):
        return lambda _b: (session.score(value), refresh())

    def on_verdict(value):
        return lambda _b: (session.verdict(value), refresh())

    for v, b in score_buttons.items():
        b.on_click(on_score(v))
    for v, b in verdict_buttons.items():
        b.on_click(on_verdict(v))
    prev_button.on_click(lambda _b: (session.prev(), refresh()))
    next_button.on_click(lambda _b: (session.next(), refresh()))
    unreviewed_button.on_click(lambda _b: (session.jump_to_unreviewed(), refresh()))

    def on_note(change):
        if not syncing["on"] and change["new"] != session.reviews[session.position]["note"]:
            session.note(change["new"])
            refresh()

    def on_goto(change):
        if not syncing["on"]:
            session.jump(int(change["new"]) - 1)
            refresh()

    note.observe(on_note, names="value")
    goto.observe(on_goto, names="value")
    refresh()
    box = w.VBox([
        header, progress, body,
        w.HBox([label("score")] + list(score_buttons.values()), layout=w.Layout(**row)),
        w.HBox([label("verdict")] + list(verdict_buttons.values()), layout=w.Layout(**row)),
        note,
        w.HBox([prev_button, next_button, unreviewed_button, goto], layout=w.Layout(**row)),
        status,
    ], layout=w.Layout(width="100%", overflow="hidden"))
    box.controls = {"score": score_buttons, "verdict": verdict_buttons, "note": note, "prev": prev_button,
                    "next": next_button, "unreviewed": unreviewed_button, "goto": goto}
    box.header, box.body, box.progress = header, body, progress
    box.session = session
    box.refresh = refresh
    return box


# ----------------------------------------------------------------------------- hand labels

HAND_LABELS_FILE = DATA_DIR / "hand-labels.json"
# What an answer is, besides right or wrong (the rubric in the file says what each means).
HAND_LABEL_KINDS = ("answer", "echo", "restated", "shape_only", "rambling", "empty")
HAND_LABEL_MODELS = ("base", "fine-tuned")
_HAND_LABEL_TEXT = ("family", "instruction", "input", "output", "model_name", "response", "note")


def load_hand_labels(path: str | Path = HAND_LABELS_FILE) -> list[dict]:
    """The hand-labelled test answers (``data/hand-labels.json``): one dict per (record, model) answer.

    Each entry holds the record (family, holdout, instruction, input, output), the ``model`` ("base" or
    "fine-tuned"), its ``response`` verbatim, a ``verdict`` from :data:`VERDICTS`, a ``kind`` from
    :data:`HAND_LABEL_KINDS` and a ``note``. A malformed entry is refused with its index and field.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        shipped = path.resolve() == HAND_LABELS_FILE.resolve()
        raise FileNotFoundError(f"{path} does not exist" + ("; it is part of the repository: restore it with "
                                f"`git checkout -- data/{path.name}`" if shipped else "")) from None
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, list) or not labels:
        raise ValueError(f"{path}: expected a JSON object with a non-empty 'labels' list")
    allowed = {"verdict": VERDICTS, "kind": HAND_LABEL_KINDS, "model": HAND_LABEL_MODELS}
    for i, entry in enumerate(labels):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: label {i} is a {type(entry).__name__}, not an object")
        for field in _HAND_LABEL_TEXT:
            if not isinstance(entry.get(field), str):
                raise ValueError(f"{path}: label {i} lacks the text field {field!r}")
        if not isinstance(entry.get("holdout"), bool):
            raise ValueError(f"{path}: label {i} field 'holdout' must be true or false, "
                             f"got {entry.get('holdout')!r}")
        for field, values in allowed.items():
            if entry.get(field) not in values:
                raise ValueError(f"{path}: label {i} field {field!r} is {entry.get(field)!r}, "
                                 f"expected one of {list(values)}")
    return labels


def hand_label_scores(labels: Sequence[Mapping]) -> list[float]:
    """The hand verdicts on the judge's 0–100 scale (correct 100, partly 50, wrong 0), in order."""
    return [VERDICT_TO_100[label["verdict"]] for label in labels]


# ----------------------------------------------------------------------------- a stand-in reviewer for CI


def _words(text) -> list[str]:
    return re.findall(r"[a-z0-9]+", str(text).lower())


def normalize_answer(text) -> str:
    """What exact match compares: lower-cased words, punctuation and extra spaces dropped."""
    return " ".join(_words(text))


def token_f1(response: str, expected: str) -> float:
    """Word-overlap F1 between a response and the expected output (lower-cased, punctuation dropped)."""
    r, e = Counter(_words(response)), Counter(_words(expected))
    common = sum((r & e).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(r.values()), common / sum(e.values())
    return 2 * precision * recall / (precision + recall)


def reference_scores(responses: Sequence[Mapping]) -> dict:
    """Compare each ``response`` with the record's expected ``output``, no judge needed.

    ``exact_match``: share of answers equal to the expected one after :func:`normalize_answer`, with a
    95 % Wilson interval; ``mean_f1``: mean word-overlap F1. Both are harsh on a right answer in other
    words ("The capital city of Greece is Athens." vs "The capital of Greece is Athens.": F1 0.92, no match).
    """
    from helpers.evals import wilson_interval

    if not responses:
        raise ValueError("reference_scores needs at least one response")
    exact = sum(normalize_answer(r["response"]) == normalize_answer(r["output"]) for r in responses)
    low, high = wilson_interval(exact, len(responses))
    f1 = [token_f1(r["response"], r["output"]) for r in responses]
    return {"n": len(responses), "exact": exact, "exact_match": exact / len(responses),
            "exact_ci95": (low, high), "mean_f1": sum(f1) / len(f1)}


def auto_review(session: ReviewSession, n: int | None = None) -> int:
    """Fill up to ``n`` *unreviewed* records with a transparent word-overlap rule (headless runs only).

    Stands in for a human when nobody can click (nbval, ``make course``), so later cells have manual-style
    scores to compare with. Each such review carries the note ``auto: …`` so it is never mistaken for a
    person's judgement. Records a person reviewed are left alone. Returns how many were filled.
    """
    filled, start = 0, session.position
    for i in range(len(session)):
        if n is not None and filled >= n:
            break
        if session.is_reviewed(i):
            continue
        record = session.records[i]
        f1 = token_f1(record["response"], record["output"])
        score = 5 if f1 >= 0.8 else 4 if f1 >= 0.6 else 3 if f1 >= 0.4 else 2 if f1 >= 0.2 else 1
        session.position = i
        session.reviews[i].update({
            "score": score if session.scale == "1-5" else int(round(to_100(score, "1-5") / 10) * 10),
            "verdict": "correct" if f1 >= 0.6 else "partly" if f1 >= 0.3 else "wrong",
            "note": f"auto: stand-in for a human reviewer, word-overlap F1 = {f1:.2f}",
        })
        session._touch()
        filled += 1
    session.jump(start)
    return filled
