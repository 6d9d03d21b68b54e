#!/usr/bin/env python3
"""Peer for `gearbox-bench channel_pingpong`: two asyncio tasks bounce a counter through
two queues.

How it maps to gearbox: gearbox runs two tasks on one loop joined by two channels, ping
and pong; the pinger sends the counter on ping, the ponger receives it, adds one and
sends it back on pong, n times. Each round trip is two task switches. Here the channels
are asyncio.Queue(maxsize=1), the nearest thing asyncio has to a channel. A put into
the empty queue does not suspend; each get on an empty queue suspends its task, so each
round trip switches task twice, as in gearbox. Both tasks run on the default event loop
started by asyncio.run.

Only the n round trips are timed (time.perf_counter, monotonic). Prints one JSON line:
{"ms": ..., "result": n, "ns_per_switch": ms*1e6/(2n)}.
"""
import argparse
import asyncio
import json
import time


async def pinger(ping, pong, round_trips):
    counter = 0
    for _ in range(round_trips):
        await ping.put(counter)
        counter = await pong.get()
    return counter


async def ponger(ping, pong, round_trips):
    for _ in range(round_trips):
        value = await ping.get()
        await pong.put(value + 1)


async def timed(round_trips):
    ping = asyncio.Queue(maxsize=1)
    pong = asyncio.Queue(maxsize=1)
    start = time.perf_counter()
    counter, _ = await asyncio.gather(pinger(ping, pong, round_trips), ponger(ping, pong, round_trips))
    return (time.perf_counter() - start) * 1e3, counter


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000000, help="number of round trips")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be >= 1")
    ms, counter = asyncio.run(timed(args.n))
    print(json.dumps({"ms": round(ms, 3), "result": counter, "ns_per_switch": round(ms * 1e6 / (2 * args.n), 2)}),
          flush=True)


if __name__ == "__main__":
    main()
