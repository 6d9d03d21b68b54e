// Peer for `gearbox-bench rt_chained_spawn`: a chain of n goroutines, each starting the
// next and ending (Tokio's chained_spawn).
//
// How it maps to gearbox: on a Runtime of T workers, gearbox's benchmark thread spawns
// the first link from outside; each link counts itself in an atomic, spawns the next
// link detached (nobody waits for it) and ends; the last one signals the benchmark
// thread, which blocks until then (as Tokio's block_on thread blocks on a std channel).
// Here each link is a goroutine that counts itself, starts the next with `go` and
// returns; the last closes a channel that the main goroutine receives from. GOMAXPROCS
// is T. The result is the count of links that ran, n.
//
// The work runs once untimed first, as gearbox does (Tokio's criterion warms up). Then it
// is timed from starting the first link to the main goroutine's wake-up (monotonic
// clock); process start is not timed. Prints one JSON line:
// {"ms": ..., "result": n, "ns_per_spawn": ms*1e6/n, "threads": T}.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

func link(ran *atomic.Int64, done chan<- struct{}, remaining int64) {
	ran.Add(1)
	if remaining > 1 {
		go link(ran, done, remaining-1)
	} else {
		close(done)
	}
}

func chainedSpawn(n int64) int64 {
	var ran atomic.Int64
	done := make(chan struct{})
	go link(&ran, done, n)
	<-done
	return ran.Load()
}

func main() {
	n := flag.Int64("n", 1000, "number of goroutines in the chain")
	threads := flag.Int("threads", 2, "GOMAXPROCS")
	flag.Parse()
	if flag.NArg() != 0 || *n < 1 || *threads < 1 {
		fmt.Fprintln(os.Stderr, "usage: rt_chained_spawn [--n N] [--threads T]   (N >= 1, T >= 1)")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*threads)

	chainedSpawn(*n) // warm-up
	start := time.Now()
	ran := chainedSpawn(*n)
	elapsed := time.Since(start)

	ms := float64(elapsed.Nanoseconds()) / 1e6
	fmt.Printf("{\"ms\": %.3f, \"result\": %d, \"ns_per_spawn\": %.2f, \"threads\": %d}\n",
		ms, ran, ms*1e6/float64(*n), *threads)
}
