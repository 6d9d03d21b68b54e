// Peer for `gearbox-bench chat_10k`: the chat server of examples/02_chat (gearbox-chat)
// in Go, a goroutine per client, driven by gearbox-chat-load --spawn.
//
// Command line, as gearbox-chat's: --host H (numeric, default 127.0.0.1), --port P
// (default 0: any free port), --max-line, --max-nick, --max-queued-bytes,
// --announce-limit, --quiet (log nothing but errors), plus --threads T (GOMAXPROCS,
// default 1, as gearbox-chat runs one loop on one thread). Raises the soft limit on open
// descriptors to the hard one, prints "peer-go-chat_server listening on 127.0.0.1:PORT"
// on stdout (gearbox-chat-load reads the port from it), serves until SIGINT or SIGTERM,
// then sends every client the goodbye line, closes them all and exits 0. Exit 1 if it
// cannot listen, 2 on bad arguments.
//
// The protocol, one line each way ('\n', a '\r' before it is dropped), byte for byte
// gearbox-chat's (examples/02_chat/chat_server.hpp, README.md):
//
//	on connect    "* welcome to gearbox chat, you are guestN (commands: /nick NAME, /who, /quit)"
//	              and "* guestN joined" to the others
//	/nick NAME    "* you are now NAME" and "* OLD is now NAME" to the others; or
//	              "! invalid nick: ..." / "! nick taken: NAME" (the client keeps its nick)
//	/who          "* K online: a, b, c" (sorted; at most 1000 names, then ", and R more")
//	/quit         "* bye", then the connection is closed; "* NICK left" to the others
//	/anything     "! unknown command: /anything (commands: /nick NAME, /who, /quit)"
//	other text    "NICK: text" to everyone else (never echoed); empty lines are ignored
//	a line longer than --max-line bytes: "! line too long (the limit is N bytes)"; the
//	              rest of it is skipped and the client stays connected
//
// Nicks are 1..max-nick of [A-Za-z0-9_-], unique ignoring (ASCII) case. Joins and leaves
// are announced only while the room has at most --announce-limit members (default 1000;
// a leave with a reason reads "* NICK left (too slow)", "(connection lost: ...)"), never
// while stopping. A client whose queued output would pass --max-queued-bytes (default
// 256 KiB; each line costs its text plus a 16-byte slot) is disconnected on the spot,
// reason "too slow". A leaving client (/quit, the stop) has 2 s to read its last lines
// before it is closed regardless. The stop line is "* server shutting down, bye".
//
// How it maps to gearbox: gearbox-chat is one loop on one thread; each connection is a
// session task with a reader task (BufferedReader::read_line, max_line + 1 bytes) and a
// writer task fed by a queue of shared immutable lines; broadcast appends the one line
// to every other member's queue and wakes its writer, which joins whatever has queued
// up (up to 64 KiB) into one write. Here each connection is a goroutine that reads
// (bufio.Reader.ReadSlice, a buffer of max_line + 2 bytes) and handles its lines,
// plus a writer goroutine; the queue is a []string under the client's mutex (a Go
// string header is 16 bytes, like gearbox's shared_ptr slot, and the text is shared by
// all recipients) with a 1-buffered wake channel, and the writer swaps the whole queue
// out and copies it into one buffer per write of up to 64 KiB. Broadcast never blocks:
// enqueueing is a mutex, an append and a non-blocking send. The room (members, nicks)
// is under a sync.RWMutex: messages and /who take it shared (so with --threads > 1
// several senders broadcast at once; each sender's order is kept because its own lines
// are handled in order by its one goroutine), joins, leaves, nick changes and drops take
// it exclusively. gearbox cancels a reader on stop; Go's way to interrupt a blocked
// Read is a read deadline in the past, and a dropped client's conn is closed, which ends
// both of its goroutines, as gearbox's close does with EBADF. One difference shows in
// the figures: under a burst, Go's scheduler runs the writers a broadcast woke before it
// polls the network for the next ready readers, while gearbox's loop runs every reader
// that epoll found ready first, so here a write carries fewer lines (chat_10k's burst,
// 10,518,500 lines: 520,000 to 620,000 writes here, about 44,000 in gearbox-chat).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	programName = "peer-go-chat_server"
	goodbye     = "* server shutting down, bye\n"
	commands    = "(commands: /nick NAME, /who, /quit)"
	whoMax      = 1000            // names at most in a /who reply
	slotBytes   = 16              // what a queued line costs besides its text
	writeBatch  = 64 * 1024       // queued lines joined into one write, up to this size
	queueKeep   = 16              // a drained queue keeps this many slots, a bigger one is freed
	batchKeep   = 4096            // the writer's buffer is freed when idle if bigger than this
	closeGrace  = 2 * time.Second // how long a leaving client has to read its last lines
)

