"""Run the code of the lessons, the way CI does.

    python tutorials/run_lessons.py                 # every lesson, figures to tutorials/figures
    python tutorials/run_lessons.py 03 07           # lessons 03 and 07 only
    MINITORCH_TUTORIAL_FULL=1 python tutorials/run_lessons.py 02   # the longer, real run

A lesson's code is every ```python fenced block of its Markdown file, run in order in one
namespace (a notebook without the notebook). Each lesson runs in a fresh Python process with

    TUTORIAL_OUT   where the lesson writes its figures (default: tutorials/figures)
    MPLBACKEND     Agg, so that matplotlib draws into files without a display
    PYTHONPATH     the repository first, so the lessons import this checkout's package
    OPENBLAS_NUM_THREADS / OMP_NUM_THREADS   1 unless set: the matrices in the lessons are
                   small, and on a busy 2-core machine BLAS threads slow them down tenfold

Tracebacks name the Markdown file and its line numbers, so an error points into the lesson.
"""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def lesson_files():
    """The lessons in order: tutorials/01_*.md ... 11_*.md."""
    return sorted(HERE.glob("[0-9][0-9]_*.md"))


def python_blocks(text):
    """(first line number, code) of every ```python block, in order."""
    blocks = []
    for match in BLOCK.finditer(text):
        first_line = text.count("\n", 0, match.start(1)) + 1
        blocks.append((first_line, match.group(1)))
    return blocks


def run_in_this_process(path):
    """Execute the lesson's blocks in one fresh namespace (line numbers kept)."""
    path = Path(path)
    namespace = {"__name__": "__lesson__", "__file__": str(path)}
    for first_line, code in python_blocks(path.read_text(encoding="utf-8")):
        # Blank lines in front keep the line numbers of the Markdown file in tracebacks.
        exec(compile("\n" * (first_line - 1) + code, str(path), "exec"), namespace)


def lesson_environment(out_dir):
    env = dict(os.environ)
    env["TUTORIAL_OUT"] = str(out_dir)
    env["MPLBACKEND"] = "Agg"
    # The package of this checkout, installed or not (sys.path[0] would be tutorials/).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_lesson(path, out_dir, timeout=None):
    """Run one lesson in a fresh interpreter; returns the ``subprocess.CompletedProcess``."""
    return subprocess.run([sys.executable, __file__, "--one", str(path)],
                          env=lesson_environment(out_dir), capture_output=True, text=True,
                          timeout=timeout, cwd=HERE.parent)


def main(argv):
    if argv[:1] == ["--one"]:
        run_in_this_process(argv[1])
        return 0
    wanted = argv
    lessons = [p for p in lesson_files() if not wanted or any(p.name.startswith(w) for w in wanted)]
    out_dir = Path(os.environ.get("TUTORIAL_OUT", HERE / "figures"))
    failed = 0
    for path in lessons:
        start = time.perf_counter()
        result = run_lesson(path, out_dir)
        seconds = time.perf_counter() - start
        print(f"{path.name:<34} {'ok' if result.returncode == 0 else 'FAILED':<7} {seconds:6.1f} s")
        if result.returncode != 0:
            failed += 1
            print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
