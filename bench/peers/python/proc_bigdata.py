#!/usr/bin/env python3
"""Peer for `gearbox-bench proc_bigdata`: a large bytes argument to a
concurrent.futures.ProcessPoolExecutor worker that sums it.

How it maps to gearbox: gearbox puts n MiB (byte j = j % 251) in a SharedBuffer (a sealed
memfd), passes it to one worker by descriptor and the worker sums the buffer as
little-endian 64-bit words, wrapping at 2**64. Here the bytes object is the argument of
executor.submit (pickled through a pipe to the worker), which sums
memoryview(data).cast("Q") in pure Python. Python needs ~1 s for the sum of 64 MiB, so n
is capped: above 64 MiB the peer runs 64 MiB and says so in "n_used".

Two timings (time.perf_counter), both after the worker has started: "ms", the whole task
(send + sum + answer); and "transfer_ms", the same bytes sent to a task that only returns
len(data), i.e. what the argument itself costs ("transfer_gib_per_s").
Prints one JSON line: {"ms": ..., "result": the sum, "gib_per_s": ..., "transfer_ms": ...,
"transfer_gib_per_s": ..., "n_used": ...}.
"""
import argparse
import concurrent.futures
import json
import time

N_CAP = 64


def sum_words(data):
    view = memoryview(data)
    words = len(data) // 8
    total = sum(view[: words * 8].cast("Q")) + sum(view[words * 8:])
    return total % (1 << 64)


def length(data):
    return len(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="MiB (capped at 64)")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be >= 1")
    n = min(args.n, N_CAP)
    size = n << 20
    period = bytes(range(251))
    data = (period * (size // 251 + 1))[:size]
    gib = size / (1 << 30)
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as executor:
        executor.submit(length, b"").result()  # start the worker
        start = time.perf_counter()
        total = executor.submit(sum_words, data).result()
        ms = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        executor.submit(length, data).result()
        transfer_ms = (time.perf_counter() - start) * 1e3
    print(json.dumps({"ms": round(ms, 3), "result": total, "gib_per_s": round(gib / (ms / 1e3), 3),
                      "transfer_ms": round(transfer_ms, 3), "transfer_gib_per_s": round(gib / (transfer_ms / 1e3), 3),
                      "n_used": n}), flush=True)


if __name__ == "__main__":
    main()
