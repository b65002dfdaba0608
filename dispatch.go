package secsock

import (
	"errors"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"

	servercore "github.com/secsock/secsock/internal/server"
	"github.com/secsock/secsock/internal/wire"
)

// The REP side's dispatch (issue 10). A REP socket with a sealing
// mechanism reads the wrapped mangos socket itself, independently of the
// application: a few reader goroutines, each on an internal mangos
// context, receive every message, run the server's checks, answer
// protocol traffic (pings, refusals, hints, cached replies) at once, and
// queue deliverable requests in a bounded backlog that the application's
// Recv (on the socket or its contexts) takes from. A delivered request
// keeps the internal context that holds its backtrace until the
// application replies (or abandons it), so the reply takes the request's
// route; duplicates of a pending request keep theirs too and get the same
// sealed reply. Messages from short-term keys the server does not hold
// yet (which may cost scalar multiplications) go through a small bounded
// queue to their own workers; when it is full they are answered with a
// BUSY hint and counted (ReasonBusy), while established sessions keep
// flowing.

const (
	// maxDupRoutes bounds the duplicates of one pending request whose
	// routes are kept for its reply (SPEC.md §6.3: at most 4 routes per
	// request, the original's included).
	maxDupRoutes = 3
	// unknownQueue is how many messages from unknown short-term keys wait
	// for the unknown-key workers, and unknownBytes how many bytes they
	// may hold. A new client's burst of first requests (one per context,
	// all under its one new key) waits here: once the first is handled
	// the others are established and cost nothing.
	unknownQueue = 1024
	unknownBytes = 16 << 20
	// respondDeadline bounds how long an answer the socket makes itself
	// (and a duplicate's copy of a reply) may wait for a pipe that is not
	// reading before it is dropped. They are sent by their own
	// goroutines, so a peer that does not read cannot stall the reading.
	// (mangos best effort would drop answers at random even to pipes
	// that read: see the REP send select.)
	respondDeadline = time.Second
	// outQueue is how many such answers may wait for those goroutines
	// (each at most 64 KiB, the largest cached reply, or a duplicate's
	// copy of its reply).
	outQueue = 256
	// smallAnswer: answers up to this size get a buffer of their own.
	smallAnswer = 4096
	// unknownShare: while established sessions have traffic (seen in the
	// last establishedRecent), the unknown-key workers use at most
	// 1/unknownShare of their time.
	unknownShare      = 5
	establishedRecent = 100 * time.Millisecond
	// maxIdle is how many unused internal contexts are kept for reuse.
	maxIdle = 64
	// maxRecent is how many answered and abandoned requests are
	// remembered; maxWaiting bounds the duplicates waiting for their
	// request's registration.
	maxRecent  = 1024
	maxWaiting = 256
)

// noDeadline stands for "no send deadline" on an internal context: mangos
// REP refuses a zero OptionSendDeadline once one was set.
const noDeadline = time.Duration(math.MaxInt64)

// ictx is an internal mangos context of the dispatch, with the send
// options last applied to it.
type ictx struct {
	c          mangos.Context
	sendExpire time.Duration // 0: not set yet (mangos default: none)
	bestEffort bool
}

// setSend applies a send deadline and best-effort mode, if they differ.
func (c *ictx) setSend(deadline time.Duration, bestEffort bool) {
	if deadline <= 0 {
		deadline = noDeadline
	}
	if c.bestEffort != bestEffort {
		if c.c.SetOption(mangos.OptionBestEffort, bestEffort) == nil {
			c.bestEffort = bestEffort
		}
	}
	if c.sendExpire != deadline && !(c.sendExpire == 0 && deadline == noDeadline) {
		if c.c.SetOption(mangos.OptionSendDeadline, deadline) == nil {
			c.sendExpire = deadline
		}
	}
}

// delivered is a delivered request: the application holds it between its
// Recv and its Send.
type delivered struct {
	d    *dispatcher
	ctx  *ictx           // holds the backtrace of the delivered copy
	msg  *mangos.Message // the delivered message (opened body)
	srv  serverMechanism // the server that opened it seals the reply
	tk   ticket
	peer Peer    // who sent it (Peer.Plain: unsealed, srv is nil, no ticket)
	dups []*ictx // routes of duplicates that arrived while it was pending
	done bool    // answered or abandoned; guarded by d.mu
	// claim: the request's claim in the shared replay store, where its
	// sealed reply goes too (nil without a store).
	claim  *storeCall
	shared *sharedReplay
}

// ticketID names a request for the pending table.
func ticketID(t ticket) servercore.ID { return t.key }

