// Peer for `gearbox-bench tcp_echo`: a TCP echo server in Go, one goroutine per
// connection, driven by the harness's load generator (run_echo_load) through
// gearbox::bench::ServerPeer.
//
// Protocol (bench/harness/server_peer.hpp): `--port P` (default 0: any free port) and
// `--threads T` (GOMAXPROCS, default 1). Binds 127.0.0.1:P, prints one line {"port": N}
// and flushes, then echoes every byte read on a connection back on it, in order. Exits 0
// on SIGTERM or SIGINT, and when stdin reaches end of file if stdin is a pipe or a socket
// (what the harness gives it: a server whose driver died must not linger).
//
// How it maps to gearbox: gearbox's echo server is one task per connection, reading into
// a 16 KiB buffer and writing all of it back before reading again, on one loop or on a
// Runtime of T workers. Here each connection is a goroutine doing the same with
// conn.Read and conn.Write (which writes all of it), on GOMAXPROCS = T: Go's netpoller
// parks the goroutine on EAGAIN, as gearbox parks the task. Go's listen backlog is the
// kernel's somaxconn (net.core.somaxconn, 4096 on Debian 12), the others' 4096. Nagle is
// off on accepted connections (Go's default), as the Asio peer sets it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

const bufferBytes = 16 * 1024

func echo(conn net.Conn) {
	defer conn.Close()
	buffer := make([]byte, bufferBytes)
	for {
		n, err := conn.Read(buffer)
		if n > 0 {
			if _, werr := conn.Write(buffer[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a reset: this connection is gone, the others are not
		}
	}
}

func acceptForever(listener net.Listener) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: pause (the listener stays readable) and try again.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go echo(conn)
	}
}

func stdinIsPipeOrSocket() bool {
	info, err := os.Stdin.Stat()
	if err != nil {
		return false
	}
	mode := info.Mode()
	return mode&os.ModeNamedPipe != 0 || mode&os.ModeSocket != 0
}

func main() {
	port := flag.Int("port", 0, "port to listen on (0: any free port)")
	threads := flag.Int("threads", 1, "GOMAXPROCS")
	flag.Parse()
	if flag.NArg() != 0 || *port < 0 || *port > 65535 || *threads < 1 || *threads > 1024 {
		fmt.Fprintln(os.Stderr, "usage: peer-go-tcp_echo_server [--port P] [--threads T]")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*threads)

	listener, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer-go-tcp_echo_server:", err)
		os.Exit(1)
	}
	// Caught before the port line: the harness may send SIGTERM as soon as it has read it.
	stop := make(chan struct{}, 2)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("{\"port\": %d}\n", listener.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	go func() {
		<-signals
		stop <- struct{}{}
	}()
	if stdinIsPipeOrSocket() {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			stop <- struct{}{}
		}()
	}
	go acceptForever(listener)
	<-stop
	listener.Close()
	os.Exit(0)
}
