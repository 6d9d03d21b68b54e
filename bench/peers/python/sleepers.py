#!/usr/bin/env python3
"""Peer for `gearbox-bench sleepers`: n asyncio tasks that each sleep S seconds at once.

How it maps to gearbox: gearbox spawns n tasks on one loop, each awaiting sleep_for(S),
then waits for all of them. Here each task runs asyncio.sleep(S) (a loop.call_later
timer in the event loop's heap) and asyncio.gather awaits all of them, on the default
event loop started by asyncio.run. The result counts the tasks that woke up, so a
correct run prints result == n.

The time from creating the first task to the gather completing is measured with
time.perf_counter (monotonic); it is at least S, plus the time to create the tasks, since
a task's sleep starts only when the task first runs. Prints one JSON line:
{"ms": ..., "result": n}.
"""
import argparse
import asyncio
import json
import math
import time


async def sleeper(seconds):
    await asyncio.sleep(seconds)
    return 1


async def timed(n, seconds):
    start = time.perf_counter()
    results = await asyncio.gather(*[sleeper(seconds) for _ in range(n)])
    return (time.perf_counter() - start) * 1e3, sum(results)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000000, help="number of sleeping tasks")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long each task sleeps")
    args = parser.parse_args()
    if args.n < 0 or not (args.seconds >= 0 and math.isfinite(args.seconds)):
        parser.error("--n must be >= 0 and --seconds a finite number >= 0")
    ms, result = asyncio.run(timed(args.n, args.seconds))
    print(json.dumps({"ms": round(ms, 3), "result": result}), flush=True)


if __name__ == "__main__":
    main()
