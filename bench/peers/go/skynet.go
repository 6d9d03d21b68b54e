// Peer for `gearbox-bench skynet` and `rt_skynet`: the classic skynet benchmark in Go.
//
// How it maps to gearbox: gearbox spawns a task per tree node on one loop; the root
// covers leaves 0..n-1 and every node spawns 10 children, each covering a tenth of its
// range, down to single leaves that return their own number; each parent sums its
// children's results. Here every non-root node is a goroutine that reports to its
// parent through a channel (1,111,110 goroutines for n = 1,000,000; the root runs on
// the main goroutine). The per-parent channel is buffered with room for all 10
// children, so a child that finishes first never blocks waiting for its parent: the
// usual way a Go programmer writes a fan-in of known size. Without --threads, GOMAXPROCS
// is left at its default (all cores), as a Go user would run it; the gearbox async
// version uses one thread, so this peer may use more cores than gearbox does. With
// --threads T (rt_skynet, where gearbox runs the tree on a Runtime of T workers whose
// tasks spawn and join their children), GOMAXPROCS is T.
//
// Only the tree itself is timed (time.Now reads the monotonic clock), not process
// start-up. Prints one JSON line: {"ms": ..., "result": n*(n-1)/2, "tasks": ...}.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

const fanOut = 10

// skynet sums the leaves num..num+size-1 and sends the sum on out.
func skynet(out chan<- int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	children := make(chan int64, fanOut)
	step := size / fanOut
	for i := int64(0); i < fanOut; i++ {
		go skynet(children, num+i*step, step)
	}
	var sum int64
	for i := 0; i < fanOut; i++ {
		sum += <-children
	}
	out <- sum
}

func isPowerOf10(n int64) bool {
	for n > 1 && n%10 == 0 {
		n /= 10
	}
	return n == 1
}

// taskCount is the number of spawned nodes: every node of the tree except the root.
func taskCount(n int64) int64 {
	total := int64(0)
	for level := n; level >= 1; level /= fanOut {
		total += level
	}
	return total - 1
}

func main() {
	n := flag.Int64("n", 1000000, "number of leaves; a power of 10")
	threads := flag.Int("threads", 0, "GOMAXPROCS (0: Go's default, every core)")
	flag.Parse()
	if flag.NArg() != 0 || !isPowerOf10(*n) || *threads < 0 {
		fmt.Fprintln(os.Stderr, "usage: skynet [--n N] [--threads T]   (N must be a power of 10, >= 1)")
		os.Exit(2)
	}
	if *threads > 0 {
		runtime.GOMAXPROCS(*threads)
	}

	start := time.Now()
	root := make(chan int64, 1)
	skynet(root, 0, *n)
	result := <-root
	elapsed := time.Since(start)

	fmt.Printf("{\"ms\": %.3f, \"result\": %d, \"tasks\": %d}\n",
		float64(elapsed.Nanoseconds())/1e6, result, taskCount(*n))
}
