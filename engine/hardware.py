"""What the machine offers a model: free memory, and whether llama.cpp can offload to a GPU."""

from __future__ import annotations

import ctypes
import logging
import os
import sys

import psutil

from engine.gguf_info import GGUFInfo

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


_GPU_RESERVE = 768 << 20  # llama.cpp's compute buffers and the driver's own share


def plan_gpu_layers(info: GGUFInfo, free_gpu: int | None, context: int, kv_type: str) -> int:
    """Layers to offload so that weights and KV cache fit in ``free_gpu`` bytes.

    Every layer costs its weights plus its share of the KV cache for ``context`` tokens;
    the output and embedding weights and a compute reserve come off first. All of them
    (``layers + 1``, the output layer too) when the whole model fits, 0 without a GPU.
    """
    if not free_gpu or info.layers <= 0:
        return 0
    per_layer = info.layer_bytes + info.kv_bytes_per_token(kv_type) * context // info.layers
    room = free_gpu - _GPU_RESERVE - info.other_bytes
    if room >= per_layer * info.layers:
        return info.layers + 1
    return max(0, room // max(1, per_layer))


def gpu_layers(setting: int, info: GGUFInfo, context: int, kv_type: str) -> int:
    """Layers to offload: the setting when given (>= 0), else as many as the free GPU memory holds."""
    if setting >= 0:
        return setting
    from engine import backends

    return plan_gpu_layers(info, backends.gpu_free_memory(), context, kv_type)


def trim_heap() -> None:
    """Hand freed heap pages back to the system (glibc keeps them otherwise)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError as exc:
            log.debug("malloc_trim unavailable: %s", exc)
