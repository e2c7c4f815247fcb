"""Softmax cross-entropy, averaged over the batch.

For logits z (N, K) and integer labels t (N,)::

    p[n, k] = exp(z[n, k]) / sum_m exp(z[n, m])
    loss    = (1/N) * sum_n -log p[n, t[n]] = (1/N) * sum_n (logsumexp(z[n]) - z[n, t[n]])
    dz      = (p - onehot(t)) / N

Label smoothing (Szegedy et al., 2016), ``smoothing`` = eps: the target is the mixture
q = (1 - eps) * onehot(t) + eps / K instead of onehot(t), so the network is not pushed to make
one logit infinitely larger than the others::

    loss_eps = (1/N) * sum_n sum_k -q[n, k] log p[n, k]
    dz_eps   = (p - q) / N

Stability: logsumexp(z) = max(z) + log(sum exp(z - max(z))); every exponent is <= 0, so
logits of magnitude 1e4 neither overflow nor turn the loss into nan.
"""
import numpy as np

from ..backend import get_array_module, is_cuda
from ..checks import check_float_array, check_same_device
from ._dispatch import cuda_ops


def softmax(logits):
    """Row-wise softmax of logits (N, K), computed stably."""
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = xp.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels, smoothing=0.0):
    """logits (N, K), labels (N,) of integer class indices -> ``(loss, dlogits)``.

    loss is a 0-d array of the logits' dtype (``float(loss)`` gives a Python number).
    ``smoothing`` in [0, 1): label smoothing (see the module docstring); 0 is the paper's loss.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    loss, dlogits = _cross_entropy(logits, labels)
    if smoothing:
        return _smoothed(logits, labels, smoothing, loss, dlogits)
    return loss, dlogits


def _smoothed(logits, labels, eps, loss, dlogits):
    """Label smoothing added to the plain loss and gradient, on any device.

    With q = (1 - eps) onehot(t) + eps / K and sum_k q[k] = 1:
    -sum_k q[k] log p[k] = logsumexp(z) - sum_k q[k] z[k]
                         = (logsumexp(z) - z[t]) + eps * (z[t] - mean_k z[k]),
    the plain loss plus eps times the target logit's lead over the mean logit; and
    p - q = (p - onehot(t)) + eps * (onehot(t) - 1/K). No second softmax is needed."""
    xp = get_array_module(logits)
    n, num_classes = logits.shape
    rows = xp.arange(n)
    lead = logits[rows, labels] - logits.mean(axis=1)
    loss = loss + (eps * lead.mean()).astype(logits.dtype)
    dlogits = dlogits - eps / (n * num_classes)
    dlogits[rows, labels] += eps / n
    return loss, dlogits


def _cross_entropy(logits, labels):
    """The plain loss and gradient (no smoothing), after checking the arguments."""
    check_float_array("logits", logits, ndim=2)
    if not hasattr(labels, "ndim"):
        raise ValueError(f"labels must be a NumPy or CuPy array of class indices, got {type(labels).__name__}")
    xp = get_array_module(labels)
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"labels must have shape ({logits.shape[0]},) to match logits {tuple(logits.shape)}, "
            f"got {tuple(labels.shape)}"
        )
    if not xp.issubdtype(labels.dtype, xp.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    check_same_device(logits=logits, labels=labels)
    n, num_classes = logits.shape
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels must be in [0, {num_classes - 1}], got values from {int(labels.min())} "
            f"to {int(labels.max())}"
        )
    if is_cuda(logits):
        return cuda_ops().softmax_cross_entropy(logits, labels)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum_exp = np.log(np.exp(shifted).sum(axis=1))
    rows = np.arange(n)
    loss = (log_sum_exp - shifted[rows, labels]).mean(dtype=logits.dtype)
    probabilities = np.exp(shifted - log_sum_exp[:, None])
    dlogits = probabilities
    dlogits[rows, labels] -= 1.0
    dlogits /= n
    return np.asarray(loss, dtype=logits.dtype), dlogits