type options struct {
	maxLine        int
	maxNick        int
	maxQueuedBytes int
	announceLimit  int
	quiet          bool
}

type client struct {
	conn *net.TCPConn

	// Guarded by server.mu; written only by this client's own reader goroutine (under
	// mu.Lock), so that goroutine may read them without the lock.
	nick  string
	key   string // asciiLower(nick): the key in server.byNick
	index int    // position in server.members; -1 when not a member

	mu      sync.Mutex
	queue   []string // lines not yet taken by the writer
	queued  int      // bytes queued, the batch being written included (text + slots)
	closing bool     // takes no more lines: the writer writes what is left and ends
	reason  string   // why it leaves (the first one given, but "too slow" wins)
	wake    chan struct{}
}

type server struct {
	opts     options
	listener *net.TCPListener

	mu        sync.RWMutex
	members   []*client
	byNick    map[string]*client
	nextGuest uint64
	stopping  atomic.Bool // set under mu.Lock

	sessions sync.WaitGroup

	accepted, peak, messages, deliveries, writes, bytesWritten, droppedSlow atomic.Uint64
}

func (s *server) log(format string, args ...any) {
	if !s.opts.quiet {
		fmt.Fprintf(os.Stderr, programName+": "+format+"\n", args...)
	}
}

// ---- a client's queue and writer --------------------------------------------------

// enqueue queues line (ending in '\n') for c. It returns whether the line was queued,
// and whether c has just passed its bound (the caller must then drop it).
func (c *client) enqueue(line string, maxQueued int) (queued, overflow bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false, false
	}
	cost := len(line) + slotBytes
	if c.queued+cost > maxQueued {
		c.closing = true // from now on: its drop takes it out of the room
		c.mu.Unlock()
		return false, true
	}
	c.queue = append(c.queue, line)
	c.queued += cost
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // the writer has a wake-up pending already
	}
	return true, false
}

func (c *client) setReason(reason string) {
	c.mu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	c.mu.Unlock()
}

// finish takes no more lines; the writer writes what is queued and ends.
func (c *client) finish() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// writeLoop writes what queues up for c, as much as has queued in one write (up to
// writeBatch), until c is closing and its queue is empty; then it shuts the write side
// down, a clean end of stream after the last line.
func (s *server) writeLoop(c *client, done chan<- struct{}) {
	defer close(done)
	var taken []string
	var batch []byte
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closing {
			if cap(c.queue) > queueKeep {
				c.queue = nil
			}
			c.mu.Unlock()
			if cap(batch) > batchKeep {
				batch = nil
			}
			<-c.wake
			c.mu.Lock()
		}
		if len(c.queue) == 0 { // closing, and everything was written
			c.mu.Unlock()
			break
		}
		taken, c.queue = c.queue, taken[:0]
		c.mu.Unlock()

		for i := 0; i < len(taken); {
			batch = batch[:0]
			lines := 0
			for i < len(taken) && (len(batch) == 0 || len(batch)+len(taken[i]) <= writeBatch) {
				batch = append(batch, taken[i]...)
				taken[i] = "" // let the line go once every recipient has written it
				i++
				lines++
			}
			_, err := c.conn.Write(batch)
			s.writes.Add(1)
			s.bytesWritten.Add(uint64(len(batch)))
			c.mu.Lock()
			c.queued -= minInt(len(batch)+lines*slotBytes, c.queued)
			c.mu.Unlock()
			if err != nil {
				// The peer is gone, or the conn was closed (a drop, the grace ran out):
				// take no more lines, and end the reader too.
				c.mu.Lock()
				if c.reason == "" {
					c.reason = lostReason(err)
				}
				c.closing = true
				c.queue = nil
				c.queued = 0
				c.mu.Unlock()
				c.conn.Close()
				return
			}
		}
		if cap(taken) > queueKeep {
			taken = nil // after a burst: the next one may be small
		}
	}
	c.conn.CloseWrite()
}

