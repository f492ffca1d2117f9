"""Building and loading the operators (dnnl_conv.cc and the other .cc files here): compiled on first use with
g++ against the wheel's own libdnnl.so.3 and the vendored headers, built in a temporary folder and renamed
into place once complete, and a cached build trusted only once it loads."""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import re
import shutil
import sys
import tempfile
import threading

import paddle

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "dnnl_conv.cc")
SOURCES = [SOURCE] + [os.path.join(HERE, f) for f in ("gemm_bwdw.cc", "act.cc", "batchnorm.cc", "bn_low.cc",
                                                       "bn_exact.cc")]
HEADERS = [os.path.join(HERE, "simd.h")]  # included by the sources
INCLUDE = os.path.join(HERE, "third_party", "onednn", "include")


class OpsError(RuntimeError):
    """train.conv=onednn was asked for but the operator cannot be built or used here."""


_op = None
_why_not: str | None = None
_loaded_from: str | None = None  # the library file load() loaded


def _libdnnl() -> str:
    return os.path.join(os.path.dirname(paddle.__file__), "libs", "libdnnl.so.3")


def _libiomp5() -> str | None:
    """The wheel's OpenMP runtime, the one thread pool Paddle's kernels and its oneDNN run on; act.cc's
    loops join it. None if the wheel has none (then they run on one thread)."""
    path = os.path.join(os.path.dirname(paddle.__file__), "libs", "libiomp5.so")
    return path if os.path.isfile(path) else None


NAME = "paddle_gan_dnnl_conv"
# -fopenmp compiles act.cc's parallel loops; they link against the wheel's libiomp5 (its GOMP_* entry
# points) and never libgomp: a second pool spun against Paddle's and halved a training step (measured
# with an earlier operator). -O3 -fno-trapping-math vectorises them (selects between two computed values;
# no -ffast-math: the same numbers as Paddle's kernels); -ffp-contract=off keeps a * b + c two roundings
# in the AVX2 / AVX-512 clones too (simd.h's KERNEL), the same numbers on every CPU.
CXX_FLAGS = ["-O3", "-fno-trapping-math", "-ffp-contract=off"] + (["-fopenmp"] if _libiomp5() else [])


