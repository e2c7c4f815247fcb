"""The tutorials' code runs, and every lesson ends by pointing at the tests that check it.

Each lesson's ```python blocks run in order in a fresh interpreter (tutorials/run_lessons.py),
with figures written to a temporary folder. Lessons contain their own ``assert`` statements on
the numbers their text claims, so a lesson whose code still runs but whose claim stopped being
true fails here too.
"""
import importlib.util
import re
from pathlib import Path

import pytest

from conftest import MARKERS

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"


def _runner():
    spec = importlib.util.spec_from_file_location("run_lessons", TUTORIALS / "run_lessons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_lessons = _runner()
LESSONS = run_lessons.lesson_files()

pytestmark = pytest.mark.tutorials


def test_there_are_eleven_lessons_in_order():
    numbers = [int(p.name[:2]) for p in LESSONS]
    assert numbers == list(range(1, 12)), [p.name for p in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_code_runs(lesson, tmp_path):
    assert run_lessons.python_blocks(lesson.read_text(encoding="utf-8")), f"{lesson.name} has no code"
    result = run_lessons.run_lesson(lesson, tmp_path, timeout=600)
    assert result.returncode == 0, (
        f"{lesson.name} failed\n--- stdout ---\n{result.stdout[-4000:]}\n"
        f"--- stderr ---\n{result.stderr[-4000:]}")


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_ends_with_exercises_naming_a_marker(lesson):
    text = lesson.read_text(encoding="utf-8")
    headings = [m.start() for m in re.finditer(r"^#{1,3} ", text, re.MULTILINE)]
    last = text[headings[-1]:]
    assert last.splitlines()[0].lstrip("#").strip().lower().startswith("exercises"), (
        f"{lesson.name}: the last section must be Exercises, found {last.splitlines()[0]!r}")
    markers = re.findall(r"pytest -m ([a-z_]+)", last)
    assert markers, f"{lesson.name}: the Exercises section names no `pytest -m <marker>`"
    unknown = [m for m in markers if m not in MARKERS]
    assert not unknown, f"{lesson.name}: unknown markers {unknown}; tests/conftest.py has {sorted(MARKERS)}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_figures_are_the_ones_its_code_writes(lesson):
    """Every image the Markdown shows is one the lesson's code saves (by file name)."""
    text = lesson.read_text(encoding="utf-8")
    shown = set(re.findall(r"!\[[^\]]*\]\(figures/([\w.-]+\.png)\)", text))
    code = "\n".join(code for _, code in run_lessons.python_blocks(text))
    for name in shown:
        assert f'"{name}"' in code, f"{lesson.name} shows figures/{name} but its code never saves it"


def test_readme_maps_every_lesson_in_order():
    readme = (TUTORIALS / "README.md").read_text(encoding="utf-8")
    positions = [readme.find(f"({p.name})") for p in LESSONS]
    assert all(pos >= 0 for pos in positions), "README.md must link every lesson"
    assert positions == sorted(positions), "README.md must list the lessons in order"
