// Peer for `gearbox-bench channel_pingpong`: two goroutines bounce a counter through
// two unbuffered channels.
//
// How it maps to gearbox: gearbox runs two tasks on one loop joined by two channels,
// ping and pong; the pinger sends the counter on ping, the ponger receives it, adds one
// and sends it back on pong, n times. Each round trip is two task switches. Here the
// tasks are the main goroutine (pinger) and one spawned goroutine (ponger), and the
// channels are unbuffered, so every send is a rendezvous. runtime.GOMAXPROCS(1) is set
// so both goroutines share one OS thread and the benchmark measures goroutine switching
// on one thread, as the gearbox loop does, not cross-core wake-ups.
//
// Only the n round trips are timed (monotonic clock). Prints one JSON line:
// {"ms": ..., "result": n, "ns_per_switch": ms*1e6/(2n)}.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func main() {
	n := flag.Int64("n", 1000000, "number of round trips")
	flag.Parse()
	if flag.NArg() != 0 || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: channel_pingpong [--n N]   (N >= 1)")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)

	ping := make(chan int64)
	pong := make(chan int64)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
	}()

	start := time.Now()
	counter := int64(0)
	for i := int64(0); i < *n; i++ {
		ping <- counter
		counter = <-pong
	}
	elapsed := time.Since(start)
	close(ping)

	ms := float64(elapsed.Nanoseconds()) / 1e6
	fmt.Printf("{\"ms\": %.3f, \"result\": %d, \"ns_per_switch\": %.2f}\n",
		ms, counter, ms*1e6/float64(2*(*n)))
}
