"""The exercise grader (``python -m minitorch_alexnet.grade``), graded itself.

- the package's own answers (tests/exercise_answers.py) pass every exercise, exit status 0;
- the untouched stubs (tutorials/exercises/layers.py) are "not yet written" everywhere;
- typical wrong answers, written here the way a student would get them wrong, each fail
  with the hint that names the mistake: LRN with alpha/n, the gradient of a tie sent to the
  last maximum, dropout without rescaling, softmax without the max shift, conv backward with
  the kernel not flipped or dw transposed, weight decay without the learning rate, and more;
- the command line: --only, --list, a missing or unimportable file (exit status 2).

A wrong answer is the package's module with one or two functions replaced (a namespace
handed to ``run_exercise``), so every case runs in well under a second.
"""
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import exercise_answers as answers
from minitorch_alexnet import functional as F
from minitorch_alexnet.grade import EXERCISES, cli

pytestmark = pytest.mark.gradcheck

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "tutorials" / "exercises" / "layers.py"
ANSWERS = Path(answers.__file__)
NAMES = ["im2col", "conv", "relu", "tanh", "lrn", "pool", "dropout", "linear", "loss", "sgd"]


def grade(name, **replaced):
    """The Result of exercise ``name`` for the package's answers with functions replaced."""
    module = types.SimpleNamespace(**{k: v for k, v in vars(answers).items() if not k.startswith("__")})
    for key, function in replaced.items():
        setattr(module, key, function)
    exercise = next(e for e in EXERCISES if e.name == name)
    return cli.run_exercise(module, exercise)


def assert_failed(result, *phrases):
    assert result.status == cli.FAILED, result
    for phrase in phrases:
        assert phrase in result.detail, f"{phrase!r} not in the hint: {result.detail}"


# --- the right answers, the stubs, the command line -------------------------------------------

def test_the_exercise_names_and_lessons():
    assert [e.name for e in EXERCISES] == NAMES
    assert [e.lesson for e in EXERCISES] == ["01", "01", "02", "02", "03", "04", "05", "06", "06", "10"]


def test_the_package_answers_pass_every_exercise(capsys):
    assert cli.main([str(ANSWERS)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:10]] == NAMES
    assert all(line.split()[1] == "passed" for line in lines[:10]), lines
    assert lines[-1].startswith("10 passed, 0 failed, 0 not yet written")


def test_the_untouched_stubs_are_not_yet_written(capsys):
    assert cli.main([str(STUBS)]) == 1                    # nothing attempted: not a success
    lines = capsys.readouterr().out.splitlines()
    assert all(line.split(None, 1)[1] == "not yet written" for line in lines[:10]), lines
    assert "Nothing graded yet" in lines[-1]


def test_every_stub_has_a_docstring_and_raises_not_implemented():
    namespace = {}
    exec(compile(STUBS.read_text(encoding="utf-8"), str(STUBS), "exec"), namespace)
    for exercise in EXERCISES:
        for name in exercise.functions:
            assert namespace[name].__doc__, name
            with pytest.raises(NotImplementedError):
                namespace[name](*([None] * namespace[name].__code__.co_argcount))


