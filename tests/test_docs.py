"""Readable without running: the static figures (scripts/draw_figures.py) and docs/
(python -m helpers course --publish)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from helpers import course
from helpers.config import REPO_ROOT

FIGURES = REPO_ROOT / "notebooks" / "figures"
DOCS_NOTEBOOKS = REPO_ROOT / "docs" / "notebooks"
SCRIPT = REPO_ROOT / "scripts" / "draw_figures.py"


def _script():
    spec = importlib.util.spec_from_file_location("draw_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- figures -----------------------------------------------------------------------------------


def test_draw_figures_draws_the_committed_set(tmp_path):
    from PIL import Image

    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, timeout=300,
                   cwd=REPO_ROOT, capture_output=True, env={**os.environ, "MPLBACKEND": "Agg"})
    drawn = sorted(p.name for p in tmp_path.glob("*.png"))
    committed = sorted(p.name for p in FIGURES.glob("*.png"))
    assert len(drawn) >= 5 and drawn == committed, f"drawn {drawn}, committed {committed}: run `make figures`"
    for path in tmp_path.glob("*.png"):
        image = Image.open(path).convert("RGB")
        width, height = image.size
        assert width >= 800 and 300 <= height <= 1000, f"{path.name}: {image.size}"
        assert 5_000 < path.stat().st_size < 200_000, f"{path.name}: {path.stat().st_size} bytes"
        colours = image.getcolors(maxcolors=1 << 16)
        white = max(count for count, rgb in colours if rgb == (255, 255, 255))
        assert len(colours) > 20 and white < 0.9 * width * height, f"{path.name} is nearly blank"


def test_the_toy_batch_figure_shows_what_collate_builds():
    import torch

    from helpers.batching import collate
    from helpers.judge import INJECTION_CAP

    figure = _script()
    tables = figure.toy_tables()
    inputs, targets = collate(figure.TOY_BATCH, pad_id=figure.PAD, eos_id=figure.EOS)
    assert inputs.tolist() == tables["inputs"] and targets.tolist() == tables["targets_no_padding"]
    items = [{"token_ids": ids, "prompt_length": p}
             for ids, p in zip(figure.TOY_BATCH, figure.TOY_PROMPT_LENGTHS)]
    _, masked = collate(items, pad_id=figure.PAD, eos_id=figure.EOS, mask_instructions=True)
    assert masked.tolist() == tables["targets_no_prompt"]
    assert torch.equal(torch.tensor(tables["targets"])[:, :-1], torch.tensor(tables["inputs"])[:, 1:])
    assert figure.INJECTION_CAP == INJECTION_CAP


# ---- docs/ -------------------------------------------------------------------------------------


def test_docs_notebooks_have_the_code_of_their_sources():
    if not DOCS_NOTEBOOKS.is_dir():
        pytest.skip("docs/notebooks/ does not exist yet: `make course`, then `.venv/bin/python -m "
                    "helpers course --publish`")
    published = sorted(DOCS_NOTEBOOKS.glob("*.ipynb"))
    sources = {p.name: p for p in course.course_stages()}
    assert sorted(p.name for p in published) == sorted(sources), (
        "docs/notebooks/ and notebooks/ hold different notebooks")
    for path in published:
        docs = nbformat.read(path, as_version=4)
        source = nbformat.read(sources[path.name], as_version=4)
        assert course.code_cells(docs) == course.code_cells(source), (
            f"docs/notebooks/{path.name} has other code than notebooks/{path.name}: run `make course` "
            f"(--redo {path.name[:2]}), then `.venv/bin/python -m helpers course --publish`")
        assert any(c.get("outputs") for c in docs.cells if c.cell_type == "code"), (
            f"{path.name} has no outputs")
        views = [i for i, c in enumerate(docs.cells) for o in c.get("outputs", [])
                 if course.WIDGET_VIEW in o.get("data", {})]
        assert not views, (
            f"docs/notebooks/{path.name}: widget outputs without a static fallback in cells {views}")


TOY_CELLS = [
    ("from tqdm.auto import tqdm\n"
     "bar = tqdm(total=5, desc='training', unit='step')\n"
     "for _ in range(5):\n"
     "    bar.update(1)\n"
     "bar.close()"),
    ("import ipywidgets as w\n"
     "w.VBox([w.HTML('<b>record 1 of 3</b>'), w.HBox([w.Label('score:'), w.Button(description='ok')])])"),
    "print('plain output')",
]


TOY_MARKDOWN = ("# 01 · Toy\n![the loop](figures/training-loop.png) "
                "[solutions](solutions/01_toy-solutions.ipynb) [data](../data/README.md) "
                "[again](01_toy.ipynb#top) [web](https://example.org/a) [here](#top)")


def _toy_notebook(path, cells=TOY_CELLS):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(TOY_MARKDOWN)] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished full run of one toy notebook (tqdm bar + ipywidgets box), executed by run_course
    (nbclient)."""
    root = tmp_path_factory.mktemp("publish")
    sources = root / "notebooks"
    sources.mkdir()
    stage = _toy_notebook(sources / "01_toy.ipynb")
    run_dir = course.run_course(run_dir=root / "runs" / "20990101-000000", stages=[stage], timeout=120)
    return run_dir, sources


