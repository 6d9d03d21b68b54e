#!/usr/bin/env python3
"""Peer for `gearbox-bench skynet`: the skynet tree of asyncio tasks.

How it maps to gearbox: gearbox spawns a task per tree node on one loop; the root covers
leaves 0..n-1, every node spawns 10 children each covering a tenth of its range, down to
single leaves that return their own number, and each parent sums its children. Here each
non-root node is an asyncio.Task created with asyncio.create_task, on the one event loop
started by asyncio.run (the default loop; uvloop is not in the standard library). A parent
creates all 10 child tasks, then awaits them in turn: all siblings exist at once, as in
gearbox. This is the fastest idiomatic form measured: asyncio.gather over the same children
(with or without create_task) was ~1.4x slower, because each gather builds a
_GatheringFuture and a done-callback per child; an asyncio.TaskGroup was ~1.25x slower.

Only the tree itself is timed (time.perf_counter, a monotonic clock), not interpreter
start-up or event loop creation. Prints one JSON line:
{"ms": ..., "result": n*(n-1)/2, "tasks": <spawned tasks>}.
"""
import argparse
import asyncio
import json
import time

FAN_OUT = 10


async def skynet(num, size):
    """Returns the sum of the leaves num..num+size-1."""
    if size == 1:
        return num
    step = size // FAN_OUT
    children = [asyncio.create_task(skynet(num + i * step, step)) for i in range(FAN_OUT)]
    total = 0
    for child in children:
        total += await child
    return total


def is_power_of_10(n):
    while n > 1 and n % 10 == 0:
        n //= 10
    return n == 1


def task_count(n):
    """Every node of the tree except the root is a task."""
    total, level = 0, n
    while level >= 1:
        total += level
        level //= FAN_OUT
    return total - 1


async def timed(n):
    start = time.perf_counter()
    result = await skynet(0, n)
    return (time.perf_counter() - start) * 1e3, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000000, help="number of leaves; a power of 10")
    args = parser.parse_args()
    if not is_power_of_10(args.n):
        parser.error("--n must be a power of 10 (>= 1)")
    ms, result = asyncio.run(timed(args.n))
    print(json.dumps({"ms": round(ms, 3), "result": result, "tasks": task_count(args.n)}), flush=True)


if __name__ == "__main__":
    main()