def test_the_command_line_only_and_list():
    run = [sys.executable, "-m", "minitorch_alexnet.grade"]
    done = subprocess.run(run + [str(ANSWERS), "--only", "lrn", "--only", "pool,relu"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()[:3]] == ["relu", "lrn", "pool"]
    assert "3 passed, 0 failed" in done.stdout
    listed = subprocess.run(run + ["--list"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert listed.returncode == 0
    assert "lrn      lesson 03" in listed.stdout and "sgd      lesson 10  sgd_update" in listed.stdout


def test_a_missing_or_unimportable_file_or_unknown_name_exits_2(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nowhere.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy as np\n\ndef relu_forward(x)\n    return x\n", encoding="utf-8")
    assert cli.main([str(broken)]) == 2
    err = capsys.readouterr().err
    assert "cannot import" in err and "SyntaxError" in err and "line 3" in err
    assert cli.main([str(ANSWERS), "--only", "lrn,convolution"]) == 2
    assert "unknown exercise convolution" in capsys.readouterr().err


def test_an_exception_names_the_line_and_a_later_stub_is_not_yet_written(tmp_path, capsys):
    mine = tmp_path / "mine.py"
    mine.write_text(
        "import numpy as np\n\n"
        "def relu_forward(x):\n    return np.maximum(x, 0), x\n\n"
        "def relu_backward(dy, cache):\n    return dy * cache.mask\n\n"
        "def tanh_forward(x):\n    y = np.tanh(x)\n    return y, y\n\n"
        "def tanh_backward(dy, cache):\n    raise NotImplementedError\n", encoding="utf-8")
    assert cli.main([str(mine), "--only", "relu,tanh,lrn"]) == 1
    out = capsys.readouterr().out
    assert "relu     FAILED: AttributeError" in out and "(line 7 of mine.py, in relu_backward)" in out
    assert "tanh     not yet written (tanh_backward)" in out
    assert "lrn      not yet written (no function lrn_forward in the file)" in out


def test_exit_status_0_when_the_attempted_exercises_pass(tmp_path):
    mine = tmp_path / "mine.py"
    mine.write_text("import numpy as np\n\ndef tanh_forward(x):\n    y = np.tanh(x)\n    return y, y\n\n"
                    "def tanh_backward(dy, y):\n    return dy * (1 - y * y)\n", encoding="utf-8")
    assert cli.main([str(mine)]) == 0


# --- the typical wrong answers of the issue ----------------------------------------------------

@pytest.mark.lrn
def test_lrn_with_alpha_divided_by_size():
    def forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
        return F.lrn_forward(x, size=size, alpha=alpha / size, beta=beta, k=k)
    assert_failed(grade("lrn", lrn_forward=forward), "lrn_forward: y wrong",
                  "alpha divided by size", "first differs at y[")


@pytest.mark.lrn
def test_lrn_backward_without_the_cross_channel_term():
    def forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
        y, cache = F.lrn_forward(x, size=size, alpha=alpha, beta=beta, k=k)
        return y, cache.s ** -beta
    assert_failed(grade("lrn", lrn_forward=forward, lrn_backward=lambda dy, s_pow: dy * s_pow),
                  "lrn_backward: dx wrong", "cross-channel term is missing")


def _lrn_by_channels(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """A student's LRN forward: the cache keeps what a loop-written backward needs."""
    y, cache = F.lrn_forward(x, size=size, alpha=alpha, beta=beta, k=k)
    return y, (x, k, size, alpha, beta)


def _lrn_backward(dy, cache, alpha_over_n=False, mirrored=True):
    """The formula of lesson 3 with a loop over channels, and two classic mistakes."""
    x, k, size, alpha, beta = cache
    alpha = alpha / size if alpha_over_n else alpha
    channels = x.shape[1]
    s = np.stack([k + alpha * (x[:, max(0, c - size // 2):c + (size - 1) // 2 + 1] ** 2).sum(axis=1)
                  for c in range(channels)], axis=1)
    t = dy * x * s ** (-beta - 1)
    before, after = ((size - 1) // 2, size // 2) if mirrored else (size // 2, (size - 1) // 2)
    spread = np.stack([t[:, max(0, c - before):c + after + 1].sum(axis=1) for c in range(channels)], axis=1)
    return dy * s ** -beta - 2 * alpha * beta * x * spread


@pytest.mark.lrn
def test_lrn_backward_by_loops_passes_and_its_mistakes_are_named():
    assert grade("lrn", lrn_forward=_lrn_by_channels, lrn_backward=_lrn_backward).status == cli.PASSED
    assert_failed(grade("lrn", lrn_forward=_lrn_by_channels,
                        lrn_backward=lambda dy, cache: _lrn_backward(dy, cache, alpha_over_n=True)),
                  "lrn_backward: dx wrong", "alpha divided by size")
    assert_failed(grade("lrn", lrn_forward=_lrn_by_channels,
                        lrn_backward=lambda dy, cache: _lrn_backward(dy, cache, mirrored=False)),
                  "lrn_backward: dx wrong", "mirrored window", "size 4")


def _pool_last_maximum(x, size=3, stride=2, pad=0, last=True):
    """Max-pooling by loops that keeps the LAST maximum of a tie (>= instead of >)."""
    n, c, h, w = x.shape
    padded = np.full((n, c, h + 2 * pad, w + 2 * pad), -np.inf, dtype=x.dtype)
    padded[:, :, pad:pad + h, pad:pad + w] = x
    out_h, out_w = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    y = np.empty((n, c, out_h, out_w), dtype=x.dtype)
    where = {}
    for index in np.ndindex(n, c, out_h, out_w):
        best = -np.inf
        for i in range(size):
            for j in range(size):
                value = padded[index[0], index[1], index[2] * stride + i, index[3] * stride + j]
                if value > best or (last and value == best):
                    best, where[index] = value, (index[2] * stride + i, index[3] * stride + j)
        y[index] = best
    return y, (padded.shape, pad, where)


def _pool_backward(dy, cache, add=True):
    shape, pad, where = cache
    dx = np.zeros(shape, dtype=dy.dtype)
    for index, (row, col) in where.items():
        dx[index[0], index[1], row, col] = dy[index] + (dx[index[0], index[1], row, col] if add else 0)
    return dx[:, :, pad:shape[2] - pad, pad:shape[3] - pad]


@pytest.mark.pool
def test_pool_gradient_of_a_tie_to_the_last_maximum():
    assert_failed(grade("pool", max_pool2d_forward=_pool_last_maximum, max_pool2d_backward=_pool_backward),
                  "max_pool2d_backward: dx wrong", "LAST maximum", "many ties", "first differs at dx[")


@pytest.mark.pool
def test_pool_loops_that_are_right_pass_and_overwriting_is_caught():
    def first(x, size=3, stride=2, pad=0):
        return _pool_last_maximum(x, size, stride, pad, last=False)
    assert grade("pool", max_pool2d_forward=first, max_pool2d_backward=_pool_backward).status == cli.PASSED
    assert_failed(grade("pool", max_pool2d_forward=first,
                        max_pool2d_backward=lambda dy, cache: _pool_backward(dy, cache, add=False)),
                  "max_pool2d_backward: dx wrong", "SUM of their gradients (+=)", "distinct values")


@pytest.mark.pool
def test_pool_with_zero_padding():
    def forward(x, size=3, stride=2, pad=0):
        padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))      # zeros
        y, cache = F.max_pool2d_forward(padded, size=size, stride=stride, pad=0)
        return y, (cache, pad)

    def backward(dy, cache_and_pad):
        cache, pad = cache_and_pad
        dx = F.max_pool2d_backward(dy, cache)
        return dx[:, :, pad:dx.shape[2] - pad, pad:dx.shape[3] - pad]
    assert_failed(grade("pool", max_pool2d_forward=forward, max_pool2d_backward=backward),
                  "max_pool2d_forward: y wrong",
                  "zero padding", "-inf", "all negative")


@pytest.mark.dropout
def test_dropout_without_rescaling():
    def forward(x, p=0.5, training=True, rng=None):
        if not training:
            return x.copy(), None
        keep = rng.random(x.shape) >= p
        return x * keep, keep

    def backward(dy, keep):
        return dy.copy() if keep is None else dy * keep
    assert_failed(grade("dropout", dropout_forward=forward, dropout_backward=backward),
                  "dropout_forward: y wrong", "not scaled by 1/(1-p)")


@pytest.mark.dropout
def test_dropout_backward_that_draws_a_new_mask():
    def backward(dy, cache):
        keep = np.random.default_rng(123).random(dy.shape) >= 0.5
        return dy * keep * 2.0 if cache.mask is not None else dy.copy()
    assert_failed(grade("dropout", dropout_backward=backward), "dropout_backward: dx wrong",
                  "reuse the forward pass's mask")


@pytest.mark.dropout
def test_dropout_keeping_with_probability_p():
    def forward(x, p=0.5, training=True, rng=None):
        return F.dropout_forward(x, p=1 - p, training=training, rng=rng)
    assert_failed(grade("dropout", dropout_forward=forward), "dropout_forward: y wrong",
                  "scaled by 1/p; p is the probability of zeroing")


@pytest.mark.dropout
def test_dropout_keeping_with_probability_p_scaled_right():
    def forward(x, p=0.5, training=True, rng=None):
        if not training or p in (0.0, 1.0):
            return F.dropout_forward(x, p=p, training=training, rng=rng)
        keep = rng.random(x.shape) < p
        y = x * keep / (1 - p)
        return y, F.dropout_forward(x, p=0.0)[1]._replace(mask=keep / (1 - p))
    assert_failed(grade("dropout", dropout_forward=forward), "kept with probability p",
                  "probability of ZEROING")


@pytest.mark.dropout
def test_dropout_with_p_1_gives_nan():
    def forward(x, p=0.5, training=True, rng=None):
        if not training:
            return x.copy(), None
        mask = (rng.random(x.shape) >= p) * (1.0 / (1.0 - p) if p < 1 else np.inf)
        mask = mask.astype(x.dtype)
        return x * mask, mask

    def backward(dy, mask):
        return dy.copy() if mask is None else dy * mask
    assert_failed(grade("dropout", dropout_forward=forward, dropout_backward=backward),
                  "y has nan or inf entries", "p = 1", "p 1.0")


@pytest.mark.loss
def test_softmax_without_the_max_shift():
    def loss(logits, labels):
        e = np.exp(logits)
        p = e / e.sum(axis=1, keepdims=True)
        rows = np.arange(len(labels))
        dlogits = p.copy()
        dlogits[rows, labels] -= 1
        return -np.log(p[rows, labels]).mean(), dlogits / len(labels)
    assert_failed(grade("loss", softmax_cross_entropy=loss), "loss wrong", "logits of magnitude 1e4",
                  "Subtract each row's maximum", "|logits| ~ 10000")


@pytest.mark.loss
def test_loss_gradient_not_divided_by_n():
    def loss(logits, labels):
        value, dlogits = F.softmax_cross_entropy(logits, labels)
        return value, dlogits * len(labels)
    assert_failed(grade("loss", softmax_cross_entropy=loss), "dlogits wrong (loss right)", "divide by N")


@pytest.mark.conv
def test_conv_backward_with_the_kernel_not_flipped():
    def backward(dy, cache):
        _, dw, db = F.conv2d_backward(dy, cache)
        flipped = np.ascontiguousarray(cache.w[:, :, ::-1, ::-1])
        dx = F.conv2d_backward(dy, cache._replace(w=flipped, cols=None))[0]
        return dx, dw, db
    assert_failed(grade("conv", conv2d_backward=backward), "conv2d_backward: dx wrong (dw and db right)",
                  "kernel not flipped", "first differs at dx[")


@pytest.mark.conv
def test_conv_backward_with_dw_transposed():
    def backward(dy, cache):
        dx, dw, db = F.conv2d_backward(dy, cache)
        return dx, np.ascontiguousarray(dw.swapaxes(2, 3)), db
    assert_failed(grade("conv", conv2d_backward=backward), "dw wrong (dx and db right)",
                  "kernel axes transposed")


@pytest.mark.conv
def test_conv_forward_as_a_true_convolution():
    def forward(x, w, b, stride=1, pad=0, groups=1):
        return F.conv2d_forward(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, stride, pad, groups)
    assert_failed(grade("conv", conv2d_forward=forward), "conv2d_forward: y wrong", "true convolution")


@pytest.mark.conv
def test_conv_forward_whose_groups_all_read_the_first_channels():
    def forward(x, w, b, stride=1, pad=0, groups=1):
        first = np.concatenate([x[:, :w.shape[1]]] * groups, axis=1)
        return F.conv2d_forward(first, w, b, stride, pad, groups)
    assert_failed(grade("conv", conv2d_forward=forward), "conv2d_forward: y wrong",
                  "FIRST group's channels", "groups 2")


@pytest.mark.conv
def test_col2im_that_overwrites_instead_of_adding():
    def col2im(cols, x_shape, kh, kw, stride, pad):
        n, c, h, w = x_shape
        oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
        dx = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
        blocks = cols.reshape(c, kh, kw, n, oh, ow)
        for i in range(kh):
            for j in range(kw):
                window = blocks[:, i, j].transpose(1, 0, 2, 3)
                dx[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] = window      # not +=
        return dx[:, :, pad:pad + h, pad:pad + w]
    assert_failed(grade("im2col", col2im=col2im), "col2im: dx wrong only at pixels covered by several",
                  "(+=)")


@pytest.mark.conv
def test_im2col_rows_in_the_wrong_order():
    def im2col(x, kh, kw, stride, pad):
        cols = F.im2col(x, kh, kw, stride, pad)
        return cols.reshape(x.shape[1], kh, kw, -1).transpose(1, 2, 0, 3).reshape(cols.shape)
    assert_failed(grade("im2col", im2col=im2col), "im2col: cols wrong", "(i, j, c)")


@pytest.mark.train
def test_weight_decay_without_the_learning_rate():
    def sgd(w, grad, velocity, lr, momentum=0.9, weight_decay=5e-4):
        velocity = momentum * velocity - weight_decay * w - lr * grad
        return w + velocity, velocity
    assert_failed(grade("sgd", sgd_update=sgd), "sgd_update: velocity wrong (w also wrong)",
                  "not multiplied by the learning rate")


@pytest.mark.train
def test_sgd_moving_w_by_the_old_velocity():
    def sgd(w, grad, velocity, lr, momentum=0.9, weight_decay=5e-4):
        return w + velocity, momentum * velocity - weight_decay * lr * w - lr * grad
    assert_failed(grade("sgd", sgd_update=sgd), "w wrong (velocity right)", "OLD velocity")


@pytest.mark.relu
def test_relu_and_tanh_mistakes():
    def relu_backward(dy, y):
        return dy * (y >= 0)                 # y >= 0 everywhere: the mask is lost

    def tanh_forward(x):
        return np.tanh(x), x

    assert_failed(grade("relu", relu_backward=relu_backward), "relu_backward: dx wrong", "mask is missing")
    assert_failed(grade("tanh", tanh_forward=tanh_forward,
                        tanh_backward=lambda dy, x: dy * (1 - x * x)), "1 - tanh(x)^2")


@pytest.mark.linear
def test_linear_dw_transposed_and_db_averaged():
    def transposed(dy, cache):
        dx, dw, db = F.linear_backward(dy, cache)
        return dx, dw.T, db

    def averaged(dy, cache):
        dx, dw, db = F.linear_backward(dy, cache)
        return dx, dw, db / dy.shape[0]
    assert_failed(grade("linear", linear_backward=transposed), "dw wrong (dx and db right)", "transposed")
    assert_failed(grade("linear", linear_backward=averaged), "db wrong (dx and dw right)", "the sum")


def test_centred_differences_of_the_students_own_forward_pass():
    from minitorch_alexnet.grade.compare import Mismatch
    from minitorch_alexnet.grade.gradients import check_backward
    module = types.SimpleNamespace(forward=lambda x: (x ** 3, x), backward=lambda dy, x: 3 * x * x * dy)
    x = np.random.default_rng(0).standard_normal((4, 5))
    check_backward(module, "forward", "backward", {"x": x}, {}, "x (4, 5)")
    module.backward = lambda dy, x: 3 * x * dy
    with pytest.raises(Mismatch, match="backward: dx disagrees with centred differences of your forward"):
        check_backward(module, "forward", "backward", {"x": x}, {}, "x (4, 5)")


def test_writing_into_an_argument_is_caught():
    def relu_forward(x):
        np.maximum(x, 0, out=x)
        return x, x
    assert_failed(grade("relu", relu_forward=relu_forward), "relu_forward wrote into its argument x")


def test_a_constant_factor_and_the_sign_are_named():
    def half(dy, cache):
        return F.tanh_backward(dy, cache) * 0.5

    def minus(dy, cache):
        return -F.tanh_backward(dy, cache)
    assert_failed(grade("tanh", tanh_backward=half), "constant factor: 0.5 (1/2)")
    assert_failed(grade("tanh", tanh_backward=minus), "the sign is wrong")
