#!/usr/bin/env python3
"""Peer for `gearbox-bench fib`: recursive fork-join fib(n) on a
concurrent.futures.ThreadPoolExecutor, one task per level, to show why it does not fit.

How it maps to gearbox: gearbox computes fib(n) on a ThreadPool of T threads; every call
with n >= 2 submits fib(n-1) as a task, computes fib(n-2) itself, then waits for the
task, with no cut-off: fib(n+1) - 1 tasks in all. A gearbox worker that waits on a child
runs other tasks meanwhile, so T threads are enough for any n. Here each such call does
executor.submit(fib, n - 1), computes fib(n - 2) itself and calls .result() on the
future. A ThreadPoolExecutor worker that calls .result() simply blocks: with T workers,
fib(n) deadlocks as soon as T workers wait on children that are still queued (fib(4) on
2 workers already does). The only way to run it without a deadlock is a pool with more
workers than tasks can ever wait at once; this peer uses one worker per task
(max_workers = fib(n+1) - 1: the executor starts a thread only when no idle one exists,
so a queued task always gets a thread) and ignores --threads, reporting the real count in
"threads". That is honest only for small n: fib(15) needs 986 threads; fib(30) would need
1,346,268. So for n > 15 this peer refuses: it prints
{"ms": 0, "result": null, "error": "..."} and exits with 3, which gearbox-bench reports
as a failed peer with that reason. Run it with --n 15 (or less) for a time.

Timed (time.perf_counter, monotonic): the root call, made on the main thread; the pool's
threads are started by the work itself, since which of them are needed depends on the
run (so the time includes starting up to fib(n+1) - 1 threads, which is the point).
Prints one JSON line: {"ms": ..., "result": fib(n), "tasks": fib(n+1) - 1,
"threads": <max_workers>}.
"""
import argparse
import concurrent.futures
import json
import sys
import time

MAX_N = 15


def task_count(n):
    """Tasks spawned by fib(n): one per call with n >= 2, i.e. fib(n+1) - 1."""
    a, b = 0, 1
    for _ in range(n + 1):
        a, b = b, a + b
    return a - 1


def fib(executor, n):
    if n < 2:
        return n
    x = executor.submit(fib, executor, n - 1)
    y = fib(executor, n - 2)
    return x.result() + y


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="which Fibonacci number")
    parser.add_argument("--threads", type=int, default=2, help="accepted and ignored (see the description)")
    args = parser.parse_args()
    if args.n < 0 or args.n > 60 or args.threads < 1:
        parser.error("--n must be in 0..60 and --threads >= 1")
    if args.n > MAX_N:
        print(json.dumps({"ms": 0, "result": None, "error": (
            f"ThreadPoolExecutor cannot run recursive fork-join on {args.threads} workers: a worker blocked in "
            f".result() runs nothing else, so fib({args.n}) deadlocks unless there is a thread per task "
            f"(~{task_count(args.n)} threads); refusing (this peer runs n <= {MAX_N})")}), flush=True)
        sys.exit(3)

    workers = max(1, task_count(args.n))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as executor:
        start = time.perf_counter()
        result = fib(executor, args.n)
        ms = (time.perf_counter() - start) * 1e3
    print(json.dumps({"ms": round(ms, 3), "result": result, "tasks": task_count(args.n), "threads": workers}),
          flush=True)


if __name__ == "__main__":
    main()