def _copy_run(run_dir, target, **status_changes):
    shutil.copytree(run_dir, target)
    status = json.loads((target / "course.json").read_text())
    status.update(status_changes)
    (target / "course.json").write_text(json.dumps(status))
    return target


def test_run_course_stamps_the_git_commit(finished_run):
    run_dir, _ = finished_run
    status = json.loads((run_dir / "course.json").read_text())
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False)
    expected = head.stdout.strip() if head.returncode == 0 else None
    assert status["commit"] == expected and isinstance(status["dirty"], bool) == (expected is not None)
    assert status["stages"]["01"]["commit"] == expected
    assert f"commit: {expected or 'unknown'}" in (run_dir / "summary.md").read_text()


def test_publish_gives_widgets_a_static_fallback_and_stamps_the_run(finished_run, tmp_path):
    run_dir, sources = finished_run
    recorded = nbformat.read(run_dir / "notebooks" / "01_toy.ipynb", as_version=4)
    bar_output = recorded.cells[1].outputs[0]["data"]
    # what nbclient records: the first state
    assert course.WIDGET_VIEW in bar_output and "0%" in bar_output["text/plain"]

    docs = course.publish(run_dir, docs_dir=tmp_path / "docs", sources_dir=sources)
    nb = nbformat.read(docs / "notebooks" / "01_toy.ipynb", as_version=4)
    assert course.code_cells(nb) == TOY_CELLS and "widgets" not in nb.metadata
    bar, box, plain = (cell.outputs for cell in nb.cells[1:])
    assert all(course.WIDGET_VIEW not in o.get("data", {}) for o in bar + box)
    text = bar[0]["data"]["text/plain"]
    assert text.startswith("training: 100%|██████████| 5/5") and "<pre>" in bar[0]["data"]["text/html"]
    shown = box[0]["data"]["text/html"]
    assert "run the notebook to use it" in shown and "<b>record 1 of 3</b>" in shown and "[ok]" in shown
    assert "score:" in shown and box[0]["data"]["text/plain"].startswith("Interactive widget")
    assert plain[0]["text"] == "plain output\n"
    assert nb.cells[0].source == ("# 01 · Toy\n![the loop](../../notebooks/figures/training-loop.png) "
                                  "[solutions](../../notebooks/solutions/01_toy-solutions.ipynb) "
                                  "[data](../../data/README.md) "
                                  "[again](01_toy.ipynb#top) [web](https://example.org/a) [here](#top)")
    readme = (docs / "README.md").read_text()
    status = json.loads((run_dir / "course.json").read_text())
    assert run_dir.name in readme and "(notebooks/01_toy.ipynb)" in readme
    assert (status["commit"] or "unknown")[:12] in readme
    assert (docs / "summary.md").read_text() == (run_dir / "summary.md").read_text()


def test_publish_refuses_fast_unfinished_missing_and_changed_runs(finished_run, tmp_path):
    run_dir, sources = finished_run
    docs = tmp_path / "docs"
    with pytest.raises(course.PublishError, match="FAST run"):
        course.publish(_copy_run(run_dir, tmp_path / "20990101-000001-fast", fast=True), docs, sources)
    with pytest.raises(course.PublishError, match="unfinished"):
        course.publish(_copy_run(run_dir, tmp_path / "20990101-000002", finished=False), docs, sources)
    with pytest.raises(course.PublishError, match="No finished full course run"):
        course.publish(tmp_path / "not-a-run", docs, sources)
    changed = tmp_path / "changed"
    changed.mkdir()
    _toy_notebook(changed / "01_toy.ipynb", TOY_CELLS[:2] + ["print('other code')"])
    with pytest.raises(course.PublishError, match=r"changed since .* --redo 01"):
        course.publish(run_dir, docs, changed)
    _toy_notebook(changed / "02_more.ipynb", ["print(2)"])  # a stage the run never ran
    with pytest.raises(course.PublishError, match="not done: 02_more.ipynb"):
        course.publish(run_dir, docs, changed)
    assert not docs.exists()  # nothing was written by a refused publish


def test_cli_publish_refuses_a_fast_run_with_a_message(finished_run, tmp_path, capsys):
    from helpers.__main__ import main

    fast = _copy_run(finished_run[0], tmp_path / "20990101-000003-fast", fast=True)
    assert main(["course", "--publish", "--run-dir", str(fast)]) == 2
    assert "FAST run" in capsys.readouterr().err


def test_coalesce_streams_joins_a_streamed_answer_into_one_output():
    import nbformat

    from helpers.course import coalesce_streams

    cell = nbformat.v4.new_code_cell("chat(..., stream=True)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t)
                    for t in ["The", " sky", " is"]] + [
        nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
        nbformat.v4.new_output("stream", name="stdout", text=" blue.\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("text")])
    assert coalesce_streams(nb) == 2
    assert [(o.output_type, o.get("text")) for o in cell.outputs] == [
        ("stream", "The sky is"), ("stream", "warning\n"), ("stream", " blue.\n"), ("execute_result", None)]
