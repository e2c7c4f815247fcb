"""Every kernels/*.cu compiles with nvcc to PTX for sm_80 and sm_90 without a warning, and
with NVRTC (the compiler cupy.RawModule uses) for compute_80 and compute_90 without a warning.

This is the check CI runs without a GPU: nvcc only needs the CUDA toolkit, NVRTC only needs
libnvrtc (the ``nvidia-cuda-nvrtc`` wheel of the ``dev`` extra; see minitorch_alexnet/cuda/nvrtc.py).
Both also compile the source as the loader hands it to RawModule (our headers pasted in) and
check that a compile error is reported with the right file and line. NVRTC sees no host headers,
so a kernel that nvcc accepts can still fail on the GPU machine: the NVRTC tests catch that here.

Skipped when nvcc (or libnvrtc) is missing, unless MINITORCH_REQUIRE_NVCC=1 or CI=true (as on
CI): then a missing compiler fails.
"""
import os
import re
import shutil
import subprocess

import pytest

from minitorch_alexnet.cuda import loader
from minitorch_alexnet.cuda import nvrtc as nvrtc_api

pytestmark = pytest.mark.kernels

ARCHITECTURES = ["sm_80", "sm_90"]
NVRTC_ARCHITECTURES = ["compute_80", "compute_90"]
KERNEL_FILES = loader.kernel_files()


@pytest.fixture(scope="module")
def nvcc():
    path = shutil.which("nvcc")
    if path is None:
        if os.environ.get("MINITORCH_REQUIRE_NVCC") == "1" or os.environ.get("CI") == "true":
            pytest.fail("nvcc is not on PATH, but CI (CI=true or MINITORCH_REQUIRE_NVCC=1) requires it")
        pytest.skip("nvcc is not on PATH (install the CUDA toolkit; set MINITORCH_REQUIRE_NVCC=1 to make this a failure)")
    return path


def compilers_required():
    return os.environ.get("MINITORCH_REQUIRE_NVCC") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def nvrtc():
    """libnvrtc loaded through ctypes (from the nvidia-cuda-nvrtc wheel, or a CUDA toolkit)."""
    try:
        return nvrtc_api.NVRTC.load()
    except nvrtc_api.NVRTCNotFound as error:
        if compilers_required():
            pytest.fail(f"{error}; CI (CI=true or MINITORCH_REQUIRE_NVCC=1) requires it: "
                        'python -m pip install -e ".[dev]" installs it')
        pytest.skip(f"{error} (python -m pip install -e \".[dev]\" installs it; "
                    "set MINITORCH_REQUIRE_NVCC=1 to make this a failure)")


def nvrtc_problems(nvrtc, file_name, source, arch):
    """Compile ``source`` with NVRTC as RawModule would (the loader's options) for ``arch``;
    return "" if it compiled without an error or warning, else the report and the full log."""
    options = [f"--gpu-architecture={arch}", *loader.COMPILE_OPTIONS]
    compiled, log = nvrtc.compile(source, file_name, options)
    if compiled and not re.search(r"warning|error", log, re.IGNORECASE):
        return ""
    return (f"NVRTC {'.'.join(map(str, nvrtc.version()))} ({nvrtc.path}) options {options}:\n"
            + loader.parse_compile_log(file_name, log))


def compile_ptx(nvcc, source_path, arch, output_dir):
    """Run nvcc --ptx with every warning an error; return (return code, compiler messages)."""
    command = [nvcc, "--ptx", f"-arch={arch}", "-Werror", "all-warnings",
               "-I", str(loader.kernels_dir()), str(source_path),
               "-o", str(output_dir / (source_path.stem + f"_{arch}.ptx"))]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return result.returncode, result.stdout


def test_kernel_files_exist():
    names = {path.name for path in KERNEL_FILES}
    assert {"im2col.cu", "pool.cu", "lrn.cu", "elementwise.cu", "softmax.cu", "gemm.cu"} <= names


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("source", KERNEL_FILES, ids=[path.name for path in KERNEL_FILES])
def test_compiles_without_warnings(nvcc, source, arch, tmp_path):
    code, messages = compile_ptx(nvcc, source, arch, tmp_path)
    assert code == 0, f"nvcc failed on {source.name} for {arch}:\n{messages}"
    assert messages.strip() == "", f"nvcc printed messages for {source.name} ({arch}):\n{messages}"


