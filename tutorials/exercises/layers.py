"""AlexNet's layers, to write yourself: every function below is a stub.

Copy this file, replace each ``raise NotImplementedError`` with your code (NumPy only), and
grade it::

    cp tutorials/exercises/layers.py my_layers.py
    python -m minitorch_alexnet.grade my_layers.py            # every exercise
    python -m minitorch_alexnet.grade my_layers.py --only lrn # one of them

The signatures are those of ``minitorch_alexnet.functional``: a forward pass returns
``(y, cache)``, where the cache is whatever your backward pass needs (a tuple, a dict, an
array: your choice), and ``*_backward(dy, cache)`` returns the gradient of every input. Arrays
are NCHW (images, channels, rows, columns); weights use PyTorch's layouts. Keep the input's
dtype (float32 stays float32) and never write into an argument (``y = x * m``, not
``x *= m``): the grader checks both.

Exercises (``--only NAME``) and the lessons that explain them:

    im2col   im2col, col2im                         tutorials/01_convolution_im2col.md
    conv     conv2d_forward, conv2d_backward        tutorials/01_convolution_im2col.md
    relu     relu_forward, relu_backward            tutorials/02_relu_vs_tanh.md
    tanh     tanh_forward, tanh_backward            tutorials/02_relu_vs_tanh.md
    lrn      lrn_forward, lrn_backward              tutorials/03_local_response_normalization.md
    pool     max_pool2d_forward, _backward          tutorials/04_overlapping_max_pooling.md
    dropout  dropout_forward, dropout_backward      tutorials/05_dropout.md
    linear   linear_forward, linear_backward        tutorials/06_linear_and_softmax.md
    loss     softmax_cross_entropy                  tutorials/06_linear_and_softmax.md
    sgd      sgd_update                             tutorials/10_training_recipe.md

Throughout, the output size of a window of size K sliding with ``stride`` over a side of
length H padded by ``pad`` on both ends is OH = (H + 2*pad - K) // stride + 1.
"""
import numpy as np


# ---- lesson 1: im2col and the convolution -----------------------------------------------------

def im2col(x, kh, kw, stride, pad):
    """Copy every (C, KH, KW) window of the zero-padded x into one column.

    x: (N, C, H, W). Returns cols of shape (C*KH*KW, N*OH*OW) with

        cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*stride + i, ow*stride + j]

    where x_pad is x with ``pad`` rows and columns of zeros on every side. Then a convolution
    is one matrix product: weights (F, C*KH*KW) @ cols.
    """
    raise NotImplementedError


def col2im(cols, x_shape, kh, kw, stride, pad):
    """The adjoint (transpose) of im2col: the gradient of x from the gradient of cols.

    cols: (C*KH*KW, N*OH*OW), x_shape = (N, C, H, W). Returns dx (N, C, H, W): every entry
    cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] is ADDED to dx_pad[n, c, oh*stride + i,
    ow*stride + j] (a pixel under several windows gets the sum); the padding is cut off at
    the end.
    """
    raise NotImplementedError


def conv2d_forward(x, w, b, stride=1, pad=0, groups=1):
    """2-D convolution (the cross-correlation of deep learning, no kernel flip) with groups.

    x: (N, C, H, W), w: (F, C//groups, KH, KW), b: (F,). Returns (y, cache), y (N, F, OH, OW):

        y[n, f, oh, ow] = b[f] + sum_{c', i, j} w[f, c', i, j]
                                 * x_pad[n, g*Cg + c', oh*stride + i, ow*stride + j]

    where Cg = C // groups, filter f belongs to group g = f // (F // groups), and c' runs over
    0 .. Cg-1: group g's filters see only group g's channels (groups=2 is AlexNet's two
    columns). Hint: per group, Y_g = W_g @ im2col(x_g) with W_g = w_g.reshape(F//groups, -1).
    """
    raise NotImplementedError


def conv2d_backward(dy, cache):
    """dy: (N, F, OH, OW) -> (dx, dw, db), shaped like x, w and b.

    Per group, with cols = im2col(x_g) and dY_g = dy's group-g filters as (F//groups, N*OH*OW):

        dW_g = dY_g @ cols.T                 reshaped to (F//groups, Cg, KH, KW)
        dx_g = col2im(W_g.T @ dY_g)          (the full convolution of dy with the kernel
                                              rotated by 180 degrees, for stride 1)
        db[f] = sum over n, oh, ow of dy[n, f, oh, ow]
    """
    raise NotImplementedError


# ---- lesson 2: ReLU and tanh ------------------------------------------------------------------