type unknownItem struct {
	ctx *ictx
	m   *mangos.Message
}

// outItem is an answer to send on ctx; answered says it counts in
// Stats.Answered.
type outItem struct {
	ctx      *ictx
	m        *mangos.Message
	answered bool
}

// dispatcher is the reading side of one REP socket while its mechanism
// seals. It is made by Socket.dispatch and ends with stop (mechanism
// switched to "none", RecvRaw, or Close).
type dispatcher struct {
	s           *Socket
	backlog     chan *delivered
	unknown     chan unknownItem
	unknownHeld atomic.Int64 // bytes of the messages in unknown
	out         chan outItem
	quit        chan struct{} // closed by stop
	wg          sync.WaitGroup

	// lastEstablished: when a reader last saw a message from an
	// established session (UnixNano, updated at most once a millisecond).
	lastEstablished atomic.Int64

	mu      sync.Mutex
	stopped bool
	idle    []*ictx
	reading map[*ictx]struct{} // contexts a reader waits on; stop closes them
	pending map[servercore.ID]*delivered
	// waiting: routes of duplicates read before the reader that
	// delivered their request registered it in pending (nWaiting in all).
	waiting  map[servercore.ID][]*ictx
	nWaiting int
	// finished and abandoned remember the last requests answered and
	// dropped without a reply: a duplicate of an answered one finds its
	// reply in the cache, one of an abandoned one is dropped.
	finished, abandoned *idRing
}

func newDispatcher(s *Socket, backlog int) *dispatcher {
	return &dispatcher{
		s:       s,
		backlog: make(chan *delivered, backlog),
		unknown: make(chan unknownItem, unknownQueue),
		out:     make(chan outItem, outQueue),
		quit:    make(chan struct{}),
		reading: make(map[*ictx]struct{}),
		pending: make(map[servercore.ID]*delivered),

		waiting:   make(map[servercore.ID][]*ictx),
		finished:  newIDRing(),
		abandoned: newIDRing(),
	}
}

// start runs the readers and unknown-key workers.
func (d *dispatcher) start() {
	readers := max(4, 2*runtime.GOMAXPROCS(0))
	if cs, ok := d.s.engine().server.(*curveServer); ok && cs.shared.Load() != nil {
		readers += storeReaders // claims hold readers for a round trip
	}
	workers := max(1, runtime.GOMAXPROCS(0)/2)
	d.wg.Add(2*readers + workers)
	for i := 0; i < readers; i++ {
		go d.reader()
		go d.sender()
	}
	for i := 0; i < workers; i++ {
		go d.unknownWorker()
	}
}

// stop ends the dispatch: readers stop reading, queued requests are
// abandoned. Requests the application holds keep their routes and can
// still be answered (sealed).
func (d *dispatcher) stop() {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.stopped = true
	close(d.quit)
	if cs, ok := d.s.engine().server.(*curveServer); ok && cs.shared.Load() != nil {
		cs.shared.Load().releaseAll() // a stopped worker renews no lease: copies elsewhere become in doubt
	}
	var toClose []*ictx
	for c := range d.reading {
		toClose = append(toClose, c)
	}
	toClose = append(toClose, d.idle...)
	d.idle = nil
	for id, w := range d.waiting {
		toClose = append(toClose, w...)
		delete(d.waiting, id)
	}
	d.nWaiting = 0
	d.mu.Unlock()
	for _, c := range toClose {
		c.c.Close()
	}
	d.wg.Wait()
	for {
		select {
		case r := <-d.backlog:
			r.abandon()
		case it := <-d.unknown:
			it.m.Free()
			d.put(it.ctx)
		case it := <-d.out:
			it.m.Free()
			d.put(it.ctx)
		default:
			return
		}
	}
}

// sender sends the answers the dispatch makes itself.
func (d *dispatcher) sender() {
	defer d.wg.Done()
	for {
		select {
		case <-d.quit:
			return
		case it := <-d.out:
			it.ctx.setSend(respondDeadline, false)
			if err := it.ctx.c.SendMsg(it.m); err != nil {
				it.m.Free()
			} else if it.answered {
				d.s.stats.answered.Add(1)
			}
			d.put(it.ctx)
		}
	}
}

// send queues an answer for the senders; it owns c and m.
func (d *dispatcher) send(c *ictx, m *mangos.Message, answered bool) {
	select {
	case d.out <- outItem{ctx: c, m: m, answered: answered}:
	case <-d.quit:
		m.Free()
		d.put(c)
	}
}

