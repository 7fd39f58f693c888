"""Which of llama.cpp's builds run on this machine (CPU variant, GPU backends), loaded before the model.

llama.cpp is built once for every x86 CPU (``GGML_CPU_ALL_VARIANTS`` with
``GGML_BACKEND_DL``): one ``libggml-cpu-<variant>`` library per instruction-set level, none
of them the build machine's own. At start the engine picks the best variant this CPU can
run, from the CPU's reported features, and loads it (with any GPU backend beside it)
before llama.cpp would pick one itself. ggml's own pick would be the AMX variant on a
Sapphire Rapids Xeon, whose matrix path crashes (ggml-org/llama.cpp#20824): that variant is
never chosen here.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_AVX512 = ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")
_HASWELL = ("sse4_2", "avx", "f16c", "fma", "avx2", "bmi2")

# Each x86 variant and the CPU features (Linux /proc/cpuinfo names) its library uses, as
# ggml/src/CMakeLists.txt builds them and ggml-cpu/arch/x86/cpu-feats.cpp checks them.
X86_VARIANTS: dict[str, tuple[str, ...]] = {
    "x64": (),
    "sse42": ("sse4_2",),
    "sandybridge": ("sse4_2", "avx"),
    "ivybridge": ("sse4_2", "avx", "f16c"),
    "piledriver": ("sse4_2", "avx", "f16c", "fma"),
    "haswell": _HASWELL,
    "skylakex": (*_HASWELL, *_AVX512),
    "cannonlake": (*_HASWELL, *_AVX512, "avx512vbmi"),
    "cascadelake": (*_HASWELL, *_AVX512, "avx512_vnni"),
    "icelake": (*_HASWELL, *_AVX512, "avx512vbmi", "avx512_vnni"),
    "cooperlake": (*_HASWELL, *_AVX512, "avx512_vnni", "avx512_bf16"),
    "zen4": (*_HASWELL, *_AVX512, "avx512vbmi", "avx512_vnni", "avx512_bf16"),
    "alderlake": (*_HASWELL, "avx_vnni"),
    "sapphirerapids": (*_HASWELL, *_AVX512, "avx512vbmi", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8"),
}

# Features whose code path in llama.cpp is known to crash: a variant using one is skipped.
UNSAFE_FEATURES = {
    "amx_tile": "its AMX matrix path crashes (ggml-org/llama.cpp#20824)",
    "amx_int8": "its AMX matrix path crashes (ggml-org/llama.cpp#20824)",
}

# ggml's score for a variant: the better the instructions, the higher (cpu-feats.cpp).
_WEIGHTS = {"fma": 1, "f16c": 2, "sse4_2": 4, "bmi2": 8, "avx": 16, "avx2": 32, "avx_vnni": 64, "avx512f": 128,
            "avx512vbmi": 256, "avx512_bf16": 512, "avx512_vnni": 1024, "amx_int8": 2048}

_GPU_BACKENDS = ("cuda", "hip", "metal", "vulkan", "sycl", "musa")


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """What llama.cpp computes with in this process: the CPU variant and any GPU backends."""

    cpu_variant: str
    gpu_backends: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # "sapphirerapids: its AMX matrix path crashes (...)"
    cpu_library: Path | None = None

    def environment(self) -> dict[str, str]:
        """Variables that make another llama.cpp program (llama-cpp-python's server) load the same CPU variant."""
        return {"GGML_BACKEND_PATH": str(self.cpu_library)} if self.cpu_library else {}

    def describe(self) -> str:
        """One line for the log and the self-test."""
        gpu = f", GPU: {', '.join(self.gpu_backends)}" if self.gpu_backends else ""
        skipped = f" (skipped {'; '.join(self.skipped)})" if self.skipped else ""
        return f"llama.cpp CPU variant {self.cpu_variant}{gpu}{skipped}"


def cpu_features() -> frozenset[str] | None:
    """The CPU's feature flags as Linux reports them, or None where the OS does not say."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return None


def choose_variant(
    available: Iterable[str], features: frozenset[str] | None, score: Callable[[str], int] | None = None,
) -> tuple[str | None, tuple[str, ...]]:
    """The best variant of ``available`` this CPU runs safely, and why others were skipped.

    With known ``features`` the choice is made from them alone; without (no /proc/cpuinfo, or
    a non-x86 CPU), ``score`` asks each variant's own library (ggml's cpuid check).
    """
    best: tuple[int, str] | None = None
    skipped: list[str] = []
    for name in available:
        needs = X86_VARIANTS.get(name)
        unsafe = [UNSAFE_FEATURES[f] for f in needs or () if f in UNSAFE_FEATURES]
        if features is not None and needs is not None:
            if not set(needs) <= features:
                continue
            value = 1 + sum(_WEIGHTS.get(f, 0) for f in needs)
        elif score is not None:
            value = score(name)
            if value <= 0:
                continue
        else:
            continue
        if unsafe:
            skipped.append(f"{name}: {unsafe[0]}")
            continue
        if best is None or value > best[0]:
            best = (value, name)
    return (best[1] if best else None), tuple(skipped)


def library_folders() -> list[Path]:
    """Where the llama.cpp libraries lie: beside libllama (our build puts them there), or in the
    ``bin/`` that a default llama-cpp-python build installs beside its package."""
    import llama_cpp

    package = Path(llama_cpp.__file__).parent
    folders = [package / "lib", package.parent / "bin"]
    return [f for f in folders if f.is_dir()]


def _libraries(kind: str) -> dict[str, Path]:
    """``{variant: path}`` of the ``libggml-<kind>-<variant>`` libraries found."""
    prefix = f"ggml-{kind}-"
    found: dict[str, Path] = {}
    for folder in library_folders():
        for path in folder.iterdir():
            stem = path.name.split(".")[0].removeprefix("lib")
            if stem.startswith(prefix) and path.suffix in (".so", ".dll", ".dylib"):
                found.setdefault(stem[len(prefix):], path)
    return found


def _gpu_libraries() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in library_folders():
        for name in _GPU_BACKENDS:
            for path in folder.glob(f"*ggml-{name}.*"):
                if path.suffix in (".so", ".dll", ".dylib"):
                    found.setdefault(name, path)
    return found


def _score(path: Path) -> int:
    """ggml's own verdict on whether this CPU runs a variant (0: it cannot)."""
    try:
        library = ctypes.CDLL(str(path))
        function = library.ggml_backend_score
    except (OSError, AttributeError):
        return 0
    function.restype = ctypes.c_int
    return int(function())


