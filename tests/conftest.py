"""Shared pytest set-up: one marker per layer (``pytest -m lrn`` runs the LRN checks alone)
and a shared hypothesis profile."""
import os

from hypothesis import HealthCheck, settings

MARKERS = {
    "conv": "convolution, im2col and col2im (lesson 1)",
    "linear": "fully connected layer (lesson 6)",
    "relu": "ReLU and tanh (lesson 2)",
    "lrn": "local response normalization (lesson 3)",
    "pool": "max-pooling (lesson 4)",
    "dropout": "dropout (lesson 5)",
    "loss": "softmax cross-entropy (lesson 6)",
    "gradcheck": "the gradient-check machinery (lesson 7)",
    "modules": "the nn modules",
    "kernels": "CUDA kernels: nvcc compile and CPU emulation (lesson 8)",
    "gpu": "needs a CUDA GPU and CuPy; skipped without one",
    "model": "the AlexNet model and its two columns (lesson 9)",
    "train": "the trainer, optimizer and checkpoints (lesson 10)",
    "data": "data sets, decoding and augmentation",
    "faults": "crash safety and bad input",
    "tutorials": "the tutorials' code runs",
    "slow": "slower end-to-end runs",
    "bench": "the benchmarks run and report sane numbers (tiny sizes, nothing timed against a target)",
    "distributed": "data-parallel training over MPI (mpiexec -n 2; skipped without mpiexec unless CI=true)",
    "experiments": "the paper's comparisons (--quick runs) and its Figures 3 and 4 (lesson 11)",
    "style": "size limits: no function over 60 lines, no module over 400 (tests/test_sizes.py)",
}


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


settings.register_profile(
    "default", deadline=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", deadline=None, max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# ---- the GPU tests without a GPU: the CuPy stand-in (tests/fake_cupy/cupy) -------------------------
#
# ``--cupy auto`` (the default): the tests marked ``gpu`` run on the real CuPy when it sees a CUDA
# GPU, and otherwise on the stand-in, a test-only ``cupy`` that keeps arrays in NumPy, runs our
# kernels through the CPU emulation and refuses what a GPU refuses (tests/fake_cupy/cupy/__init__.py
# says what it checks). ``--cupy stand-in`` always uses the stand-in, ``--cupy real`` never (the
# gpu tests are then skipped without a GPU). Every other test sees no stand-in: it is put in
# ``sys.modules`` for the setup, call and teardown of a gpu test only.
import shutil
import sys

import pytest

STAND_IN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_cupy")
_stand_in_modules = {}       # "cupy", "cupy.cuda", ... -> the stand-in's modules, when it is used
_replaced = []               # what an installed stand-in replaced, to put back


def pytest_addoption(parser):
    parser.addoption("--cupy", choices=("auto", "stand-in", "real"), default="auto",
                     help="CuPy for the tests marked gpu: the real one if it sees a GPU, else the "
                          "stand-in in tests/fake_cupy (auto); always the stand-in; always the real one")


def _real_cupy_sees_a_gpu():
    from minitorch_alexnet import backend
    if backend.cuda_available():
        return True
    backend._cupy, backend._cupy_import_error = None, None
    return False


def _import_stand_in():
    """The stand-in's modules, imported as ``cupy`` without leaving them in sys.modules."""
    def cupy_entries():
        return {name: module for name, module in sys.modules.items()
                if name == "cupy" or name.startswith("cupy.")}
    real = cupy_entries()
    for name in real:
        del sys.modules[name]
    sys.path.insert(0, STAND_IN_PATH)
    try:
        import cupy
        assert getattr(cupy, "__stand_in__", False), f"{cupy.__file__} is not the stand-in"
        modules = cupy_entries()
    finally:
        sys.path.remove(STAND_IN_PATH)
        for name in cupy_entries():
            del sys.modules[name]
        sys.modules.update(real)
    return modules


def pytest_sessionstart(session):
    choice = session.config.getoption("--cupy")
    if choice == "real" or (choice == "auto" and _real_cupy_sees_a_gpu()):
        return
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        return                  # the stand-in runs the kernels through g++: skip as without a GPU
    _stand_in_modules.update(_import_stand_in())


def _install_stand_in():
    from minitorch_alexnet import backend
    _replaced.append(({name: sys.modules.get(name) for name in _stand_in_modules},
                      (backend._cupy, backend._cupy_import_error)))
    sys.modules.update(_stand_in_modules)
    backend._cupy, backend._cupy_import_error = _stand_in_modules["cupy"], None


def _remove_stand_in():
    from minitorch_alexnet import backend
    modules, (backend._cupy, backend._cupy_import_error) = _replaced.pop()
    for name, module in modules.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


def _uses_stand_in(item):
    return bool(_stand_in_modules) and item.get_closest_marker("gpu") is not None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    if _uses_stand_in(item):    # before the skip marks are evaluated: "not cuda_available()" is False
        _install_stand_in()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if _replaced:
        _remove_stand_in()


def pytest_report_header(config):
    if _stand_in_modules:
        return "gpu tests: CuPy stand-in (tests/fake_cupy), kernels through the CPU emulation"
    return None
