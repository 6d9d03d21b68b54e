#!/usr/bin/env python3
"""Peer for `gearbox-bench to_thread_latency`: asyncio.to_thread round trips, one at a time.

How it maps to gearbox: a task on a gearbox Loop runs `co_await gb::to_thread(f)` n times,
one after the other, f being a trivial function; each round trip posts f to the
ThreadPool, a worker runs it, and the result comes back to the loop, which resumes the
task. Here a coroutine on the event loop started by asyncio.run awaits
asyncio.to_thread(f) n times. to_thread runs f in the loop's default executor, which this
peer sets to a concurrent.futures.ThreadPoolExecutor(max_workers=T) so the pool has T
threads, as gearbox's does (asyncio's own default is min(32, cores + 4)); the result
comes back to the loop through loop.call_soon_threadsafe, which wakes the loop's selector
through its self-pipe.

Timed (time.perf_counter, monotonic): the n round trips, after a few untimed ones that
start the executor's thread(s). Prints one JSON line:
{"ms": ..., "result": n, "us_per_roundtrip": ms * 1000 / n, "threads": T}.
"""
import argparse
import asyncio
import concurrent.futures
import json
import time


def trivial_call():
    """The "blocking call" handed to the pool: as cheap as a call can be."""
    return 1


async def round_trips(count):
    total = 0
    for _ in range(count):
        total += await asyncio.to_thread(trivial_call)
    return total


async def timed(n, threads):
    asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=threads))
    await round_trips(8 * threads)  # warm-up: threads started, code paths warm
    start = time.perf_counter()
    result = await round_trips(n)
    return (time.perf_counter() - start) * 1e3, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="number of round trips")
    parser.add_argument("--threads", type=int, default=2, help="threads in the pool")
    args = parser.parse_args()
    if args.n < 1 or args.threads < 1:
        parser.error("--n and --threads must be >= 1")
    ms, result = asyncio.run(timed(args.n, args.threads))
    print(json.dumps({"ms": round(ms, 3), "result": result, "us_per_roundtrip": round(ms * 1e3 / args.n, 3),
                      "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
