// Peer for `gearbox-bench rt_spawn_many`: n goroutines started at once, each counting
// itself, all waited for (Tokio's spawn_many_remote_idle).
//
// How it maps to gearbox: gearbox's benchmark thread, outside its Runtime of T workers,
// spawns n tasks with rt.spawn (they go through the runtime's injection queue), each
// adding one to an atomic counter, then awaits every handle in one rt.run. Go has no
// thread outside its scheduler: the main goroutine itself runs on one of the
// GOMAXPROCS(T) Ps. So here the main goroutine starts the n goroutines (they go to its
// P's run queue, spill to the global queue, and idle Ps steal them) and waits on a
// sync.WaitGroup. Each goroutine adds one to an atomic counter; the result is the
// counter, n when every goroutine ran.
//
// The work runs once untimed first, as gearbox does (Tokio's criterion warms up), so the
// Ps' threads have started and goroutine stacks are cached. Then it is timed from the
// first `go` to the end of the wait (monotonic clock); process start is not timed.
// Prints one JSON line: {"ms": ..., "result": n, "ns_per_task": ms*1e6/n, "threads": T}.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func spawnMany(n int64) int64 {
	var completed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func() {
			completed.Add(1)
			wg.Done()
		}()
	}
	wg.Wait()
	return completed.Load()
}

func main() {
	n := flag.Int64("n", 10000, "number of goroutines")
	threads := flag.Int("threads", 2, "GOMAXPROCS")
	flag.Parse()
	if flag.NArg() != 0 || *n < 1 || *threads < 1 {
		fmt.Fprintln(os.Stderr, "usage: rt_spawn_many [--n N] [--threads T]   (N >= 1, T >= 1)")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*threads)

	spawnMany(*n) // warm-up
	start := time.Now()
	completed := spawnMany(*n)
	elapsed := time.Since(start)

	ms := float64(elapsed.Nanoseconds()) / 1e6
	fmt.Printf("{\"ms\": %.3f, \"result\": %d, \"ns_per_task\": %.2f, \"threads\": %d}\n",
		ms, completed, ms*1e6/float64(*n), *threads)
}
