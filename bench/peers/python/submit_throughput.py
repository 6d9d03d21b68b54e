#!/usr/bin/env python3
"""Peer for `gearbox-bench submit_throughput`: empty tasks per second through a
concurrent.futures.ThreadPoolExecutor, submitted from outside the pool.

How it maps to gearbox: gearbox submits n empty tasks to a ThreadPool of T workers (a)
from one thread outside the pool and (b) from a root task inside it, each task counting
itself, and reports tasks per second for both. Here the pool is a
ThreadPoolExecutor(max_workers=T) and the main thread calls executor.submit(task) n
times, then waits for all the futures with concurrent.futures.wait. A task adds one to a
shared itertools.count (next() on it is one C call, atomic under the GIL). There is no
(b): the executor has one shared queue and no per-worker queues, so a submission from
inside a worker takes the same path as one from outside (and a root task that waited on
its children would hold one of the T workers meanwhile, see fib.py); "inside_tasks_per_s"
is null and "ms" is the outside time.

Python runs these tasks ~30-40x slower than oneTBB does (~55,000 tasks/s on a 2-core
VM), so n is capped: for n above 200,000 the peer runs 200,000 tasks and says so in
"n_used" (its "result" is then n_used, not n). The rate in tasks/s is comparable; the
result is not.

Timed (time.perf_counter, monotonic): from the first submit until every future is done,
after all T worker threads have been started. Prints one JSON line:
{"ms": ..., "result": <tasks that ran>, "outside_tasks_per_s": ...,
"inside_tasks_per_s": null, "n_used": ..., "threads": T}.
"""
import argparse
import concurrent.futures
import itertools
import json
import threading
import time

N_CAP = 200_000


def start_all_threads(executor, threads):
    """The executor starts a thread per submit while none is idle: T tasks that wait for
    each other make it start all T."""
    barrier = threading.Barrier(threads)
    concurrent.futures.wait([executor.submit(barrier.wait, 5) for _ in range(threads)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="number of tasks (capped at 200,000)")
    parser.add_argument("--threads", type=int, default=2, help="threads in the pool")
    args = parser.parse_args()
    if args.n < 1 or args.threads < 1:
        parser.error("--n and --threads must be >= 1")
    n = min(args.n, N_CAP)

    ran = itertools.count()

    def task():
        next(ran)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.threads) as executor:
        start_all_threads(executor, args.threads)
        start = time.perf_counter()
        futures = [executor.submit(task) for _ in range(n)]
        concurrent.futures.wait(futures)
        ms = (time.perf_counter() - start) * 1e3
    result = next(ran)  # the count so far: the number of tasks that ran
    print(json.dumps({"ms": round(ms, 3), "result": result, "outside_tasks_per_s": round(n / (ms / 1e3)),
                      "inside_tasks_per_s": None, "n_used": n, "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
