// Peer for `gearbox-bench rt_ping_pong`: n pings at once, each a goroutine that starts a
// pong goroutine and exchanges two one-shot messages with it (Tokio's ping_pong).
//
// How it maps to gearbox: this peer is Tokio's benchmark as Go would write it. Each ping
// goroutine makes two channels with room for one value (Tokio's oneshot: the send never
// blocks), starts a pong goroutine that receives on the first and sends on the second,
// sends on the first and receives on the second, then counts itself down in an atomic;
// the last one closes a channel that the main goroutine waits on. Per ping: 2 goroutines
// and 2 messages. gearbox's Runtime cannot run channels yet, so gearbox hands off by
// spawn and join instead: a ping task spawns a relay task and awaits its JoinHandle, the
// relay spawns an answer task and awaits it: 3 tasks and 2 hand-offs per ping, all n
// pings spawned by one task and awaited by it. So gearbox starts one task more per ping
// than this peer; the hand-offs are as many. GOMAXPROCS is T. The result is the number
// of pings answered, n.
//
// The work runs once untimed first, as gearbox does (Tokio's criterion warms up). Then it
// is timed from the first `go` to the main goroutine's wake-up (monotonic clock); process
// start is not timed. Prints one JSON line:
// {"ms": ..., "result": n, "ns_per_ping": ms*1e6/n, "threads": T}.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

func pingPong(n int64) int64 {
	var remaining, answered atomic.Int64
	remaining.Store(n)
	done := make(chan struct{})
	for i := int64(0); i < n; i++ {
		go func() {
			ping := make(chan struct{}, 1)
			pong := make(chan struct{}, 1)
			go func() {
				<-ping
				pong <- struct{}{}
			}()
			ping <- struct{}{}
			<-pong
			answered.Add(1)
			if remaining.Add(-1) == 0 {
				close(done)
			}
		}()
	}
	<-done
	return answered.Load()
}

func main() {
	n := flag.Int64("n", 1000, "number of pings")
	threads := flag.Int("threads", 2, "GOMAXPROCS")
	flag.Parse()
	if flag.NArg() != 0 || *n < 1 || *threads < 1 {
		fmt.Fprintln(os.Stderr, "usage: rt_ping_pong [--n N] [--threads T]   (N >= 1, T >= 1)")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*threads)

	pingPong(*n) // warm-up
	start := time.Now()
	answered := pingPong(*n)
	elapsed := time.Since(start)

	ms := float64(elapsed.Nanoseconds()) / 1e6
	fmt.Printf("{\"ms\": %.3f, \"result\": %d, \"ns_per_ping\": %.2f, \"threads\": %d}\n",
		ms, answered, ms*1e6/float64(*n), *threads)
}
