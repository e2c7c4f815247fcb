"""The package's own answers to tutorials/exercises/layers.py, in the stubs' signatures, so
that the grader can grade them (tests/test_grade.py expects every exercise to pass):

    python -m minitorch_alexnet.grade tests/exercise_answers.py

Each function calls ``minitorch_alexnet.functional``; ``sgd_update`` runs the package's
``optim.SGD`` on a one-parameter model.
"""
import numpy as np

from minitorch_alexnet import functional as F
from minitorch_alexnet.optim import SGD


def im2col(x, kh, kw, stride, pad):
    return F.im2col(x, kh, kw, stride, pad)


def col2im(cols, x_shape, kh, kw, stride, pad):
    return F.col2im(cols, x_shape, kh, kw, stride, pad)


def conv2d_forward(x, w, b, stride=1, pad=0, groups=1):
    return F.conv2d_forward(x, w, b, stride=stride, pad=pad, groups=groups)


def conv2d_backward(dy, cache):
    return F.conv2d_backward(dy, cache)


def relu_forward(x):
    return F.relu_forward(x)


def relu_backward(dy, cache):
    return F.relu_backward(dy, cache)


def tanh_forward(x):
    return F.tanh_forward(x)


def tanh_backward(dy, cache):
    return F.tanh_backward(dy, cache)


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    return F.lrn_forward(x, size=size, alpha=alpha, beta=beta, k=k)


def lrn_backward(dy, cache):
    return F.lrn_backward(dy, cache)


def max_pool2d_forward(x, size=3, stride=2, pad=0):
    return F.max_pool2d_forward(x, size=size, stride=stride, pad=pad)


def max_pool2d_backward(dy, cache):
    return F.max_pool2d_backward(dy, cache)


def dropout_forward(x, p=0.5, training=True, rng=None):
    return F.dropout_forward(x, p=p, training=training, rng=rng)


def dropout_backward(dy, cache):
    return F.dropout_backward(dy, cache)


def linear_forward(x, w, b):
    return F.linear_forward(x, w, b)


def linear_backward(dy, cache):
    return F.linear_backward(dy, cache)


def softmax_cross_entropy(logits, labels):
    return F.softmax_cross_entropy(logits, labels)


class _OneWeight:
    """What ``SGD`` asks of a model: ``parameters()`` yields (name, column, param, grad)."""

    def __init__(self, w, grad):
        self.w, self.grad = w, grad

    def parameters(self):
        yield "w", 0, self.w, self.grad


def sgd_update(w, grad, velocity, lr, momentum=0.9, weight_decay=5e-4):
    model = _OneWeight(np.array(w, copy=True), grad)
    optimizer = SGD(model, lr=lr, momentum=momentum, weight_decay=weight_decay)
    optimizer.velocity[("w", 0)] = np.array(velocity, copy=True)
    optimizer.step()
    return model.w, optimizer.velocity[("w", 0)]
