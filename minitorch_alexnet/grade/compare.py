"""Comparing a student's array with the right one, and saying HOW it differs.

Every hint is computed from the numbers, never from the student's source:

1. the value itself: None, not an array, the wrong shape (transposed?), nan or inf;
2. the known wrong answers of the exercise (``variants``: the right formula with alpha divided
   by size, with the kernel not flipped, the gradient sent to the last maximum of a tie, ...):
   when the student's array equals one of them, the hint says which;
3. a constant factor (``<got, want> / <want, want>``), the sign, all zeros, a shift by one
   position along an axis;
4. always: the first index (row-major) where it differs, its value and the right one.

"Equal" is relative to the largest entry of the right answer (like
``gradcheck.relative_error``): 1e-9 in float64, 1e-4 in float32.
"""
import inspect
import warnings

import numpy as np

TOLERANCE = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}


class Mismatch(Exception):
    """A wrong answer; ``str()`` is the hint the grader prints."""


class NotWritten(Exception):
    """The student's file has no function of that name (counted as not yet written)."""


def call(module, name, *args, may_write=False, **kwargs):
    """``module.name(*args, **kwargs)`` on copies of the array arguments, with NumPy's
    warnings silenced (an overflow shows up in the values). Raises Mismatch when the function
    wrote into an argument (unless ``may_write``), NotWritten when there is no such function."""
    function = getattr(module, name, None)
    if function is None:
        raise NotWritten(name)
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = function(*copies, **kwargs)
    if not may_write:
        for position, (before, after) in enumerate(zip(args, copies)):
            if isinstance(before, np.ndarray) and not np.array_equal(before, after, equal_nan=True):
                raise Mismatch(f"{name} wrote into its argument {_parameter(function, position)}: "
                               f"change a copy instead (y = x * m, not x *= m)")
    return out


def _parameter(function, position):
    try:
        return list(inspect.signature(function).parameters)[position]
    except (TypeError, ValueError, IndexError):
        return f"number {position + 1}"


def unpack(name, out, count, what):
    """``out`` as a tuple of ``count`` values, else Mismatch naming ``what`` (e.g. "(y, cache)")."""
    if not isinstance(out, (tuple, list)) or len(out) != count:
        got = f"a {type(out).__name__}" if not isinstance(out, (tuple, list)) else f"{len(out)} values"
        raise Mismatch(f"{name} must return {what}, returned {got}")
    return tuple(out)


def differs(got, want, tol):
    """Boolean array: where |got - want| > tol * max|want| (nan counts as different)."""
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-12)
    with np.errstate(invalid="ignore", over="ignore"):
        return ~(np.abs(got - want) <= tol * scale)


def same(got, want, tol):
    return np.shape(got) == np.shape(want) and not differs(got, want, tol).any()


def first_difference(name, got, want, tol):
    """'first differs at dx[0, 1, 2, 3]: 0.5 instead of 0.25 (3 of 96 entries differ)'."""
    bad = differs(got, want, tol)
    index = np.unravel_index(int(np.argmax(bad.reshape(-1))), want.shape) if want.ndim else ()
    where = f"{name}[{', '.join(str(int(i)) for i in index)}]" if want.ndim else name
    return (f"first differs at {where}: {float(got[index]):.6g} instead of {float(want[index]):.6g}"
            f" ({int(bad.sum())} of {bad.size} entries differ)")


def as_array(value):
    """value as a NumPy array of numbers, or a phrase saying what it is instead."""
    if value is None:
        return None, "is None (a missing return?)"
    try:
        array = np.asarray(value)
    except Exception:                                      # noqa: BLE001 - anything odd
        array = None
    if array is None or array.dtype.kind not in "fiub":
        return None, f"is a {type(value).__name__}, expected an array of numbers"
    return array, None


def _shape_phrase(got, want):
    phrase = f"has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    if sorted(got.shape) == sorted(want.shape):
        phrase += " (the same axes in another order: transposed?)"
    elif got.size == want.size:
        phrase += " (as many entries: a reshape missing?)"
    return phrase