def relu_forward(x):
    """y = max(0, x), any shape. Returns (y, cache)."""
    raise NotImplementedError


def relu_backward(dy, cache):
    """dx = dy where x > 0, else 0 (at the kink x == 0 the gradient is 0)."""
    raise NotImplementedError


def tanh_forward(x):
    """y = tanh(x), any shape. Returns (y, cache)."""
    raise NotImplementedError


def tanh_backward(dy, cache):
    """dx = dy * (1 - tanh(x)^2) = dy * (1 - y^2)."""
    raise NotImplementedError


# ---- lesson 3: local response normalization ---------------------------------------------------

def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """The paper's LRN across channels. x: (N, C, H, W). Returns (y, cache), y like x:

        s[c] = k + alpha * sum_{j = c - size//2}^{c + (size-1)//2} x[j]^2     (j clipped to 0..C-1)
        y[c] = x[c] * s[c]^(-beta)

    at every image and pixel. alpha is used as written in the paper, NOT divided by size
    (PyTorch and Caffe divide it).
    """
    raise NotImplementedError


def lrn_backward(dy, cache):
    """dy: (N, C, H, W) -> dx. x[c] appears in y[c] and in the denominators s[j] of every
    channel j whose window contains c, that is j = c - (size-1)//2 .. c + size//2 (clipped):

        dx[c] = dy[c] * s[c]^(-beta)
                - 2 * alpha * beta * x[c] * sum_{j: c in window(j)} dy[j] * x[j] * s[j]^(-beta-1)
    """
    raise NotImplementedError


# ---- lesson 4: overlapping max-pooling ---------------------------------------------------------

def max_pool2d_forward(x, size=3, stride=2, pad=0):
    """Max over size x size windows, overlapping when stride < size (AlexNet: 3, 2).

    x: (N, C, H, W). Returns (y, cache), y (N, C, OH, OW):

        y[n, c, oh, ow] = max_{i, j < size} x_pad[n, c, oh*stride + i, ow*stride + j]

    x_pad is padded with -inf (padding is never the maximum; pad <= size//2).
    """
    raise NotImplementedError


def max_pool2d_backward(dy, cache):
    """dy: (N, C, OH, OW) -> dx (N, C, H, W). Each window's dy goes to its maximum only;
    an input that is the maximum of several overlapping windows gets the SUM of their dy.
    Ties: the FIRST maximum in row-major window order (smallest i, then smallest j) gets it.
    """
    raise NotImplementedError


# ---- lesson 5: dropout --------------------------------------------------------------------------

def dropout_forward(x, p=0.5, training=True, rng=None):
    """Inverted dropout; p is the probability of ZEROING a unit. rng: a numpy.random.Generator.

    Training: keep = rng.random(x.shape) >= p (draw the mask from ``rng``, nothing else), and
    y = x * keep / (1 - p), so E[y] = x. p = 1 zeroes everything (return zeros, not nan).
    Not training: y = x. Returns (y, cache).
    """
    raise NotImplementedError


def dropout_backward(dy, cache):
    """dx = dy * keep / (1 - p) with the forward pass's mask; dx = dy when not training."""
    raise NotImplementedError


# ---- lesson 6: the fully connected layer and the loss ------------------------------------------

def linear_forward(x, w, b):
    """x: (N, in) or (N, ...) flattened to (N, in); w: (out, in); b: (out,).
    Returns (y, cache), y = x2 @ w.T + b of shape (N, out)."""
    raise NotImplementedError


def linear_backward(dy, cache):
    """dy: (N, out) -> (dx, dw, db): dx = dy @ w reshaped to x's shape, dw = dy.T @ x2
    (out, in), db = dy summed over the batch (out,)."""
    raise NotImplementedError


def softmax_cross_entropy(logits, labels):
    """logits: (N, K), labels: (N,) integers in 0..K-1. Returns (loss, dlogits):

        loss    = mean over n of  logsumexp(z[n]) - z[n, labels[n]]      (a scalar)
        dlogits = (softmax(z) - onehot(labels)) / N

    Stable for logits of 1e4: logsumexp(z) = m + log(sum exp(z - m)) with m = max(z).
    """
    raise NotImplementedError


# ---- lesson 10: the paper's SGD update ---------------------------------------------------------

def sgd_update(w, grad, velocity, lr, momentum=0.9, weight_decay=5e-4):
    """One step of the paper's momentum SGD. Returns (w_new, velocity_new):

        velocity_new = momentum * velocity - weight_decay * lr * w - lr * grad
        w_new        = w + velocity_new

    (Updating w and velocity in place and returning them is fine too.)
    """
    raise NotImplementedError