// ---- the room ------------------------------------------------------------------------

// broadcastLocked queues line for every member but except; s.mu is held (either way).
// Members that pass their bound are appended to drops.
func (s *server) broadcastLocked(line string, except *client, drops []*client) []*client {
	var delivered uint64
	for _, m := range s.members {
		if m == except {
			continue
		}
		queued, overflow := m.enqueue(line, s.opts.maxQueuedBytes)
		if queued {
			delivered++
		} else if overflow {
			drops = append(drops, m)
		}
	}
	s.deliveries.Add(delivered)
	return drops
}

// reply queues text (without its '\n') for c alone; drops gets c if it passed its bound.
func (s *server) reply(c *client, text string, drops []*client) []*client {
	queued, overflow := c.enqueue(text+"\n", s.opts.maxQueuedBytes)
	if queued {
		s.deliveries.Add(1)
	} else if overflow {
		drops = append(drops, c)
	}
	return drops
}

// dropLocked disconnects the clients in drops (and those that leaving announcements push
// past their bound in turn); s.mu is held exclusively.
func (s *server) dropLocked(drops []*client) {
	for len(drops) > 0 {
		c := drops[len(drops)-1]
		drops = drops[:len(drops)-1]
		s.droppedSlow.Add(1)
		s.log("disconnected %s: too slow (over %d bytes queued)", c.nick, s.opts.maxQueuedBytes)
		c.mu.Lock()
		c.reason = "too slow"
		c.mu.Unlock()
		drops = s.leaveLocked(c, "too slow", drops)
		c.mu.Lock()
		c.queue = nil
		c.queued = 0
		c.mu.Unlock()
		c.finish()
		c.conn.Close() // the reader and the writer wake up with an error and end
	}
}

// processDrops takes s.mu exclusively to drop the clients in drops, if any.
func (s *server) processDrops(drops []*client) {
	if len(drops) == 0 {
		return
	}
	s.mu.Lock()
	s.dropLocked(drops)
	s.mu.Unlock()
}

func (s *server) nextGuestNickLocked() string {
	for {
		s.nextGuest++
		nick := "guest" + strconv.FormatUint(s.nextGuest, 10)
		if _, taken := s.byNick[nick]; !taken { // someone may have taken it with /nick
			return nick
		}
	}
}

func (s *server) join(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.nick = s.nextGuestNickLocked()
	c.key = c.nick
	c.index = len(s.members)
	s.members = append(s.members, c)
	s.byNick[c.key] = c
	if n := uint64(len(s.members)); n > s.peak.Load() {
		s.peak.Store(n)
	}
	drops := s.reply(c, "* welcome to gearbox chat, you are "+c.nick+" "+commands, nil)
	if len(s.members) <= s.opts.announceLimit {
		drops = s.broadcastLocked("* "+c.nick+" joined\n", c, drops)
	}
	s.dropLocked(drops)
	if s.stopping.Load() {
		c.conn.SetReadDeadline(time.Now()) // stopped meanwhile: the reader ends at once
	}
}