def _factor_phrase(got, want, tol):
    """'the sign is wrong' / 'off by a constant factor 0.2 (1/5)' / None."""
    norm = float(np.sum(want * want))
    if norm == 0.0:
        return None
    ratio = float(np.sum(got * want)) / norm
    if not same(got, ratio * want, tol):
        return None
    if abs(ratio + 1.0) < 1e-6:
        return "the sign is wrong (it is minus the right answer)"
    inverse = f" (1/{1 / ratio:.6g})" if abs(ratio) < 1 else ""
    return f"off by a constant factor: {ratio:.6g}{inverse} times the right answer"


def _shift_phrase(got, want, tol, axes):
    """'shifted by one along w: ...' when got[i] == want[i - s] wherever both exist."""
    for axis in range(want.ndim):
        if want.shape[axis] < 3:
            continue
        for step in (1, -1):
            head = [slice(None)] * want.ndim
            tail = [slice(None)] * want.ndim
            head[axis], tail[axis] = (slice(step, None), slice(None, -step)) if step > 0 else \
                (slice(None, step), slice(-step, None))
            if same(got[tuple(head)], want[tuple(tail)], tol):
                name = axes[axis] if axes and axis < len(axes) else f"axis {axis}"
                return (f"shifted by {step:+d} along {name}: entry i holds the right value of "
                        f"entry i{-step:+d}")
    return None


def problem(got, want, variants=(), dtype=None, axes=None, nonfinite=None):
    """A phrase saying how ``got`` differs from ``want`` ("has shape ...", "equals ...; first
    differs at ..."), or None when it is right. ``variants``: (phrase, array) pairs, the known
    wrong answers; ``dtype``: the dtype ``got`` must keep; ``nonfinite``: the phrase for a
    nan or inf where the right answer is finite."""
    array, phrase = as_array(got)
    if phrase:
        return phrase
    want = np.asarray(want)
    if array.shape != want.shape:
        return _shape_phrase(array, want)
    tol = TOLERANCE.get(np.dtype(dtype) if dtype is not None else want.dtype, 1e-9)
    g, w = array.astype(np.float64), want.astype(np.float64)
    if not differs(g, w, tol).any():
        if dtype is not None and array.dtype != np.dtype(dtype):
            return f"has dtype {array.dtype}, expected {np.dtype(dtype)} (keep the input's dtype)"
        return None
    return _explain(g, w, tol, variants, axes, nonfinite)


def _explain(g, w, tol, variants, axes, nonfinite):
    where = first_difference("{name}", g, w, tol)
    for phrase, value in variants:
        if value is not None and same(g, np.asarray(value, np.float64), tol):
            return f"{phrase}; {where}"
    if np.isfinite(w).all() and not np.isfinite(g).all():
        kind = "nan" if np.isnan(g).any() else "inf"
        return f"{nonfinite or f'has {kind} entries (an overflow?)'}; {where}"
    if not g.any():
        return f"is all zeros; {where}"
    for explain in (_factor_phrase(g, w, tol), _shift_phrase(g, w, tol, axes)):
        if explain:
            return f"{explain}; {where}"
    return where


def expect(function, outputs, case):
    """Check a function's outputs: ``outputs`` is a list of (name, got, want, options) with
    options for ``problem``. Raises Mismatch for the first wrong one, naming which of the
    others are right: 'conv2d_backward: dx wrong (dw and db right): ... [case]'."""
    found = [(name, problem(got, want, **options)) for name, got, want, options in outputs]
    wrong = [(name, phrase) for name, phrase in found if phrase]
    if not wrong:
        return
    name, phrase = wrong[0]
    right = [n for n, p in found if not p]
    also = [n for n, p in wrong[1:]]
    notes = []
    if also:
        notes.append(f"{_join(also)} also wrong")
    if right:
        notes.append(f"{_join(right)} right")
    note = f" ({', '.join(notes)})" if notes else ""
    raise Mismatch(f"{function}: {name} wrong{note}: {phrase.replace('{name}', name)} [{case}]")


def _join(names):
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def shape_text(**arrays_and_values):
    """'x (2, 3, 6, 6), stride 1' from x=array, stride=1: the case a hint refers to."""
    parts = []
    for key, value in arrays_and_values.items():
        shown = tuple(value.shape) if isinstance(value, np.ndarray) else value
        parts.append(f"{key} {shown}")
    return ", ".join(parts)
