"""Every notebook is committed without outputs and follows the frame of COURSE_DESIGN.md §4."""

import re

import nbformat
import pytest

from helpers.config import REPO_ROOT

LESSONS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((REPO_ROOT / "notebooks" / "solutions").glob("*.ipynb"))
NOTEBOOKS = LESSONS + SOLUTIONS
NAME = re.compile(r"^(\d\d)_[a-z0-9]+(-[a-z0-9]+)*\.ipynb$")
TITLE = re.compile(r"^# (\d\d) · [A-Z][^\n]*$")


def read(path):
    return nbformat.read(path, as_version=4)


def test_there_are_lessons_numbered_from_01_without_gaps():
    numbers = [int(p.name[:2]) for p in LESSONS]
    assert numbers and numbers == list(range(1, len(numbers) + 1)), [p.name for p in LESSONS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(read(path).cells) if c.cell_type == "code"
             and (c.outputs or c.execution_count)]
    assert not dirty, (
        f"{path.name} carries outputs in cells {dirty}; run: .venv/bin/python scripts/strip_notebooks.py")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_file_name(path):
    assert NAME.match(path.name), f"{path.name}: use NN_verb-phrase.ipynb (lower case, hyphens)"
    assert path.stem.endswith("-solutions") == (path in SOLUTIONS), (
        f"{path.name}: solutions live in notebooks/solutions/")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_link_back_to_their_lesson(path):
    lesson = path.name.replace("-solutions", "")
    first = read(path).cells[0].source
    assert TITLE.match(first.split("\n")[0]) and f"](../{lesson})" in first, (
        f"{path.name}: title and link to ../{lesson}")


def test_the_index_lists_every_lesson_and_its_solutions():
    index = (REPO_ROOT / "notebooks" / "README.md").read_text()
    for path in LESSONS:
        assert f"]({path.name})" in index and f"](solutions/{path.stem}-solutions.ipynb)" in index, path.name


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_frame(path):
    nb = read(path)
    cells = nb.cells
    markdown = [c.source for c in cells if c.cell_type == "markdown"]
    code = [c.source for c in cells if c.cell_type == "code"]
    number = int(path.name[:2])
    assert cells[0].cell_type == "markdown" and TITLE.match(cells[0].source.split("\n")[0]), (
        f"{path.name}: the first cell starts with the title '# {number:02d} · Title'")
    intro = "\n".join(markdown[:3]).lower()
    for needed in ("what you'll learn", "what you need", "cpu"):
        assert needed in intro, f"{path.name}: the introduction must say {needed!r}"
    assert any("set_seed" in c and "pick_device" in c for c in code[:3]), "a setup cell with seed and device"
    assert any(re.search(r"\bFAST\b", c) for c in code[:4]), "a parameters cell that shows FAST"
    headings = re.findall(r"^## (.+)$", "\n".join(markdown), re.M)
    sections = [h for h in headings if re.match(rf"{number}\.\d+ ", h)]
    assert len(sections) >= 2, (
        f"{path.name}: sections '## {number}.1 …', '## {number}.2 …' expected, got {headings}")
    assert "Summary" in headings and "Exercises" in headings, (
        f"{path.name}: needs '## Summary' and '## Exercises'")
    solutions = f"solutions/{path.stem}-solutions.ipynb"
    assert (path.parent / solutions).exists(), f"{path.name}: {solutions} missing"
    assert any(f"]({solutions})" in m for m in markdown), f"{path.name}: link to {solutions} in the exercises"
    ratio = len(markdown) / max(1, len(code))
    assert ratio >= 1.4, (
        f"{path.name}: {len(markdown)} markdown cells for {len(code)} code cells; explain more")


@pytest.mark.parametrize("path", LESSONS[:-1], ids=lambda p: p.name)
def test_links_to_the_next_notebook(path):
    following = LESSONS[LESSONS.index(path) + 1].name
    assert following in read(path).cells[-1].source, f"{path.name}: last cell should link to {following}"
