"""glibc's allocator, set for a long-running process: a worker, or a rebuild's run over one partition
after another.

glibc serves a large allocation (fetch responses, the records made of them, RocksDB's write batches)
from a mapping of its own, returned to the system when freed, but each time it frees one it raises
that threshold, up to 32 MiB: from then on, such buffers are carved out of the heap, which fragments
and does not shrink, and a rebuild's resident memory creeps with the size of the partitions it folds
(measured in docs/performance.md#replay-and-verify). Fixing the threshold at glibc's initial 128 KiB
turns that adjustment off.

glibc also gives threads arenas of their own (up to eight per core), each keeping what was freed
in it: a worker runs a consumer thread and RocksDB's threads beside its event loop. Two arenas are
enough for a process whose Python runs in one thread at a time. (Both together: a million-person
worker's peak, 359 MiB, went to 332.)
"""

from __future__ import annotations

import ctypes

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
_M_ARENA_MAX = -8
_THRESHOLD = 128 * 1024
_ARENAS = 2


def fix_mmap_threshold() -> bool:
    """Keep large buffers in mappings of their own; False where the C library is not glibc."""
    return _mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)


def limit_arenas() -> bool:
    """At most two arenas, before the process starts its threads; False where not glibc."""
    return _mallopt(_M_ARENA_MAX, _ARENAS)


def _mallopt(parameter: int, value: int) -> bool:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # musl, macOS: no mallopt, nothing of this kind to turn off
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(parameter, value))
