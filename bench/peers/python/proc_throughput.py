#!/usr/bin/env python3
"""Peer for `gearbox-bench proc_throughput`: trivial tasks in flight on a
concurrent.futures.ProcessPoolExecutor, submitted one by one (no chunksize).

How it maps to gearbox: gearbox submits increment(i) for i in [0, n) to a ProcessPool of
T worker processes without waiting, then collects every future and sums the results.
Here: executor.submit(increment, i) n times, then .result() of each. Python manages
~10,000 such tasks per second, so n is capped: above 20,000 the peer runs 20,000 and says
so in "n_used" (its "result" is then the sum for n_used). The rate is comparable.

Timed (time.perf_counter): from the first submit until every result is in, after every
worker has run a task. Prints one JSON line: {"ms": ..., "result": sum of i+1,
"tasks_per_s": ..., "n_used": ..., "threads": T}.
"""
import argparse
import concurrent.futures
import json
import time

N_CAP = 20_000


def increment(x):
    return x + 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="tasks (capped at 20,000)")
    parser.add_argument("--threads", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    if args.n < 1 or args.threads < 1:
        parser.error("--n and --threads must be >= 1")
    n = min(args.n, N_CAP)
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.threads) as executor:
        list(executor.map(increment, range(args.threads * 4)))  # start and warm every worker
        start = time.perf_counter()
        futures = [executor.submit(increment, i) for i in range(n)]
        total = sum(f.result() for f in futures)
        ms = (time.perf_counter() - start) * 1e3
    print(json.dumps({"ms": round(ms, 3), "result": total, "tasks_per_s": round(n / (ms / 1e3)),
                      "n_used": n, "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
