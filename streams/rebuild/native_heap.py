"""glibc's allocator, set for a rebuild's long run over one partition after another.

glibc serves a large allocation (fetch responses, the records made of them, RocksDB's write batches)
from a mapping of its own, returned to the system when freed, but each time it frees one it raises
that threshold, up to 32 MiB: from then on, such buffers are carved out of the heap, which fragments
and does not shrink, and a rebuild's resident memory creeps with the size of the partitions it folds
(measured in docs/performance.md#replay-and-verify). Fixing the threshold at glibc's initial 128 KiB
turns that adjustment off.
"""

from __future__ import annotations

import ctypes

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
_THRESHOLD = 128 * 1024


def fix_mmap_threshold() -> bool:
    """Keep large buffers in mappings of their own; False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # musl, macOS: no mallopt, nothing of this kind to turn off
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
