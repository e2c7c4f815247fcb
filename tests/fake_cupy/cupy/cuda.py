"""``cupy.cuda`` of the stand-in: devices, the runtime's queries, streams and events.

Devices: ``DEVICE_COUNT`` of them (2, or ``$FAKE_CUPY_DEVICES``). The current device is kept
per thread, as CUDA keeps it, starts at 0 and is changed by ``with Device(n):`` (restored on
exit) or ``Device(n).use()``. Arrays made by the stand-in's functions live on the current
device, and an operation refuses an array of another one (see ``cupy/__init__.py``).

Streams and events are ordered no-ops: every operation has finished when its Python call
returns, so ``synchronize`` has nothing to wait for; an event remembers when it was recorded,
so ``get_elapsed_time`` gives wall-clock milliseconds.
"""
import os
import threading
import time

DEVICE_COUNT = int(os.environ.get("FAKE_CUPY_DEVICES", "2"))

_state = threading.local()


def get_device_id():
    """The current device of this thread (0 until a ``Device`` is entered or used)."""
    return getattr(_state, "device", 0)


class CUDARuntimeError(RuntimeError):
    """Raised for a device number past the last device, as cudaSetDevice would fail."""


class CUDADriverError(RuntimeError):
    """Raised for a bad kernel launch (grid or block out of range, unknown kernel name)."""


def _check_id(device_id):
    if not isinstance(device_id, int) or not 0 <= device_id < DEVICE_COUNT:
        raise CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {device_id!r} "
                               f"(the stand-in has {DEVICE_COUNT} devices)")


class Device:
    """``Device()`` is the current device; ``Device(n)`` device n. A context manager that makes
    itself current and restores the previous device on exit."""

    def __init__(self, device=None):
        self.id = get_device_id() if device is None else int(device)
        self._previous = []

    def __enter__(self):
        _check_id(self.id)
        self._previous.append(get_device_id())
        _state.device = self.id
        return self

    def __exit__(self, *exc_info):
        _state.device = self._previous.pop()
        return False

    def use(self):
        _check_id(self.id)
        _state.device = self.id

    def synchronize(self):
        pass

    @property
    def compute_capability(self):
        return "90"

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __int__(self):
        return self.id

    def __repr__(self):
        return f"<CUDA Device {self.id} (stand-in)>"


class _Runtime:
    """``cupy.cuda.runtime``: the queries the package makes."""
    CUDARuntimeError = CUDARuntimeError

    @staticmethod
    def getDeviceCount():
        return DEVICE_COUNT

    @staticmethod
    def getDeviceProperties(device_id):
        _check_id(device_id)
        return {"name": b"CuPy stand-in (CPU emulation of the kernels)", "memoryClockRate": 1000000,
                "memoryBusWidth": 64, "totalGlobalMem": 2**33, "major": 9, "minor": 0,
                "multiProcessorCount": 1}

    @staticmethod
    def deviceGetAttribute(attribute, device_id):
        _check_id(device_id)
        return {36: 1000000, 37: 64}.get(attribute, 0)

    @staticmethod
    def deviceSynchronize():
        pass

    @staticmethod
    def getDevice():
        return get_device_id()


runtime = _Runtime()


class _Driver:
    CUDADriverError = CUDADriverError


driver = _Driver()


class Stream:
    """A stream whose work is always done: ``synchronize`` returns at once."""

    null = None

    def __init__(self, null=False, non_blocking=False, ptds=False):
        self.device_id = get_device_id()
        self.ptr = 0 if null else id(self)       # the null stream's handle is 0, as in CUDA

    def synchronize(self):
        pass

    def done(self):
        return True

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        pass


Stream.null = Stream(null=True)


def get_current_stream():
    return Stream.null


class Event:
    """Remembers the moment it was recorded (all earlier work has finished by then)."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        pass

    @property
    def done(self):
        return True


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two recorded events."""
    if start_event.time is None or end_event.time is None:
        raise CUDARuntimeError("cudaErrorInvalidResourceHandle: an event was never recorded")
    return (end_event.time - start_event.time) * 1e3


def __getattr__(name):
    """``from cupy.cuda import nccl``: the NCCL stand-in, loaded on first use (it needs mpi4py)."""
    if name == "nccl":
        from . import _nccl
        return _nccl
    raise AttributeError(f"module 'cupy.cuda' (stand-in) has no attribute {name!r}")
