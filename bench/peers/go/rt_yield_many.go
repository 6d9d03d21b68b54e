// Peer for `gearbox-bench rt_yield_many`: 200 goroutines each yielding n times
// (Tokio's yield_many).
//
// How it maps to gearbox: a task on a Runtime of T workers spawns 200 tasks, each
// awaiting yield_now() n times (back to the run queue behind the others), and awaits
// them all; each returns how many times it yielded. Here the main goroutine starts 200
// goroutines, each calling runtime.Gosched() n times (it goes to the global run queue
// and another goroutine runs), and waits on a sync.WaitGroup; each adds its count of
// yields to an atomic total. GOMAXPROCS is T. The result is the total, 200 * n.
//
// The work runs once untimed first, as gearbox does (Tokio's criterion warms up). Then it
// is timed from the first `go` to the end of the wait (monotonic clock); process start is
// not timed. Prints one JSON line:
// {"ms": ..., "result": 200*n, "ns_per_yield": ms*1e6/(200*n), "threads": T}.
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

const yieldingGoroutines = 200

func yieldMany(n int64) int64 {
	var yields atomic.Int64
	var wg sync.WaitGroup
	wg.Add(yieldingGoroutines)
	for i := 0; i < yieldingGoroutines; i++ {
		go func() {
			done := int64(0)
			for ; done < n; done++ {
				runtime.Gosched()
			}
			yields.Add(done)
			wg.Done()
		}()
	}
	wg.Wait()
	return yields.Load()
}

func main() {
	n := flag.Int64("n", 1000, "yields per goroutine")
	threads := flag.Int("threads", 2, "GOMAXPROCS")
	flag.Parse()
	if flag.NArg() != 0 || *n < 1 || *threads < 1 {
		fmt.Fprintln(os.Stderr, "usage: rt_yield_many [--n N] [--threads T]   (N >= 1, T >= 1)")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*threads)

	yieldMany(*n) // warm-up
	start := time.Now()
	yields := yieldMany(*n)
	elapsed := time.Since(start)

	ms := float64(elapsed.Nanoseconds()) / 1e6
	fmt.Printf("{\"ms\": %.3f, \"result\": %d, \"ns_per_yield\": %.2f, \"threads\": %d}\n",
		ms, yields, ms*1e6/float64(yieldingGoroutines*(*n)), *threads)
}
