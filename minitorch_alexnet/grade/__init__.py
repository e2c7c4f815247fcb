"""Grade a student's layer functions: ``python -m minitorch_alexnet.grade PATH``.

A student copies ``tutorials/exercises/layers.py`` (every function a stub that raises
``NotImplementedError``), fills functions in, and runs::

    python -m minitorch_alexnet.grade my_layers.py              # every exercise
    python -m minitorch_alexnet.grade my_layers.py --only lrn   # one (repeat, or lrn,pool)
    python -m minitorch_alexnet.grade --list                    # the exercises and lessons

It prints one line per exercise: ``passed``, ``FAILED: <hint>`` or ``not yet written``, then
a count. Each exercise runs the checks the project's own tests make, on fixed and seeded
random small shapes (no pytest or hypothesis needed): shapes and dtypes (float32 and float64
kept), forward values against ``minitorch_alexnet.functional`` (itself tested against the
naive loops of tests/reference.py), every gradient against the right one and against centred
differences of the student's own forward pass in float64, and the edge cases: ties and -inf
padding in max-pooling, clipped and even-sized LRN windows, p = 0 and p = 1 in dropout,
logits of 1e4, and that no function writes into its arguments.

A hint is computed from the numbers, never from the source: the grader also computes the
classic wrong answers (alpha divided by size, the kernel not flipped, the gradient of a tie
sent to the last maximum, no 1/(1-p), ...) and says which one the answer equals; otherwise a
constant factor, the sign or a shift by one; always which output is wrong (and which are
right) and the first index where it differs, with the case it was given.

``not yet written``: a ``NotImplementedError`` raised anywhere in the exercise (or a function
missing from the file). Any other exception fails the exercise with its type, message and
the line of the student's file it came from.

Exit status: 0 when at least one exercise was attempted and every attempted one passed;
1 when one failed, or when none was attempted (an untouched copy of the stubs passes
nothing); 2 when the file cannot be graded (missing, not importable, an unknown ``--only``
name).
"""
from typing import Callable, NamedTuple, Tuple

from .ex_conv import check_conv, check_im2col
from .ex_layers import check_lrn, check_relu, check_tanh
from .ex_pool import check_pool
from .ex_training import check_dropout, check_linear, check_loss, check_sgd


class Exercise(NamedTuple):
    name: str                       # what --only takes
    lesson: str                     # tutorials/NN_*.md
    functions: Tuple[str, ...]      # what the student writes, in the order they are graded
    check: Callable                 # check(module): raises compare.Mismatch with the hint


EXERCISES = [
    Exercise("im2col", "01", ("im2col", "col2im"), check_im2col),
    Exercise("conv", "01", ("conv2d_forward", "conv2d_backward"), check_conv),
    Exercise("relu", "02", ("relu_forward", "relu_backward"), check_relu),
    Exercise("tanh", "02", ("tanh_forward", "tanh_backward"), check_tanh),
    Exercise("lrn", "03", ("lrn_forward", "lrn_backward"), check_lrn),
    Exercise("pool", "04", ("max_pool2d_forward", "max_pool2d_backward"), check_pool),
    Exercise("dropout", "05", ("dropout_forward", "dropout_backward"), check_dropout),
    Exercise("linear", "06", ("linear_forward", "linear_backward"), check_linear),
    Exercise("loss", "06", ("softmax_cross_entropy",), check_loss),
    Exercise("sgd", "10", ("sgd_update",), check_sgd),
]


def main(argv=None):
    """The command line (see the module docstring); returns the exit status."""
    from .cli import main as cli_main
    return cli_main(argv)


__all__ = ["EXERCISES", "Exercise", "main"]
