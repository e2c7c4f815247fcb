"""The CuPy stand-in itself (tests/fake_cupy/cupy): it refuses what a GPU refuses.

The gpu tests are only as good as the stand-in is strict, so each rule it enforces is checked
here: no implicit trip between host and device, no operation or kernel launch on an array of
another device, new arrays on the current device, fresh memory full of garbage (NaN), launch
shapes within CUDA's limits, kernel arguments of the kernel's C types. These tests run where
the stand-in is installed (``-m gpu`` without a GPU, see tests/conftest.py) and are skipped on
a real GPU; the last one checks that the other tests never see the stand-in.
"""
import sys

import numpy as np
import pytest

from minitorch_alexnet import backend


@pytest.fixture
def cp():
    cupy = backend.cupy_module() if backend.cuda_available() else None
    if not getattr(cupy, "__stand_in__", False):
        pytest.skip("checks the CuPy stand-in, which runs only without a real GPU")
    return cupy


@pytest.fixture
def cp2(cp):
    """The stand-in with its two devices (FAKE_CUPY_DEVICES=1 plays a one-GPU machine)."""
    if cp.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("the stand-in was given one device (FAKE_CUPY_DEVICES=1)")
    return cp


@pytest.fixture
def relu(cp):
    from minitorch_alexnet.cuda import loader
    return loader.get_kernel("relu_forward_f32")


@pytest.mark.gpu
def test_no_implicit_trip_between_host_and_device(cp):
    a = cp.arange(3, dtype=np.float32)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError, match="NumPy array"):
        a + np.ones(3, np.float32)
    with pytest.raises(TypeError, match="NumPy array"):
        np.ones(3, np.float32) * a
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        a[...] = np.ones(3, np.float32)
    host = a.get()                       # explicit trips copy: no aliasing between the two
    host[0] = 7
    assert cp.asnumpy(a)[0] == 0
    a_again = cp.asarray(host)
    host[1] = 7
    assert a_again.get().tolist() == [7, 1, 2]
    assert isinstance(a.sum(), cp.ndarray) and float(a.sum()) == 3.0   # reductions stay on the device


@pytest.mark.gpu
def test_operations_run_on_the_current_device_only(cp2):
    cp = cp2
    a = cp.ones(4)
    with cp.cuda.Device(1):
        b = cp.asarray(a)                # a device-to-device copy
        assert b.device.id == 1 and cp.zeros_like(a).device.id == 1
        with pytest.raises(ValueError, match=r"resides \(0\) is different from the current device \(1\)"):
            a * 2
        assert float((b * 2).sum()) == 8.0
    with pytest.raises(ValueError, match="current device"):
        a + b
    with pytest.raises(ValueError, match="current device"):
        cp.concatenate([a, b])
    assert b.copy().device.id == 0       # CuPy copies to the current device
    assert b[1:].device.id == 1          # a view stays where it is
    assert cp.cuda.Device().id == 0
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError):
        with cp.cuda.Device(cp.cuda.runtime.getDeviceCount()):
            pass


@pytest.mark.gpu
def test_fresh_memory_holds_garbage_and_numpy_functions_dispatch(cp):
    assert np.isnan(cp.empty((2, 3)).get()).all()
    assert (cp.empty(4, dtype=np.int32).get() == np.int32(-0x5A5A5A5B)).all()   # bytes 0xA5
    z = np.zeros_like(cp.ones(3))        # NumPy's functions dispatch to the device's
    assert isinstance(z, cp.ndarray) and z.get().tolist() == [0, 0, 0]
    with pytest.raises(TypeError):
        np.histogram(cp.ones(3))         # one the stand-in lacks: refused, not run on the host


@pytest.mark.gpu
def test_kernel_launches_are_checked(cp2, relu):
    cp = cp2
    x = cp.asarray(np.array([-1.0, 2.0], np.float32))
    y = cp.empty_like(x)
    relu((1, 1, 1), (32, 1, 1), (x, y, np.int32(2)))
    assert y.get().tolist() == [0.0, 2.0]
    with pytest.raises(TypeError, match="NumPy array is host memory"):
        relu((1, 1, 1), (32, 1, 1), (x.get(), y, np.int32(2)))
    with pytest.raises(TypeError, match="int needs int32"):
        relu((1, 1, 1), (32, 1, 1), (x, y, 2))                        # a Python int: 8 bytes
    with cp.cuda.Device(1):
        with pytest.raises(ValueError, match="lives on device 0"):
            relu((1, 1, 1), (32, 1, 1), (x, y, np.int32(2)))
    with pytest.raises(cp.cuda.driver.CUDADriverError, match="1024"):
        relu((1, 1, 1), (2048, 1, 1), (x, y, np.int32(2)))
    with pytest.raises(TypeError, match="tuple"):
        relu([1, 1, 1], (32, 1, 1), (x, y, np.int32(2)))


@pytest.mark.gpu
def test_events_time_in_milliseconds(cp):
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    end.record()
    end.synchronize()
    assert cp.cuda.get_elapsed_time(start, end) >= 0


def test_other_tests_never_see_the_stand_in():
    assert not getattr(sys.modules.get("cupy"), "__stand_in__", False)
    assert not getattr(backend._cupy, "__stand_in__", False)