@pytest.mark.parametrize("source", KERNEL_FILES, ids=[path.name for path in KERNEL_FILES])
def test_loader_source_compiles(nvcc, source, tmp_path):
    """The text the loader gives NVRTC (headers pasted in, #line directives) compiles too."""
    expanded = tmp_path / source.name
    expanded.write_text(loader.expanded_source(source.name), encoding="utf-8")
    code, messages = compile_ptx(nvcc, expanded, "sm_80", tmp_path)
    assert code == 0 and messages.strip() == "", messages


def test_compile_error_names_file_and_line(nvcc, tmp_path):
    """Break one line of pool.cu: the parsed message must say pool.cu and that line."""
    original = (loader.kernels_dir() / "pool.cu").read_text(encoding="utf-8")
    target = "const int ow = flat % OW;"
    line_number = original[:original.index(target)].count("\n") + 1
    broken = loader.expanded_source("pool.cu").replace(target, "const int ow = flat % NOT_DEFINED;", 1)
    path = tmp_path / "pool.cu"
    path.write_text(broken, encoding="utf-8")
    code, messages = compile_ptx(nvcc, path, "sm_80", tmp_path)
    assert code != 0
    report = loader.parse_compile_log("pool.cu", messages)
    assert report.startswith(f"pool.cu:{line_number}: error"), report
    assert "NOT_DEFINED" in report


@pytest.mark.parametrize("arch", NVRTC_ARCHITECTURES)
@pytest.mark.parametrize("source", KERNEL_FILES, ids=[path.name for path in KERNEL_FILES])
def test_nvrtc_compiles_loader_source(nvrtc, source, arch):
    """The exact text RawModule receives (headers pasted in) compiles with NVRTC, no warning."""
    problems = nvrtc_problems(nvrtc, source.name, loader.expanded_source(source.name), arch)
    assert problems == "", problems


def test_nvrtc_error_names_file_and_line(nvrtc):
    """Break one line of pool.cu: NVRTC fails and the parsed message says pool.cu and that line."""
    original = (loader.kernels_dir() / "pool.cu").read_text(encoding="utf-8")
    target = "const int ow = flat % OW;"
    line_number = original[:original.index(target)].count("\n") + 1
    broken = loader.expanded_source("pool.cu").replace(target, "const int ow = flat % NOT_DEFINED;", 1)
    problems = nvrtc_problems(nvrtc, "pool.cu", broken, "compute_80")
    report = problems.split("\n", 1)[1]
    assert report.startswith(f"pool.cu:{line_number}: error"), problems
    assert "NOT_DEFINED" in report


def test_nvrtc_rejects_host_header_that_nvcc_accepts(nvrtc, tmp_path):
    """A host header compiles with nvcc but not with NVRTC: the failure names pool.cu."""
    expanded = loader.expanded_source("pool.cu")
    assert expanded.startswith('#line 1 "pool.cu"\n')
    with_host_header = expanded.replace('#line 1 "pool.cu"\n', '#line 1 "pool.cu"\n#include <vector>\n', 1)
    nvcc = shutil.which("nvcc")
    if nvcc is not None:                       # the point of the NVRTC check: nvcc sees no problem
        path = tmp_path / "pool.cu"
        path.write_text(with_host_header, encoding="utf-8")
        code, messages = compile_ptx(nvcc, path, "sm_80", tmp_path)
        assert code == 0, messages
    problems = nvrtc_problems(nvrtc, "pool.cu", with_host_header, "compute_80")
    assert "pool.cu(1)" in problems and "vector" in problems, problems


def test_nvrtc_warning_fails_the_check(nvrtc):
    """A warning alone (an unused variable) is reported, not passed."""
    source = '#line 1 "unused.cu"\nextern "C" __global__ void unused_f32(float* x) {\n    int unused;\n}\n'
    problems = nvrtc_problems(nvrtc, "unused.cu", source, "compute_90")
    assert problems.split("\n", 1)[1].startswith("unused.cu:2: warning"), problems
