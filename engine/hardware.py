"""What the machine offers a model: free memory, and whether llama.cpp can offload to a GPU."""

from __future__ import annotations

import ctypes
import logging
import os
import sys

import psutil

log = logging.getLogger(__name__)


def available_memory() -> int:
    """Bytes of RAM free for a new allocation now (page cache counted as free)."""
    return int(psutil.virtual_memory().available)


def resident_memory() -> int:
    """This process's resident memory, in bytes."""
    return int(psutil.Process(os.getpid()).memory_info().rss)


def cpu_threads() -> int:
    """Threads for llama.cpp: one per physical core (hyper-threads only add contention)."""
    return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build has a GPU backend (CUDA, Metal, Vulkan...)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def gpu_layers(setting: int) -> int:
    """Layers to offload: the setting when given (>= 0), else all of them when a GPU exists."""
    if setting >= 0:
        return setting
    return -1 if gpu_offload_supported() else 0


def trim_heap() -> None:
    """Hand freed heap pages back to the system (glibc keeps them otherwise)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError as exc:
            log.debug("malloc_trim unavailable: %s", exc)