def _build_dir() -> str:
    """One folder per everything that goes into the build: the source, the headers, where they and
    the library are, the flags, the Paddle and Python versions. Paddle's builder does not notice an
    edited source once a library exists, and it rebuilds when the include path differs from the last
    build's, so two clones sharing the cache would otherwise rebuild each other's library forever."""
    import hashlib

    h = hashlib.sha256()
    for path in SOURCES + HEADERS + sorted(glob.glob(os.path.join(INCLUDE, "**", "*.h*"), recursive=True)):
        with open(path, "rb") as f:
            h.update(os.path.relpath(path, HERE).encode() + b"\0" + f.read())
    h.update(repr((os.path.abspath(INCLUDE), _libdnnl(), _libiomp5(), CXX_FLAGS)).encode())
    root = os.environ.get("PADDLE_GAN_OPS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "paddle_gan", "ops")
    return os.path.join(root, f"paddle-{paddle.__version__}-py{sys.version_info[0]}{sys.version_info[1]}-"
                              f"{h.hexdigest()[:12]}")


def _import_built(build: str):
    """The library built earlier in `build`, imported without Paddle's load(): that runs
    `python setup.py build` in a subprocess on every call (3-4 s and ~700 MB, even when nothing is
    to be built). None if it was never completed; OpsError if it was but does not load (a damaged
    cache: it is then built again)."""
    if not os.path.isfile(os.path.join(build, "built.ok")):
        return None
    try:
        from paddle.utils.cpp_extension.extension_utils import _import_module_from_library
    except ImportError:  # a private API of Paddle's: if it moves, build through load() as the first time
        return None
    try:
        return _import_module_from_library(NAME, os.path.join(build, NAME))
    except Exception as e:
        raise OpsError(f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}") from None


def _build(build: str, announce) -> object:
    """Compile the operator into a temporary folder beside `build` and rename it into place only once
    it is complete and loaded: a build killed half-way (a scheduler's timeout during linking) leaves
    no folder that a later start could take for a finished one."""
    from paddle.utils.cpp_extension import load as load_extension

    global _why_not
    tmp = f"{build}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    if announce:
        announce(f"building paddle_gan's CPU operators once (oneDNN convolutions, activations, BatchNorm; ~30 s, "
                 f"cached in {build})")
    with quiet_fds() as printed:
        try:
            op = load_extension(name=NAME, sources=SOURCES, extra_include_paths=[INCLUDE],
                                extra_ldflags=[_libdnnl()] + ([_libiomp5()] if _libiomp5() else []),
                                extra_cxx_cflags=CXX_FLAGS, build_directory=tmp, verbose=False)
        except Exception as e:  # the compiler's message is in `printed`
            lines = [ln for ln in printed().splitlines() if "error" in ln.lower()] or [str(e)]
            _why_not = f"building {', '.join(os.path.basename(s) for s in SOURCES)} failed: {lines[0].strip()[:300]}"
            shutil.rmtree(tmp, ignore_errors=True)
            return None
    with open(os.path.join(tmp, "built.ok"), "w") as f:  # complete: later loads skip the builder
        f.write(f"{NAME} built by paddle_gan for Paddle {paddle.__version__}\n")
    _forget_stub(tmp)
    shutil.rmtree(build, ignore_errors=True)  # a damaged or unfinished earlier build
    os.rename(tmp, build)
    return op


def library_path() -> str:
    """Where load()'s library is (for ctypes: the same file, so the same loaded copy), as load() found it:
    sources edited after that (a git pull during a run) do not move it."""
    load()
    return _loaded_from


def _forget_stub(build: str) -> None:
    """Paddle writes a small Python stub per process next to the library and removes it only at a
    normal exit; a killed process leaves it behind. The module is imported by now: remove ours."""
    stub = os.path.join(build, NAME, f"{NAME}_{threading.current_thread().ident}.py")
    with contextlib.suppress(OSError):
        os.unlink(stub)


@contextlib.contextmanager
def quiet_fds():
    """Silence the compiler and Paddle's build chatter (file descriptors 1 and 2, so the g++ child
    is covered too); yields a function returning what was printed, for error messages."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)

        def text() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")
        try:
            yield text
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def header_version() -> tuple[int, int, int]:
    """oneDNN's version as the vendored headers declare it (dnnl_version.h)."""
    with open(os.path.join(INCLUDE, "oneapi", "dnnl", "dnnl_version.h")) as f:
        text = f.read()
    return tuple(int(re.search(rf"#define DNNL_VERSION_{part} (\d+)", text).group(1))
                 for part in ("MAJOR", "MINOR", "PATCH"))


def runtime_version() -> tuple[int, int, int]:
    """oneDNN's version as the library inside the installed Paddle wheel reports it (dnnl_version())."""

    class Version(ctypes.Structure):  # dnnl_version_t of dnnl_common_types.h
        _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                    ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint), ("gpu_runtime", ctypes.c_uint)]

    lib = ctypes.CDLL(_libdnnl())
    lib.dnnl_version.restype = ctypes.POINTER(Version)
    v = lib.dnnl_version().contents
    return v.major, v.minor, v.patch


def _reason_unavailable() -> str | None:
    if paddle.is_compiled_with_cuda() and paddle.get_device().startswith("gpu"):
        return "training runs on GPU (cuDNN is used there)"
    if not os.path.isfile(_libdnnl()):
        return f"this Paddle build has no {_libdnnl()}"
    try:
        have, want = runtime_version(), header_version()
    except (OSError, AttributeError) as e:
        return f"cannot read the oneDNN version of {_libdnnl()} ({e})"
    if have[:2] != want[:2]:  # the C++ API (and its struct layouts) may change between minor versions
        return (f"Paddle {paddle.__version__} ships oneDNN {'.'.join(map(str, have))}, but paddle_gan's "
                f"operator is written against oneDNN {want[0]}.{want[1]} (its headers in ops/third_party/onednn)")
    if not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")):
        return "no C++ compiler (install g++)"
    return None


@paddle.jit.not_to_static  # plain Python, also when a model using the operator is compiled by to_static
def load(announce=None):
    """The compiled operator module; builds it on first use (saying so through `announce`, if
    given, as that takes ~20 s). Raises OpsError with the reason."""
    global _op, _why_not, _loaded_from
    if _op is not None:
        return _op
    if _why_not is None:
        _why_not = _reason_unavailable()
    if _why_not:
        raise OpsError(_why_not)
    import fcntl

    build = _build_dir()
    os.makedirs(os.path.dirname(build), exist_ok=True)
    with open(build + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several processes (a distributed launch) build once
        for stale in glob.glob(f"{glob.escape(build)}.tmp-*"):  # builds of killed processes (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            with quiet_fds():
                _op = _import_built(build)
                if _op is not None:
                    _forget_stub(build)
        except OpsError as e:
            (announce or (lambda m: None))(f"note: the cached oneDNN build in {build} does not load ({e}); "
                                           f"building it again")
            _op = None
        if _op is None:
            _op = _build(build, announce)
    if _op is None:
        raise OpsError(_why_not)
    _loaded_from = os.path.join(build, NAME, NAME + ".so")
    return _op


