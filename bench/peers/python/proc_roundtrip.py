#!/usr/bin/env python3
"""Peer for `gearbox-bench proc_roundtrip`: one trivial task at a time through a
concurrent.futures.ProcessPoolExecutor.

How it maps to gearbox: gearbox submits increment(i) to a ProcessPool of T worker
processes and waits for its result before submitting the next, n times, summing the
results. Here the pool is a ProcessPoolExecutor(max_workers=T) and each round trip is
executor.submit(increment, i).result(). Python needs ~200 us per round trip, so n is
capped: above 5,000 the peer runs 5,000 and says so in "n_used" (its "result" is then the
sum for n_used).

Timed (time.perf_counter): the n round trips, after every worker has run a task.
Prints one JSON line: {"ms": ..., "result": sum of i+1, "us_per_roundtrip": ...,
"n_used": ..., "threads": T}.
"""
import argparse
import concurrent.futures
import json
import time

N_CAP = 5_000


def increment(x):
    return x + 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="round trips (capped at 5,000)")
    parser.add_argument("--threads", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    if args.n < 1 or args.threads < 1:
        parser.error("--n and --threads must be >= 1")
    n = min(args.n, N_CAP)
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.threads) as executor:
        list(executor.map(increment, range(args.threads * 4)))  # start and warm every worker
        start = time.perf_counter()
        total = 0
        for i in range(n):
            total += executor.submit(increment, i).result()
        ms = (time.perf_counter() - start) * 1e3
    print(json.dumps({"ms": round(ms, 3), "result": total, "us_per_roundtrip": round(ms * 1e3 / n, 2),
                      "n_used": n, "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