_LOG_CALLBACK = None


def quiet_logs() -> None:
    """Route llama.cpp's own log lines to our logger (at debug) instead of stderr."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            log.log(logging.WARNING if level == 2 and "error" in message.lower() else logging.DEBUG, "llama.cpp: %s", message)

    _LOG_CALLBACK = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _ggml() -> ctypes.CDLL:
    """ggml's functions as libllama itself sees them.

    The wheel holds two files of libggml (``libggml.so`` and ``libggml.so.0``, no symlinks):
    loading one by name would give a second backend registry that llama.cpp never reads.
    Looking the symbols up through libllama's handle finds the copy libllama linked.
    """
    from llama_cpp.llama_cpp import _lib

    return _lib


_lock = threading.Lock()
_choice: BackendChoice | None = None


def load() -> BackendChoice:
    """Load the chosen CPU variant and any GPU backends into llama.cpp, once per process.

    Must run before llama.cpp loads backends on its own (``Llama()``, GPU probes). A build
    without variants (the CPU backend linked in) is reported as "built in".
    """
    global _choice
    with _lock:
        if _choice is not None:
            return _choice
        quiet_logs()
        libggml = _ggml()

        libggml.ggml_backend_reg_count.restype = ctypes.c_size_t
        libggml.ggml_backend_load.argtypes = [ctypes.c_char_p]
        libggml.ggml_backend_load.restype = ctypes.c_void_p
        variants = _libraries("cpu")
        if libggml.ggml_backend_reg_count() > 0 or not variants:
            _choice = BackendChoice("built in")
            log.info("%s", _choice.describe())
            return _choice
        gpus = tuple(name for name, path in _gpu_libraries().items() if libggml.ggml_backend_load(str(path).encode()))
        arch = platform.machine().lower()
        features = cpu_features() if arch in ("x86_64", "amd64") else None
        name, skipped = choose_variant(sorted(variants), features, lambda v: _score(variants[v]))
        if name is None or not libggml.ggml_backend_load(str(variants[name]).encode()):
            from engine.errors import EngineError

            raise EngineError(
                f"None of llama.cpp's CPU libraries ({', '.join(sorted(variants))}) runs on this processor "
                f"({arch}). Reinstall Archivist, or report this processor's model."
            )
        _choice = BackendChoice(name, gpus, skipped, variants[name])
        log.info("%s", _choice.describe())
        return _choice


_GPU_DEVICE_TYPES = (1, 2)  # GGML_BACKEND_DEVICE_TYPE_GPU, _IGPU


def gpu_free_memory() -> int | None:
    """Free memory of the largest GPU llama.cpp can use, in bytes; None without a GPU backend."""
    load()
    libggml = _ggml()

    libggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    libggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    libggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    libggml.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    libggml.ggml_backend_dev_type.restype = ctypes.c_int
    libggml.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                                                ctypes.POINTER(ctypes.c_size_t)]
    best: int | None = None
    for index in range(libggml.ggml_backend_dev_count()):
        device = libggml.ggml_backend_dev_get(index)
        if libggml.ggml_backend_dev_type(device) not in _GPU_DEVICE_TYPES:
            continue
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        libggml.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
        best = max(best or 0, int(free.value))
    return best