// leaveLocked takes c out of the room (if it still is in it) and announces it while the
// room is small and not stopping; s.mu is held exclusively.
func (s *server) leaveLocked(c *client, reason string, drops []*client) []*client {
	if c.index < 0 {
		return drops
	}
	announced := !s.stopping.Load() && len(s.members) <= s.opts.announceLimit
	last := s.members[len(s.members)-1]
	s.members[c.index] = last
	last.index = c.index
	s.members[len(s.members)-1] = nil
	s.members = s.members[:len(s.members)-1]
	c.index = -1
	delete(s.byNick, c.key)
	if announced {
		text := "* " + c.nick + " left"
		if reason != "" && reason != "left" && reason != "quit" {
			text += " (" + reason + ")"
		}
		drops = s.broadcastLocked(text+"\n", nil, drops)
	}
	return drops
}

func (s *server) leave(c *client, reason string) {
	s.mu.Lock()
	s.dropLocked(s.leaveLocked(c, reason, nil))
	s.mu.Unlock()
}

// stop closes the listener, queues the goodbye for every member and ends its reader;
// each session then lets its writer flush (within closeGrace) and closes. Idempotent.
func (s *server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return
	}
	s.stopping.Store(true)
	s.listener.Close()
	var drops []*client
	for _, m := range s.members {
		drops = s.reply(m, goodbye[:len(goodbye)-1], drops)
		m.finish() // the goodbye is its last line
		m.conn.SetReadDeadline(time.Now())
	}
	s.dropLocked(drops)
}

// ---- a client's session and reader -----------------------------------------------------

func (s *server) session(conn *net.TCPConn) {
	defer s.sessions.Done()
	c := &client{conn: conn, index: -1, wake: make(chan struct{}, 1)}
	s.join(c)
	writerDone := make(chan struct{})
	go s.writeLoop(c, writerDone)

	c.setReason(s.readLoop(c)) // until /quit, end of stream, an error, a drop or the stop
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	s.leave(c, reason)
	c.finish()
	// The writer writes what is still queued ("* bye", the goodbye), then ends. A client
	// that does not read gets closeGrace to take it; then it is closed regardless.
	grace := time.NewTimer(closeGrace)
	select {
	case <-writerDone:
	case <-grace.C:
	}
	grace.Stop()
	conn.Close()
}

