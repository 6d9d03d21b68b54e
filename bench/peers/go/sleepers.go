// Peer for `gearbox-bench sleepers`: n goroutines that each sleep S seconds at once.
//
// How it maps to gearbox: gearbox spawns n tasks on one loop, each awaiting
// sleep_for(S), then waits for all of them. Here each task is a goroutine calling
// time.Sleep (the Go runtime parks the goroutine on its timer heap; no OS thread is
// held), and a sync.WaitGroup waits for all of them. GOMAXPROCS is left at its default.
// The result is the number of goroutines that completed their sleep (counted with an
// atomic), so a correct run prints result == n.
//
// The time from spawning the first goroutine to the last one finishing is measured with
// the monotonic clock (time.Now); it is at least S. Prints one JSON line:
// {"ms": ..., "result": n}.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	n := flag.Int64("n", 1000000, "number of sleeping goroutines")
	seconds := flag.Float64("seconds", 1, "how long each goroutine sleeps")
	flag.Parse()
	if flag.NArg() != 0 || *n < 0 || *seconds < 0 {
		fmt.Fprintln(os.Stderr, "usage: sleepers [--n N] [--seconds S]   (N >= 0, S >= 0)")
		os.Exit(2)
	}
	duration := time.Duration(*seconds * float64(time.Second))

	start := time.Now()
	var wg sync.WaitGroup
	var completed atomic.Int64
	wg.Add(int(*n))
	for i := int64(0); i < *n; i++ {
		go func() {
			time.Sleep(duration)
			completed.Add(1)
			wg.Done()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	fmt.Printf("{\"ms\": %.3f, \"result\": %d}\n", float64(elapsed.Nanoseconds())/1e6, completed.Load())
}
