"""Memory bandwidth by a copy benchmark: numpy copies a 512 MiB array
(memcpy) several times; prints the best rate as GB/s of bytes read plus
bytes written, and the single-threaded read-only rate (a sum)."""

import json
import time

import numpy as np

N = 512 * 1024 * 1024 // 8
src = np.ones(N)
dst = np.empty_like(src)
np.copyto(dst, src)
best = float("inf")
for _ in range(7):
    t = time.perf_counter()
    np.copyto(dst, src)
    best = min(best, time.perf_counter() - t)
read_best = float("inf")
for _ in range(7):
    t = time.perf_counter()
    src.sum()
    read_best = min(read_best, time.perf_counter() - t)
print(json.dumps({
    "copy_gb_s": 2 * src.nbytes / best / 1e9,
    "read_gb_s": src.nbytes / read_best / 1e9,
    "bytes": src.nbytes,
}))