// readLoop reads and handles c's lines; it returns why it stopped.
func (s *server) readLoop(c *client) string {
	// Room for max-line bytes, the '\r' that nc -C and telnet send, and the '\n'.
	reader := bufio.NewReaderSize(c.conn, s.opts.maxLine+2)
	tooLong := "! line too long (the limit is " + strconv.Itoa(s.opts.maxLine) + " bytes)"
	for {
		line, err := reader.ReadSlice('\n')
		if err == bufio.ErrBufferFull { // no end of line in max-line + 2 bytes
			s.processDrops(s.reply(c, tooLong, nil))
			for err == bufio.ErrBufferFull { // skip the rest of that line
				_, err = reader.ReadSlice('\n')
			}
			if err == nil {
				if c.isClosing() {
					return s.closingReason()
				}
				continue
			}
			if err == io.EOF {
				return "left"
			}
			return s.readFailed(err)
		}
		if err != nil {
			if err == io.EOF && len(line) == 0 {
				return "left"
			}
			if err == io.EOF {
				return "connection lost mid-line"
			}
			return s.readFailed(err)
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > s.opts.maxLine {
			s.processDrops(s.reply(c, tooLong, nil))
		} else if quit := s.handleLine(c, line); quit {
			return "quit"
		}
		if c.isClosing() { // dropped, its writer failed, or the stop
			return s.closingReason()
		}
	}
}

// closingReason is why the reader of a closing client ends: the stop, or a reason the
// client has already been given (a drop, a write that failed).
func (s *server) closingReason() string {
	if s.stopping.Load() {
		return "server stopping"
	}
	return ""
}

func (s *server) readFailed(err error) string {
	if s.stopping.Load() {
		return "server stopping" // stop() ended the read
	}
	return lostReason(err)
}

// lostReason words a read or write error as gearbox does: "connection lost: read:
// Connection reset by peer".
func lostReason(err error) string {
	var syscallErr *os.SyscallError
	if errors.As(err, &syscallErr) {
		text := syscallErr.Err.Error()
		if text != "" && text[0] >= 'a' && text[0] <= 'z' {
			text = string(text[0]-'a'+'A') + text[1:] // strerror's capital
		}
		return "connection lost: " + syscallErr.Syscall + ": " + text
	}
	return "connection lost: " + err.Error()
}

// handleLine handles one line (without its end of line); true after /quit.
func (s *server) handleLine(c *client, line []byte) (quit bool) {
	if len(line) == 0 {
		return false
	}
	if line[0] != '/' {
		s.messages.Add(1)
		text := c.nick + ": " + string(line) + "\n"
		s.mu.RLock()
		drops := s.broadcastLocked(text, c, nil)
		s.mu.RUnlock()
		s.processDrops(drops)
		return false
	}
	command, argument := line, []byte(nil)
	space := indexByte(line, ' ')
	if space >= 0 {
		command, argument = line[:space], trim(line[space+1:])
	}
	switch asciiLower(command) {
	case "/nick":
		s.handleNick(c, string(argument))
	case "/who":
		s.handleWho(c)
	case "/quit":
		s.processDrops(s.reply(c, "* bye", nil))
		return true
	default:
		shown := line
		if space >= 0 {
			shown = line[:space]
		}
		if len(shown) > 32 {
			shown = shown[:32]
		}
		s.processDrops(s.reply(c, "! unknown command: "+string(shown)+" "+commands, nil))
	}
	return false
}

func (s *server) validNick(name string) bool {
	if len(name) == 0 || len(name) > s.opts.maxNick {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

func (s *server) handleNick(c *client, name string) {
	if !s.validNick(name) {
		s.processDrops(s.reply(c, "! invalid nick: use 1 to "+strconv.Itoa(s.opts.maxNick)+" of A-Z a-z 0-9 _ -", nil))
		return
	}
	key := asciiLower([]byte(name))
	s.mu.Lock()
	defer s.mu.Unlock()
	if holder, taken := s.byNick[key]; taken && holder != c {
		s.dropLocked(s.reply(c, "! nick taken: "+name, nil))
		return
	}
	old := c.nick
	c.nick = name
	if c.index >= 0 {
		delete(s.byNick, c.key)
		s.byNick[key] = c
	}
	c.key = key
	drops := s.reply(c, "* you are now "+name, nil)
	if old != name {
		drops = s.broadcastLocked("* "+old+" is now "+name+"\n", c, drops)
	}
	s.dropLocked(drops)
}

func (s *server) handleWho(c *client) {
	s.mu.RLock()
	online := len(s.members)
	names := make([]string, 0, minInt(online, whoMax))
	for _, m := range s.members {
		if len(names) == whoMax {
			break
		}
		names = append(names, m.nick)
	}
	s.mu.RUnlock()
	sort.Strings(names)
	text := make([]byte, 0, 32+16*len(names))
	text = append(text, "* "...)
	text = strconv.AppendInt(text, int64(online), 10)
	text = append(text, " online: "...)
	for i, name := range names {
		if i > 0 {
			text = append(text, ", "...)
		}
		text = append(text, name...)
	}
	if online > len(names) {
		text = append(text, ", and "...)
		text = strconv.AppendInt(text, int64(online-len(names)), 10)
		text = append(text, " more"...)
	}
	s.processDrops(s.reply(c, string(text), nil))
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// asciiLower lower-cases A-Z only (as tolower in the C locale; other bytes stay as
// they are, valid UTF-8 or not).
func asciiLower(b []byte) string {
	out := []byte(string(b))
	for i, x := range out {
		if 'A' <= x && x <= 'Z' {
			out[i] = x + ('a' - 'A')
		}
	}
	return string(out)
}

// ---- main ------------------------------------------------------------------------------

func (s *server) acceptLoop() {
	backoffLogged := false
	for {
		conn, err := s.listener.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.stopping.Load() {
				return
			}
			// EMFILE and the like: pause (the pending connection stays queued) and retry.
			if !backoffLogged {
				s.mu.RLock()
				clients := len(s.members)
				s.mu.RUnlock()
				s.log("out of file descriptors at %d clients: new clients wait until some leave "+
					"(raise the limit with ulimit -n): %v", clients, err)
				backoffLogged = true
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if s.stopping.Load() {
			conn.Close()
			return
		}
		s.accepted.Add(1)
		s.sessions.Add(1)
		go s.session(conn)
	}
}

// raiseDescriptorLimit raises the soft limit on open descriptors (one per client) to the
// hard limit and returns it.
func raiseDescriptorLimit() uint64 {
	var limit syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit) != nil {
		return 0
	}
	if limit.Cur < limit.Max {
		limit.Cur = limit.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit)
	}
	return limit.Cur
}

func main() {
	host := flag.String("host", "127.0.0.1", "numeric address to listen on")
	port := flag.Int("port", 0, "port to listen on (0: any free port, printed at start)")
	threads := flag.Int("threads", 1, "GOMAXPROCS")
	var opts options
	flag.IntVar(&opts.maxLine, "max-line", 1024, "longest line accepted, in bytes")
	flag.IntVar(&opts.maxNick, "max-nick", 16, "longest nick, in characters")
	flag.IntVar(&opts.maxQueuedBytes, "max-queued-bytes", 256*1024,
		"a client with more outgoing bytes queued than this is disconnected")
	flag.IntVar(&opts.announceLimit, "announce-limit", 1000,
		"announce joins and leaves while the room has at most this many members")
	flag.BoolVar(&opts.quiet, "quiet", false, "log nothing but errors")
	flag.Parse()
	if flag.NArg() != 0 || *port < 0 || *port > 65535 || *threads < 1 || *threads > 1024 || opts.maxLine < 0 ||
		opts.maxLine > 1<<30 || opts.maxNick < 0 || opts.maxQueuedBytes < 0 || opts.announceLimit < 0 {
		fmt.Fprintln(os.Stderr, "usage: "+programName+" [--host H] [--port P] [--threads T] [--max-line N] "+
			"[--max-nick N] [--max-queued-bytes N] [--announce-limit N] [--quiet]")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*threads)
	descriptors := raiseDescriptorLimit()

	ip := net.ParseIP(*host)
	if ip == nil {
		fmt.Fprintf(os.Stderr, "%s: not a numeric address: %s\n", programName, *host)
		os.Exit(1)
	}
	listener, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: *port})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", programName, err)
		os.Exit(1)
	}
	s := &server{opts: opts, listener: listener, byNick: make(map[string]*client)}
	// Caught before the port line: the load generator may signal as soon as it has read it.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	fmt.Printf("%s listening on %s\n", programName, listener.Addr())
	os.Stdout.Sync()
	if descriptors > 16 {
		s.log("up to about %d clients (the descriptor limit, ulimit -n, is %d); Ctrl-C stops", descriptors-16, descriptors)
	}
	go func() {
		sig := <-signals
		s.mu.RLock()
		clients := len(s.members)
		s.mu.RUnlock()
		s.log("%v, closing %d clients", sig, clients)
		s.stop()
	}()

	s.acceptLoop() // until stop() closes the listener
	s.sessions.Wait()
	s.log("stopped; %d clients served (peak %d), %d messages broadcast, %d lines delivered in %d writes, "+
		"%d slow clients dropped", s.accepted.Load(), s.peak.Load(), s.messages.Load(), s.deliveries.Load(),
		s.writes.Load(), s.droppedSlow.Load())
}
