"""Loading the student's file, running the exercises, printing one line each (the module
docstring of ``minitorch_alexnet.grade`` describes the command and its exit status)."""
import argparse
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from typing import NamedTuple

from . import EXERCISES
from .compare import Mismatch, NotWritten

GRADER_DIR = os.path.dirname(os.path.abspath(__file__))
PASSED, FAILED, NOT_WRITTEN = "passed", "FAILED", "not yet written"


class Result(NamedTuple):
    name: str
    status: str                     # PASSED, FAILED or NOT_WRITTEN
    detail: str = ""                # the hint, or which function is not written yet

    def line(self, width=8):
        text = self.status if self.status != FAILED else f"FAILED: {self.detail}"
        if self.status == NOT_WRITTEN and self.detail:
            text += f" ({self.detail})"
        return f"{self.name:<{width}} {' '.join(text.split())}"       # one line, always


class CannotGrade(Exception):
    """The file is missing or does not import (exit status 2)."""


def load(path):
    """Import the student's file as a module of its own."""
    path = Path(path)
    if not path.is_file():
        raise CannotGrade(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"student_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise CannotGrade(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))     # so that it may import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as error:                          # noqa: BLE001 - reported, exit 2
        raise CannotGrade(f"cannot import {path}: {_located(error, str(path.resolve()))}") from error
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def _student_frame(error, student_file):
    """The last traceback entry in the student's file (or, without one, outside the grader)."""
    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, SyntaxError) and error.lineno:
        return traceback.FrameSummary(error.filename or "?", error.lineno, "<module>")
    if student_file:
        mine = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(student_file)]
    else:
        mine = [f for f in frames if not os.path.abspath(f.filename).startswith(GRADER_DIR)]
    return mine[-1] if mine else None


def _located(error, student_file):
    """'ValueError: shapes do not match (line 57 of layers.py, in conv2d_forward)'."""
    text = f"{type(error).__name__}: {error}"
    frame = _student_frame(error, student_file)
    if frame is not None:
        text += f" (line {frame.lineno} of {os.path.basename(frame.filename)}, in {frame.name})"
    return text


def run_exercise(module, exercise):
    """One exercise's Result."""
    student_file = getattr(module, "__file__", None)
    try:
        exercise.check(module)
    except NotWritten as missing:
        return Result(exercise.name, NOT_WRITTEN, f"no function {missing} in the file")
    except NotImplementedError as error:
        frame = _student_frame(error, student_file)
        unwritten = frame.name if frame is not None else ""
        later = unwritten in exercise.functions[1:]
        return Result(exercise.name, NOT_WRITTEN, f"{unwritten}" if later else "")
    except Mismatch as wrong:
        return Result(exercise.name, FAILED, str(wrong))
    except Exception as error:                          # noqa: BLE001 - the student's bug
        return Result(exercise.name, FAILED, _located(error, student_file))
    return Result(exercise.name, PASSED)


def grade(module, names=None):
    """Results of the exercises named (all of them by default), in the lessons' order."""
    return [run_exercise(module, e) for e in EXERCISES if names is None or e.name in names]


def exit_status(results):
    """0: something attempted and all of it passed; 1: a failure, or nothing attempted."""
    attempted = [r for r in results if r.status != NOT_WRITTEN]
    if not attempted or any(r.status == FAILED for r in attempted):
        return 1
    return 0


def summary(results):
    count = {s: sum(r.status == s for r in results) for s in (PASSED, FAILED, NOT_WRITTEN)}
    text = f"{count[PASSED]} passed, {count[FAILED]} failed, {count[NOT_WRITTEN]} not yet written."
    if count[PASSED] + count[FAILED] == 0:
        text += (" Nothing graded yet: every exercise still has a function that raises "
                 "NotImplementedError.")
    return text


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m minitorch_alexnet.grade",
        description="Grade the layer exercises of tutorials/exercises/layers.py (a filled-in "
                    "copy): one line per exercise, passed, FAILED: hint, or not yet written. "
                    "Exit status 0 when every attempted exercise passes (and one was); 1 "
                    "otherwise; 2 when the file cannot be graded.")
    parser.add_argument("path", nargs="?", help="the Python file with your functions")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="grade only these exercises (repeat, or comma separated): "
                             + ", ".join(e.name for e in EXERCISES))
    parser.add_argument("--list", action="store_true", help="list the exercises and lessons")
    return parser


def _selected(only):
    """The names given to --only, checked; None for all."""
    if not only:
        return None
    names = [n.strip() for part in only for n in part.split(",") if n.strip()]
    known = [e.name for e in EXERCISES]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CannotGrade(f"unknown exercise {', '.join(unknown)}; the exercises are {', '.join(known)}")
    return set(names)


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.list:
        for e in EXERCISES:
            print(f"{e.name:<8} lesson {e.lesson}  {', '.join(e.functions)}")
        return 0
    if not args.path:
        print("error: give the path of your file (or --list)", file=sys.stderr)
        return 2
    try:
        names = _selected(args.only)
        module = load(args.path)
    except CannotGrade as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = []
    for exercise in EXERCISES:
        if names is None or exercise.name in names:
            results.append(run_exercise(module, exercise))
            print(results[-1].line(), flush=True)
    print(summary(results))
    return exit_status(results)
