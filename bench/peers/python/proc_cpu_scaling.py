#!/usr/bin/env python3
"""Peer for `gearbox-bench proc_cpu_scaling`: CPU-bound tasks on a
concurrent.futures.ProcessPoolExecutor of 1 worker, then of T.

How it maps to gearbox: gearbox maps collatz_steps over n blocks of 100,000 numbers
(block i starts at 1 + i * 100,000; a task returns the total Collatz steps of its
numbers) on a ProcessPool of 1 worker and then of T, and reports the sum of the steps,
the time on T workers as "ms" and the speedup. Here executor.map does the same on
ProcessPoolExecutor(max_workers=1) and (max_workers=T). Pure Python takes about a second
per block, so n is capped: above 4 blocks the peer runs 4 and says so in "n_used".

Timed (time.perf_counter): each map, after its workers have started. Prints one JSON
line: {"ms": ..., "result": total steps, "ms_1_worker": ..., "speedup": ...,
"n_used": ..., "threads": T}.
"""
import argparse
import concurrent.futures
import json
import time

N_CAP = 4
BLOCK = 100_000


def collatz_steps(first, count):
    steps = 0
    for start in range(first, first + count):
        x = start
        while x != 1:
            x = 3 * x + 1 if x & 1 else x // 2
            steps += 1
    return steps


def noop(x):
    return x


def timed(workers, n):
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as executor:
        list(executor.map(noop, range(workers * 4)))  # start every worker
        start = time.perf_counter()
        total = sum(executor.map(collatz_steps, [1 + i * BLOCK for i in range(n)], [BLOCK] * n))
        return (time.perf_counter() - start) * 1e3, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="blocks (capped at 4)")
    parser.add_argument("--threads", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    if args.n < 1 or args.threads < 1:
        parser.error("--n and --threads must be >= 1")
    n = min(args.n, N_CAP)
    one_ms, one_total = timed(1, n)
    ms, total = timed(args.threads, n)
    print(json.dumps({"ms": round(ms, 3), "result": total if total == one_total else "1 and T workers disagree",
                      "ms_1_worker": round(one_ms, 3), "speedup": round(one_ms / ms, 3),
                      "n_used": n, "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