// acquire returns an internal context for a reader, registered so that
// stop can close it; nil once stopped.
func (d *dispatcher) acquire() *ictx {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return nil
	}
	var c *ictx
	if n := len(d.idle); n > 0 {
		c, d.idle = d.idle[n-1], d.idle[:n-1]
	}
	d.mu.Unlock()
	if c == nil {
		mc, err := d.s.sock.OpenContext()
		if err != nil {
			return nil
		}
		c = &ictx{c: mc}
	}
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		c.c.Close()
		return nil
	}
	d.reading[c] = struct{}{}
	d.mu.Unlock()
	return c
}

// put returns an internal context that holds no request any more.
func (d *dispatcher) put(c *ictx) {
	d.mu.Lock()
	delete(d.reading, c)
	if !d.stopped && len(d.idle) < maxIdle {
		d.idle = append(d.idle, c)
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	c.c.Close()
}

// took marks c as holding a received message (not waiting any more).
func (d *dispatcher) took(c *ictx) {
	d.mu.Lock()
	delete(d.reading, c)
	d.mu.Unlock()
}

func (d *dispatcher) reader() {
	defer d.wg.Done()
	for {
		c := d.acquire()
		if c == nil {
			return
		}
		m, err := c.c.RecvMsg()
		if err != nil {
			d.took(c)
			if errors.Is(err, mangos.ErrClosed) {
				c.c.Close()
				return
			}
			d.put(c)
			continue
		}
		d.took(c)
		e := d.s.engine()
		if e.server == nil {
			m.Free()
			d.put(c)
			continue
		}
		if !wire.IsSecsock(m.Body) {
			// Plain SP bodies cost nothing to classify: never queued
			// behind unknown keys, never answered BUSY.
			d.handle(e, c, m)
			continue
		}
		if e.server.established(m.Body) {
			if now := time.Now().UnixNano(); now-d.lastEstablished.Load() > int64(time.Millisecond) {
				d.lastEstablished.Store(now)
			}
		} else {
			n := int64(len(m.Body))
			if d.unknownHeld.Add(n) > unknownBytes {
				d.unknownHeld.Add(-n)
				d.busy(e, c, m)
				continue
			}
			select {
			case d.unknown <- unknownItem{ctx: c, m: m}:
			default:
				d.unknownHeld.Add(-n)
				d.busy(e, c, m)
			}
			continue
		}
		d.handle(e, c, m)
	}
}

// busy answers m with a BUSY hint: the queue for unknown keys is full.
func (d *dispatcher) busy(e *engine, c *ictx, m *mangos.Message) {
	// Answer BUSY (SPEC.md §5.4) rather than fall silent, so that a client
	// learns it within its grace instead of timing out.
	d.s.reject(e, Event{Reason: ReasonBusy, Pipe: m.Pipe})
	busy := mangos.NewMessage(wire.HintSize)
	busy.Header = append(busy.Header, m.Header...)
	busy.Body = wire.AppendHint(busy.Body, wire.HintBusy)
	m.Free()
	d.send(c, busy, true)
}

func (d *dispatcher) unknownWorker() {
	defer d.wg.Done()
	for {
		select {
		case <-d.quit:
			return
		case it := <-d.unknown:
			d.unknownHeld.Add(-int64(len(it.m.Body)))
			e := d.s.engine()
			if e.server == nil {
				it.m.Free()
				d.put(it.ctx)
				continue
			}
			if e.server.established(it.m.Body) {
				// Established while it waited (an earlier message of its
				// key was handled): no scalar multiplication, no throttle.
				d.handle(e, it.ctx, it.m)
				continue
			}
			t0 := time.Now()
			d.handle(e, it.ctx, it.m)
			// Established sessions first: while they have traffic, the
			// unknown-key work (scalar multiplications for keys never
			// seen, perhaps forged) takes at most 1/unknownShare of a
			// core; the rest waits in the queue or is dropped (busy).
			if time.Now().UnixNano()-d.lastEstablished.Load() < int64(establishedRecent) {
				spent := time.Since(t0)
				select {
				case <-time.After(spent * (unknownShare - 1)):
				case <-d.quit:
					return
				}
			}
		}
	}
}

// handle runs the server's checks on m, received on c, and acts on the
// outcome. It owns m and c.
func (d *dispatcher) handle(e *engine, c *ictx, m *mangos.Message) {
	pipe := m.Pipe // m goes back to mangos's pool when freed
	in := e.server.openRequestFrom(newBody(len(m.Body)), m.Body, pipe)
	if in.reason == ReasonNotSecsock && e.permissive {
		d.deliverPlain(e, c, m)
		return
	}
	if in.pending && !in.deliver {
		if d.attach(c, in.ticket) {
			m.Free()
			d.s.reject(e, Event{Reason: in.reason, Peer: in.client, ServerKey: in.server, Pipe: pipe})
			return
		}
		// The request was answered just now: its reply is cached.
		in = e.server.openRequestFrom(newBody(len(m.Body)), m.Body, pipe)
	}
	if in.deliver && in.store == nil {
		if cs, ok := e.server.(*curveServer); ok && cs.shared.Load() != nil {
			in.reason, in.deliver, in.respond = ReasonStoreUnavailable, false, nil // never deliver unclaimed
		}
	}
	if in.store != nil {
		handled, claimed := d.shared(e, c, m, in)
		if handled {
			return
		}
		if !claimed {
			in.store = nil
		}
	}
	if in.deliver {
		m.Body = in.body
		r := &delivered{d: d, ctx: c, msg: m, srv: e.server, tk: in.ticket, peer: in.peer}
		if in.store != nil {
			r.claim, r.shared = in.store, e.server.(*curveServer).shared.Load()
		}
		id := ticketID(in.ticket)
		var extra []*ictx
		d.mu.Lock()
		d.pending[id] = r
		// Duplicates that were read before this registration waited.
		if w := d.waiting[id]; w != nil {
			delete(d.waiting, id)
			d.nWaiting -= len(w)
			n := min(len(w), maxDupRoutes)
			r.dups, extra = append(r.dups, w[:n]...), w[n:]
		}
		d.mu.Unlock()
		for _, x := range extra {
			d.put(x)
		}
		d.s.stats.opened.Add(1)
		select {
		case d.backlog <- r:
		case <-d.quit:
			r.abandon()
		}
		return
	}
	if in.reason != ReasonNone { // pings are answered, not rejected
		d.s.reject(e, Event{Reason: in.reason, Peer: in.client, ServerKey: in.server, Pipe: pipe})
	}
	if in.respond == nil {
		m.Free()
		d.put(c)
		return
	}
	if cap(m.Body) > smallAnswer && len(in.respond) <= smallAnswer {
		// Do not hold a large request's buffer while its short answer
		// waits to be sent.
		small := mangos.NewMessage(len(in.respond))
		m.Free()
		m = small
	}
	m.Body = append(m.Body[:0], in.respond...)
	d.send(c, m, true)
}

// deliverPlain queues m, a plain request on a permissive socket, for the
// application: unauthenticated, so refused under a client policy unless
// plain requests are allowed there too (OptionAllowPlain).
func (d *dispatcher) deliverPlain(e *engine, c *ictx, m *mangos.Message) {
	if e.restricted && !e.allowPlain {
		d.s.reject(e, Event{Reason: ReasonNotAuthorized, Pipe: m.Pipe})
		m.Free()
		d.put(c)
		return
	}
	if srv, ok := e.server.(*curveServer); ok {
		srv.counts.plain.Add(1)
	}
	// Like an opened body, the plain body gets a buffer of its own: Recv
	// frees the message, which recycles mangos's buffer.
	m.Body = append(newBody(len(m.Body)), m.Body...)
	r := &delivered{d: d, ctx: c, msg: m, peer: Peer{Plain: true}}
	select {
	case d.backlog <- r:
	case <-d.quit:
		r.abandon()
	}
}

// attach keeps c, the route of a duplicate of the pending request t, for
// its reply. It reports whether it took c: kept for the reply (also when
// the reader that delivered the request has not registered it yet),
// or dropped (enough routes kept, request abandoned); false means the
// request was answered just now (its reply is in the cache).
func (d *dispatcher) attach(c *ictx, t ticket) bool {
	id := ticketID(t)
	d.mu.Lock()
	r := d.pending[id]
	switch {
	case r != nil && !r.done && len(r.dups) < maxDupRoutes:
		r.dups = append(r.dups, c)
		d.mu.Unlock()
		return true
	case r != nil && !r.done:
		// enough routes kept: dropped as a retry
	case d.recent(d.finished, id):
		d.mu.Unlock()
		return false
	case d.recent(d.abandoned, id) || d.nWaiting >= maxWaiting:
		// abandoned (never answered by this instance), or too many waiting
	default:
		// Pending in the server but not registered here yet: the reader
		// that delivered it is about to. Wait for it there.
		d.waiting[id] = append(d.waiting[id], c)
		d.nWaiting++
		d.mu.Unlock()
		return true
	}
	d.mu.Unlock()
	d.put(c)
	return true
}

// recent reports whether id is in the ring; d.mu is held.
func (d *dispatcher) recent(r *idRing, id servercore.ID) bool {
	_, ok := r.set[id]
	return ok
}

// idRing remembers the last maxRecent request names added to it.
type idRing struct {
	set  map[servercore.ID]struct{}
	ring []servercore.ID
	next int
}

func newIDRing() *idRing { return &idRing{set: make(map[servercore.ID]struct{})} }

func (r *idRing) add(id servercore.ID) {
	if _, ok := r.set[id]; ok {
		return
	}
	if len(r.ring) == maxRecent {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % maxRecent
	} else {
		r.ring = append(r.ring, id)
	}
	r.set[id] = struct{}{}
}

// finish ends r's pending state and returns the routes of its
// duplicates, which the caller now owns.
func (r *delivered) finish() []*ictx {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.done {
		return nil
	}
	r.done = true
	if r.peer.Plain {
		return nil // not in pending: plain requests have no name
	}
	id := ticketID(r.tk)
	if d.pending[id] == r {
		delete(d.pending, id)
	}
	d.finished.add(id)
	dups := r.dups
	r.dups = nil
	return dups
}

// abandon drops a request without a reply (the application received
// another one on the same context, closed it, or the dispatch stopped).
func (r *delivered) abandon() {
	d := r.d
	d.mu.Lock()
	if !r.done && !r.peer.Plain {
		// Later copies of it are dropped at once (the server keeps it
		// pending: it is never delivered again by this instance).
		d.abandoned.add(ticketID(r.tk))
	}
	d.mu.Unlock()
	if r.claim != nil {
		r.shared.release(r.claim) // its lease lapses: copies are in doubt
	}
	for _, c := range r.finish() {
		r.d.put(c)
	}
	if r.ctx != nil {
		r.d.put(r.ctx)
		r.ctx = nil
	}
	if r.msg != nil {
		r.msg = nil
	}
}

// reply seals body for r and sends it on r's route with the application's
// send options, then to the routes of r's duplicates. On a sealing error
// the request stays the caller's to retry.
func (r *delivered) reply(s *Socket, body []byte, deadline time.Duration, bestEffort bool) (bool, error) {
	if r.peer.Plain { // answered in kind (OptionPermissive)
		m := mangos.NewMessage(len(body))
		m.Body = append(m.Body, body...)
		return false, r.answer(s, m, deadline, bestEffort, false)
	}
	m := mangos.NewMessage(r.srv.sealedSize(len(body)))
	var err error
	if m.Body, err = r.srv.sealReply(m.Body, r.tk, body); err != nil {
		m.Free()
		return true, err // the request stays: Send may be tried again
	}
	return false, r.answer(s, m, deadline, bestEffort, true)
}

// refuse answers r with its authenticated NOT_AUTHORIZED refusal (the
// request authorizer said no), on its route and its duplicates'; a plain
// request is dropped instead (nothing can authenticate a refusal to it).
func (r *delivered) refuse(s *Socket) {
	if !r.peer.Plain {
		if b, ok := r.srv.refuse(nil, r.tk); ok {
			m := mangos.NewMessage(len(b))
			m.Body = append(m.Body, b...)
			r.answer(s, m, respondDeadline, false, false)
			return
		}
	}
	r.abandon()
}

// answer sends m, the reply or refusal to r, on r's route with the given
// send options, and copies to the routes of r's duplicates. sealed says
// m counts in Stats.Sealed.
func (r *delivered) answer(s *Socket, m *mangos.Message, deadline time.Duration, bestEffort, sealed bool) error {
	var err error
	// The reply is sealed and cached: only now may duplicates stop
	// finding r (they find the cached reply instead).
	dups := r.finish()
	if r.claim != nil {
		r.shared.release(r.claim)
		r.shared.storeReply(r.claim, append([]byte(nil), m.Body...))
	}
	var copies []*mangos.Message
	for range dups {
		cp := mangos.NewMessage(len(m.Body))
		cp.Body = append(cp.Body, m.Body...)
		copies = append(copies, cp)
	}
	c := r.ctx
	r.ctx = nil
	c.setSend(deadline, bestEffort)
	err = c.c.SendMsg(m)
	if err != nil {
		m.Free()
	} else if sealed {
		s.stats.sealed.Add(1)
	}
	r.d.put(c)
	for i, dc := range dups {
		r.d.send(dc, copies[i], false)
	}
	return err
}
