// Package secsock adds end-to-end encryption to nanomsg-compatible mangos v3
// sockets. It seals each message body right after Send and opens it right
// before Recv returns, with CurveCP-style NaCl boxes; the SP header
// (request ID, backtrace) is never touched, so raw mangos devices route
// sealed traffic over any transport without keys.
//
// The wire protocol is "secsock curve, version 2", specified in SPEC.md
// with test vectors under testdata/. It is EXPERIMENTAL until reviewed.
//
// A Socket wraps a cooked mangos REQ or REP socket. Until OptionMechanism
// is set to "curve" it behaves exactly like the socket it wraps:
//
//	sock, _ := secsock.NewRepSocket()
//	sock.SetOption(secsock.OptionMechanism, secsock.MechanismCurve)
//	sock.SetOption(secsock.OptionSecretKey, serverSecret)
//
// and on the client
//
//	sock, _ := secsock.NewReqSocket()
//	sock.SetOption(secsock.OptionMechanism, secsock.MechanismCurve)
//	sock.SetOption(secsock.OptionServerKey, serverSecret.Public())
//
// Each request is one self-contained SP message (no handshake), so any of
// several REP workers holding the server key can answer it. Failures are
// typed errors (ErrNotAuthorized, ErrServerKeyMismatch, ErrAuthFailed, …),
// never silent timeouts.
package secsock

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/req"
)

// Socket is a mangos.Socket whose message bodies are sealed end to end.
// The wrapped mangos socket is not reachable: every data method seals and
// opens, and SendRaw and RecvRaw are the only bypass.
type Socket struct {
	sock   mangos.Socket
	server bool // REP or PULL (true), REQ or PUSH (false)
	oneWay bool // PUSH or PULL (SPEC.md §15)
	// live: the socket listens or dials, so option changes must leave it
	// working and sealing (SetOption refuses what would not).
	live  atomic.Bool
	stats counters

	mu  sync.Mutex             // guards cfg, srv and building eng
	cfg config                 // cfg.maxBody is the application's mangos.OptionMaxRecvSize (-1: the protocol has none)
	srv serverMechanism        // kept across option changes
	eng atomic.Pointer[engine] // nil: rebuild from cfg

	def exchange // the default context's state

	closed   atomic.Bool   // Close was called
	closedCh chan struct{} // closed by Close

	resendMu sync.Mutex     // REQ: one advisory resend at a time (request ID stretch)
	authMu   sync.Mutex     // REQ: one OptionAuthenticateFirst ping at a time
	authDone atomic.Bool    // REQ: it succeeded
	skipCtx  mangos.Context // REQ: a closed context, for skipRequestIDs; guarded by resendMu

	dmu  sync.Mutex // serializes starting and stopping the dispatch
	disp atomic.Pointer[dispatcher]
}

var (
	_ mangos.Socket  = (*Socket)(nil)
	_ mangos.Context = (*Context)(nil)
)

// engine is the mechanism state derived from the options, replaced as a
// whole when an option changes.
type engine struct {
	client clientMechanism
	server serverMechanism
	err    error
	peer   PublicKey // REQ: the server key, for events
	hook   func(Event)
	logger *slog.Logger
	grace  time.Duration // REQ: how long to wait after an advisory error
	// REQ: resend a request refused UNKNOWN_EPOCH sealed to the long-term
	// key only (OptionEpochs EpochsAuto), and ping before the first
	// request (OptionAuthenticateFirst).
	epochFallback, authFirst bool
	// REP: the per-request authorization (OptionRequestAuthorizer), and
	// permissive mode: plain requests are delivered (OptionPermissive),
	// also under a client policy (restricted) if allowPlain.
	requestAuth                        RequestAuthorizer
	permissive, restricted, allowPlain bool
	maxBody                            int // REQ: the longest reply body returned (0: no limit)
}

func (e *engine) passThrough() bool { return e.err == nil && e.client == nil && e.server == nil }

// exchange is the state of one context between a request and its reply.
type exchange struct {
	mu     sync.Mutex
	out    outstanding     // REQ: the last request sent
	hasOut bool            //
	sent   *mangos.Message // REQ: a reference to the sealed request, for the advisory resend
	// REQ: the body of a request sealed with an epoch key, kept for the
	// long-term-only resend after an UNKNOWN_EPOCH refusal (SPEC.md
	// §14.3); the buffer is reused from request to request.
	plain    []byte
	hasPlain bool
	ping     bool
	req      *delivered // REP: the request delivered last, until answered
	// recvWait: a Recv is waiting (REP with a sealing mechanism: a second
	// concurrent Recv gets mangos.ErrProtoState, as on mangos).
	recvWait bool
	timer    *time.Timer // REP: the receive deadline, reused

	closed   atomic.Bool   // the context was closed
	closedCh chan struct{} // closed with it
}

func newExchange() exchange { return exchange{closedCh: make(chan struct{})} }

// close marks x closed and drops its request and resend reference.
func (x *exchange) close() {
	if x.closed.CompareAndSwap(false, true) {
		close(x.closedCh)
	}
	x.mu.Lock()
	r, sent := x.req, x.sent
	x.req, x.sent, x.hasOut = nil, nil, false
	x.mu.Unlock()
	if r != nil {
		r.abandon()
	}
	if sent != nil {
		sent.Free()
	}
}

// setSent keeps m, a reference the caller gives away, as the request
// last sent (nil: none).
func (x *exchange) setSent(m *mangos.Message) {
	old := x.sent
	x.sent = m
	if old != nil {
		old.Free()
	}
}

// sealedOutstanding fails when a sealed request is still waiting for its
// reply but the mechanism was switched to "none": the reply must not be
// handed over unopened.
func (x *exchange) sealedOutstanding() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.hasOut {
		x.hasOut = false
		return fmt.Errorf("secsock: mechanism changed while a sealed request was outstanding: %w", mangos.ErrProtoState)
	}
	return nil
}

// NewReqSocket returns a new REQ socket with mechanism "none".
func NewReqSocket() (*Socket, error) { return newSocket(req.NewSocket) }

// NewRepSocket returns a new REP socket with mechanism "none".
func NewRepSocket() (*Socket, error) { return newSocket(rep.NewSocket) }

func newSocket(open func() (mangos.Socket, error)) (*Socket, error) {
	s, err := open()
	if err != nil {
		return nil, err
	}
	return Wrap(s)
}

// Wrap wraps an existing cooked mangos socket. REQ and REP, PUSH and PULL
// sockets can use every mechanism; other protocols only "none" for now. Raw sockets are
// refused with ErrRawSocket: a device forwards sealed bodies as they are.
// A nil socket gives mangos.ErrBadValue. The caller must not use sock
// directly afterwards.
func Wrap(sock mangos.Socket) (*Socket, error) {
	if sock == nil {
		return nil, fmt.Errorf("secsock: Wrap(nil): %w", mangos.ErrBadValue)
	}
	if raw, err := sock.GetOption(mangos.OptionRaw); err == nil && raw == true {
		return nil, ErrRawSocket
	}
	s := &Socket{sock: sock, cfg: defaultConfig(), def: newExchange()}
	s.closedCh = s.def.closedCh
	// The limit the application may have set before Wrap is a limit on
	// bodies from now on.
	s.cfg.maxBody = -1
	if v, err := sock.GetOption(mangos.OptionMaxRecvSize); err == nil {
		s.cfg.maxBody = v.(int)
	}
	switch sock.Info().Self {
	case mangos.ProtoRep:
		s.server = true
	case mangos.ProtoReq:
	case mangos.ProtoPull:
		s.server, s.oneWay, s.cfg.oneWay = true, true, true
	case mangos.ProtoPush:
		s.oneWay, s.cfg.oneWay = true, true
	default:
		s.server = false
		s.eng.Store(&engine{}) // pass-through until a mechanism says otherwise
	}
	return s, nil
}

func (s *Socket) isReqRep() bool {
	self := s.sock.Info().Self
	return self == mangos.ProtoReq || self == mangos.ProtoRep || s.oneWay
}

// engine returns the current mechanism state, building it after an
// option change.
func (s *Socket) engine() *engine {
	if e := s.eng.Load(); e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.eng.Load(); e != nil {
		return e
	}
	e := &engine{peer: s.cfg.serverKey, hook: s.cfg.eventHook, logger: s.cfg.logger, grace: s.cfg.grace,
		epochFallback: s.cfg.epochs == EpochsAuto, authFirst: s.cfg.authFirst,
		requestAuth: s.cfg.requestAuth, permissive: s.cfg.permissive, allowPlain: s.cfg.allowPlain,
		restricted: s.cfg.authorized != nil || s.cfg.authorizer != nil, maxBody: max(s.cfg.maxBody, 0)}
	m := mechanisms[s.cfg.mechanism]
	switch {
	case !s.isReqRep():
		if s.cfg.mechanism != MechanismNone {
			e.err = ErrProtocol
		}
	case s.server:
		e.server, e.err = m.newServer(&s.cfg, s.srv)
		if e.server != nil {
			s.srv = e.server
		}
	default:
		e.client, e.err = m.newClient(&s.cfg)
	}
	s.eng.Store(e)
	return e
}

// SetOption sets a secsock option (see the Option constants) or passes
// the name on to mangos. With a mechanism other than "none",
// mangos.OptionMaxRecvSize (int, default 1 MiB) limits the application's
// bodies: the wrapped socket allows the sealing overhead and SP header
// more, so that a body at the limit is not dropped silently.
func (s *Socket) SetOption(name string, v any) error {
	if name == mangos.OptionMaxRecvSize {
		return s.setMaxRecvSize(v)
	}
	if err := s.checkSide(name, v); err != nil {
		return err
	}
	s.mu.Lock()
	if err := s.checkLive(name, v); err != nil {
		s.mu.Unlock()
		return err
	}
	ok, err := s.cfg.set(name, v)
	if ok && err == nil {
		s.eng.Store(nil)
		if name == OptionMechanism || name == OptionHybrid {
			err = s.applyMaxRecvSize()
		}
	}
	s.mu.Unlock()
	if !ok {
		return s.sock.SetOption(name, v)
	}
	if err == nil && s.server {
		// Goroutines already waiting in Recv hold the current engine:
		// rebuild now so that a new policy or key set applies to the
		// next request they receive (the server state is shared).
		if e := s.engine(); e.server == nil {
			// No sealing any more: the socket stops reading for itself
			// (requests the application holds are still answered sealed).
			s.stopDispatch()
		}
	}
	return err
}

// checkLive refuses, on a socket that listens or dials, a change that
// would leave it unable to work or make it stop sealing: going back to
// mechanism "none" (its next Send would be plaintext: close it and open a
// plain socket instead), a sealing mechanism without the key its side
// needs (ErrNoKey), or settings that contradict each other. s.mu is held.
func (s *Socket) checkLive(name string, v any) error {
	if !s.live.Load() {
		return nil
	}
	switch name {
	case OptionMechanism, OptionFreshness, OptionMaxClockSkew: // the only ones that can break a live socket
	default:
		return nil
	}
	next := s.cfg
	if ok, err := next.set(name, v); !ok || err != nil {
		return nil // not ours, or refused by set itself
	}
	if next.mechanism == MechanismNone && s.cfg.mechanism != MechanismNone {
		return fmt.Errorf("secsock: option %s: a socket that listens or dials does not go back to mechanism %q (its bodies would go out in clear); close it and open a plain socket: %w",
			name, MechanismNone, mangos.ErrBadOption)
	}
	if next.mechanism != MechanismNone && s.isReqRep() {
		switch {
		case s.server && next.secret.IsZero():
			return fmt.Errorf("secsock: option %s on a listening REP socket without OptionSecretKey: %w", name, ErrNoKey)
		case !s.server && next.serverKey.IsZero():
			return fmt.Errorf("secsock: option %s on a connected REQ socket without OptionServerKey: %w", name, ErrNoKey)
		}
	}
	return next.consistent()
}

// maxSealOverhead is what a wrapped socket's receive limit adds to the
// application's: the most that sealing adds to a body (a vouched request
// with up to maxExtensionBytes of extension elements, such as an epoch
// key's EPOCH and WANT_EPOCH; replies add less) plus an SP header of up to
// 16 hops, which mangos counts too. README states it (350 bytes).
const maxSealOverhead = vouchRequestOver + maxExtensionBytes + 16*4

// maxExtensionBytes is the extension field a request may carry within
// the margin of maxSealOverhead.
const maxExtensionBytes = 128

// setMaxRecvSize takes mangos.OptionMaxRecvSize as the exact limit on
// the application's bodies: with a sealing mechanism the wrapped socket
// allows maxSealOverhead more, so that a body at the limit is not dropped
// silently once sealed (mangos counts the header and the sealed body),
// and the opened body is held to the limit itself (SPEC.md §6, the size check after step 7).
func (s *Socket) setMaxRecvSize(v any) error {
	n, ok := v.(int)
	if !ok || n < 0 {
		return fmt.Errorf("secsock: option %s takes an int of 0 (no limit) or more: %w", mangos.OptionMaxRecvSize, mangos.ErrBadValue)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.maxBody < 0 {
		return s.sock.SetOption(mangos.OptionMaxRecvSize, v) // the protocol's answer
	}
	s.cfg.maxBody = n
	s.eng.Store(nil) // the server's policy holds the limit
	return s.applyMaxRecvSize()
}

// applyMaxRecvSize sets the wrapped socket's limit; s.mu is held.
func (s *Socket) applyMaxRecvSize() error {
	n := s.cfg.maxBody
	if n < 0 {
		return nil // the protocol has no such option
	}
	if s.cfg.mechanism != MechanismNone && n > 0 {
		n += maxSealOverhead
		if s.cfg.hybrid != HybridOff {
			n += hybridRecvMargin
		}
	}
	return s.sock.SetOption(mangos.OptionMaxRecvSize, n)
}

// GetOption reads a secsock option or passes the name on to mangos.
func (s *Socket) GetOption(name string) (any, error) {
	s.mu.Lock()
	if name == mangos.OptionMaxRecvSize && s.cfg.maxBody >= 0 {
		defer s.mu.Unlock()
		return s.cfg.maxBody, nil
	}
	ok, v, err := s.cfg.get(name)
	s.mu.Unlock()
	if ok {
		return v, err
	}
	return s.sock.GetOption(name)
}

// Stats returns the socket's counters (contexts included).
func (s *Socket) Stats() Stats { return s.stats.snapshot() }

// Send seals b and sends it: a request on REQ, the reply to the request
// last received on REP. After Close it returns mangos.ErrClosed; on REP
// without a request to answer, mangos.ErrProtoState.
func (s *Socket) Send(b []byte) error { return s.send(s.sock, &s.def, b) }

// SendMsg is Send for a mangos.Message. As with mangos, the socket owns m
// after a successful call; on error the caller keeps m unchanged.
func (s *Socket) SendMsg(m *mangos.Message) error { return s.sendMsg(s.sock, &s.def, m) }

// Recv receives a message and returns its opened body. On REP with a
// sealing mechanism it takes the next request from the socket's backlog
// (see OptionBacklog), waiting at most mangos.OptionRecvDeadline.
func (s *Socket) Recv() ([]byte, error) { return s.recv(s.sock, &s.def) }

// RecvMsg is Recv returning a mangos.Message.
func (s *Socket) RecvMsg() (*mangos.Message, error) { return s.recvMsg(s.sock, &s.def) }

// OpenContext opens a mangos context whose Send and Recv seal and open
// like the socket's. It returns a *Context.
func (s *Socket) OpenContext() (mangos.Context, error) {
	c, err := s.sock.OpenContext()
	if err != nil {
		return nil, err
	}
	return &Context{ctx: c, s: s, x: newExchange()}, nil
}

// Close closes the socket and its contexts, as mangos does; every method
// returns mangos.ErrClosed afterwards. A REP socket's own reading stops.
func (s *Socket) Close() error {
	s.closed.Store(true)
	s.def.close()
	err := s.sock.Close() // first: internal contexts fail at once
	s.stopDispatch()
	return err
}

// isClosed reports whether x (or its socket) is closed.
func (s *Socket) isClosed(x *exchange) bool { return s.closed.Load() || x.closed.Load() }

// dispatch returns the REP socket's running dispatch, starting it; nil
// after Close.
func (s *Socket) dispatch() *dispatcher {
	if d := s.disp.Load(); d != nil {
		return d
	}
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if d := s.disp.Load(); d != nil {
		return d
	}
	if s.closed.Load() {
		return nil
	}
	s.mu.Lock()
	n := s.cfg.backlog
	s.mu.Unlock()
	d := newDispatcher(s, n)
	d.start()
	s.disp.Store(d)
	return d
}

// stopDispatch stops the REP socket's own reading, if it runs.
func (s *Socket) stopDispatch() {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if d := s.disp.Load(); d != nil {
		s.disp.Store(nil)
		d.stop()
	}
}

// Authenticate checks the credentials before any data is sent: it sends
// one sealed ping, which the REP side answers itself without the
// application seeing it, and returns nil when the server proved its key
// and accepted this client, or the same typed errors as Recv
// (ErrNotAuthorized, ErrServerKeyMismatch, …). REQ with "curve" only. It
// uses its own context, so it does not disturb a request in flight, and
// the socket's send and receive deadlines.
func (s *Socket) Authenticate() error {
	e := s.engine()
	if e.err != nil {
		return e.err
	}
	if s.oneWay {
		return errNoBackChannel
	}
	if e.client == nil {
		return fmt.Errorf("secsock: Authenticate needs a REQ socket with mechanism curve: %w", mangos.ErrProtoOp)
	}
	if s.closed.Load() {
		return mangos.ErrClosed
	}
	if c, ok := e.client.(*curveClient); ok && c.cfg.hybrid {
		// The vouched ping below is sealed in the hybrid mode (SPEC.md
		// §16.6): first the server's ML-KEM key, if it is lacking.
		if err := s.ensureHybridKeys(e, c); err != nil {
			return err
		}
	}
	return s.ping(e)
}

// ping sends one ping on a context of its own and waits for its answer.
func (s *Socket) ping(e *engine) error {
	c, err := s.sock.OpenContext()
	if err != nil {
		return err
	}
	defer c.Close()
	x := newExchange()
	defer x.close()
	if err := s.seal(c, &x, e, nil, nil, true); err != nil {
		return err
	}
	_, err = s.recv(c, &x)
	return err
}

// Context is a mangos.Context of a Socket; its data methods seal and open.
type Context struct {
	ctx mangos.Context
	s   *Socket
	x   exchange
}

// Send is Socket.Send on this context.
func (c *Context) Send(b []byte) error { return c.s.send(c.ctx, &c.x, b) }

// SendMsg is Socket.SendMsg on this context.
func (c *Context) SendMsg(m *mangos.Message) error { return c.s.sendMsg(c.ctx, &c.x, m) }

// Recv is Socket.Recv on this context.
func (c *Context) Recv() ([]byte, error) { return c.s.recv(c.ctx, &c.x) }

// RecvMsg is Socket.RecvMsg on this context.
func (c *Context) RecvMsg() (*mangos.Message, error) { return c.s.recvMsg(c.ctx, &c.x) }

// Close closes the context; its methods return mangos.ErrClosed
// afterwards. A request it holds is dropped without a reply, as on mangos.
func (c *Context) Close() error {
	err := c.ctx.Close()
	c.x.close()
	return err
}

// SetOption sets a mangos option of the context. secsock options are
// socket-wide: setting them on a context gives mangos.ErrBadOption.
func (c *Context) SetOption(name string, v any) error { return c.ctx.SetOption(name, v) }

// GetOption reads a context option; secsock options read the socket's.
func (c *Context) GetOption(name string) (any, error) {
	c.s.mu.Lock()
	ok, v, err := c.s.cfg.get(name)
	c.s.mu.Unlock()
	if ok {
		return v, err
	}
	return c.ctx.GetOption(name)
}

// msgPipe is what the socket and its contexts have in common.
type msgPipe interface {
	SendMsg(*mangos.Message) error
	RecvMsg() (*mangos.Message, error)
	GetOption(string) (any, error)
}

// durationOption reads a time.Duration option of p (0 if unset or absent).
func durationOption(p msgPipe, name string) time.Duration {
	v, err := p.GetOption(name)
	if err != nil {
		return 0
	}
	d, _ := v.(time.Duration)
	return d
}

// sendReply answers the request x holds, sealed by the server that
// opened it, whatever the mechanism is now. It reports false when x holds
// no request.
func (s *Socket) sendReply(p msgPipe, x *exchange, body []byte) (bool, error) {
	x.mu.Lock()
	r := x.req
	x.req = nil
	x.mu.Unlock()
	if r == nil {
		return false, nil
	}
	be, _ := p.GetOption(mangos.OptionBestEffort)
	bestEffort, _ := be.(bool)
	keep, err := r.reply(s, body, durationOption(p, mangos.OptionSendDeadline), bestEffort)
	if keep {
		x.mu.Lock()
		if x.req == nil {
			x.req, r = r, nil
		}
		x.mu.Unlock()
		if r != nil {
			r.abandon()
		}
	}
	return true, err
}

func (s *Socket) send(p msgPipe, x *exchange, b []byte) error {
	if s.isClosed(x) {
		return mangos.ErrClosed
	}
	if s.oneWay {
		return s.sendOneWay(nil, b)
	}
	if s.server {
		if ok, err := s.sendReply(p, x, b); ok {
			return err
		}
	}
	e := s.engine()
	if e.passThrough() {
		m := mangos.NewMessage(len(b))
		m.Body = append(m.Body, b...)
		if err := p.SendMsg(m); err != nil {
			m.Free()
			return err
		}
		return nil
	}
	if err := s.authenticateFirst(e); err != nil {
		return err
	}
	return s.seal(p, x, e, nil, b, false)
}

// authenticateFirst runs Authenticate before a REQ socket's first request
// when OptionAuthenticateFirst asks for it, so that the server's epoch
// keys are known and the request is forward-secret (SPEC.md §14.2). Until
// one succeeds, every first Send tries again.
//
// It also pings when the client's epoch keys no longer cover the time (or
// it requires them and has none): the data is then sealed with the fresh
// keys the ping learns, not silently to the long-term key alone (SPEC.md
// §14.2). With EpochsRequire, still no key is ErrUnknownEpoch.
func (s *Socket) authenticateFirst(e *engine) error {
	c, _ := e.client.(*curveClient)
	if c == nil {
		return nil
	}
	if c.needKeyFetch(c.cfg.now()) {
		// The hybrid mode seals no data without the server's ML-KEM key
		// (SPEC.md §16.6): fetch it first, once for all waiting senders.
		s.authMu.Lock()
		err := s.ensureHybridKeys(e, c)
		s.authMu.Unlock()
		if err != nil {
			return err
		}
	}
	_, stale := c.epochState(c.cfg.now())
	if !stale && (!e.authFirst || s.authDone.Load()) {
		return nil
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if _, stale = c.epochState(c.cfg.now()); stale || (e.authFirst && !s.authDone.Load()) {
		if err := s.Authenticate(); err != nil {
			return err
		}
		s.authDone.Store(true)
	}
	if have, _ := c.epochState(c.cfg.now()); !have && c.cfg.epochs == EpochsRequire {
		return fmt.Errorf("secsock: the server announced no epoch key (OptionEpochs is %q): %w", EpochsRequire, ErrUnknownEpoch)
	}
	return nil
}

func (s *Socket) sendMsg(p msgPipe, x *exchange, m *mangos.Message) error {
	if s.isClosed(x) {
		return mangos.ErrClosed
	}
	if s.oneWay {
		return s.sendOneWayMsg(m)
	}
	if s.server {
		if ok, err := s.sendReply(p, x, m.Body); ok {
			if err == nil {
				m.Free()
			}
			return err
		}
	}
	e := s.engine()
	if e.passThrough() {
		return p.SendMsg(m)
	}
	if err := s.authenticateFirst(e); err != nil {
		return err
	}
	if err := s.seal(p, x, e, m.Header, m.Body, false); err != nil {
		return err
	}
	m.Free()
	return nil
}

// seal seals body (a request, ping or reply) into a new message with
// header and sends it on p.
func (s *Socket) seal(p msgPipe, x *exchange, e *engine, header, body []byte, ping bool) error {
	if e.err != nil {
		return e.err
	}
	var m *mangos.Message
	var err error
	x.mu.Lock()
	defer x.mu.Unlock()
	if e.client != nil {
		m = mangos.NewMessage(e.client.sealedSize(len(body)))
		var o outstanding
		if m.Body, o, err = e.client.sealRequest(m.Body, body, ping); err != nil {
			m.Free()
			return err
		}
		x.out, x.hasOut = o, true
		// Kept for a resend: an epoch request that may fall back (§14.3),
		// and a hybrid one that may need a fresh ciphertext (§16.4).
		// With OptionEpochs EpochsRequire neither is resent: the refusal is
		// the error (a resend may run a request twice, §14.3).
		x.hasPlain, x.ping = e.epochFallback && (o.keys != o.sess.keys || (o.hybrid && !o.keyFetch)), ping
		if x.hasPlain {
			x.plain = append(x.plain[:0], body...)
		}
	} else {
		// A REP socket answers only the request it holds (sendReply):
		// never a reply unsealed or sealed to nothing.
		return mangos.ErrProtoState
	}
	m.Header = append(m.Header, header...)
	m.Clone() // the exchange keeps a reference, for the advisory resend
	if err := p.SendMsg(m); err != nil {
		m.Free()
		m.Free()
		x.hasOut = false
		x.setSent(nil)
		return err
	}
	x.setSent(m)
	s.stats.sealed.Add(1)
	return nil
}

func (s *Socket) recv(p msgPipe, x *exchange) ([]byte, error) {
	b, _, err := s.recvPeer(p, x)
	return b, err
}

func (s *Socket) recvPeer(p msgPipe, x *exchange) ([]byte, Peer, error) {
	m, opened, peer, err := s.receive(p, x)
	if err != nil {
		return nil, Peer{}, err
	}
	b := m.Body // an opened body is not the message's pooled buffer: Free does not recycle it
	if !opened {
		b = append(make([]byte, 0, len(m.Body)), m.Body...)
	}
	m.Free()
	return b, peer, nil
}

func (s *Socket) recvMsg(p msgPipe, x *exchange) (*mangos.Message, error) {
	m, _, _, err := s.receive(p, x)
	return m, err
}

// receive returns the next message for x and who sent it (the zero Peer
// on REQ, PUSH and with mechanism "none"); opened says its Body was opened
// into a buffer of its own (not a pooled one).
func (s *Socket) receive(p msgPipe, x *exchange) (*mangos.Message, bool, Peer, error) {
	for {
		if s.isClosed(x) {
			return nil, false, Peer{}, mangos.ErrClosed
		}
		if s.oneWay {
			return s.recvOneWay()
		}
		e := s.engine()
		if e.passThrough() {
			if err := x.sealedOutstanding(); err != nil {
				return nil, false, Peer{}, err
			}
			m, err := p.RecvMsg()
			return m, false, Peer{Plain: s.server}, err // a REP with mechanism none receives plain requests
		}
		if !s.server {
			m, err := s.open(p, x, e, newBody)
			return m, true, Peer{}, err
		}
		if e.err != nil {
			return nil, false, Peer{}, e.err
		}
		m, peer, err := s.recvDispatch(p, x)
		if err != errDispatchStopped {
			return m, true, peer, err
		}
	}
}

// errDispatchStopped: the dispatch stopped while Recv waited (the
// mechanism changed, or RecvRaw); Recv starts over.
var errDispatchStopped = fmt.Errorf("secsock: dispatch stopped")

// recvDispatch takes the next delivered request from the REP socket's
// backlog for x, waiting at most p's mangos.OptionRecvDeadline.
func (s *Socket) recvDispatch(p msgPipe, x *exchange) (*mangos.Message, Peer, error) {
	d := s.dispatch()
	if d == nil {
		return nil, Peer{}, mangos.ErrClosed
	}
	x.mu.Lock()
	if x.recvWait {
		x.mu.Unlock()
		return nil, Peer{}, mangos.ErrProtoState
	}
	x.recvWait = true
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		x.recvWait = false
		x.mu.Unlock()
	}()
	var expire <-chan time.Time
	if dl := durationOption(p, mangos.OptionRecvDeadline); dl > 0 {
		if x.timer == nil {
			x.timer = time.NewTimer(dl)
		} else {
			x.timer.Reset(dl)
		}
		defer x.timer.Stop()
		expire = x.timer.C
	}
	for {
		select {
		case r := <-d.backlog:
			if !s.authorize(r) {
				continue
			}
			m := r.msg
			r.msg = nil
			x.mu.Lock()
			old := x.req
			x.req = r
			x.mu.Unlock()
			if old != nil {
				old.abandon() // as on mangos: a new request replaces the one not answered
			}
			return m, r.peer, nil
		case <-expire:
			return nil, Peer{}, mangos.ErrRecvTimeout
		case <-x.closedCh:
			return nil, Peer{}, mangos.ErrClosed
		case <-s.closedCh:
			return nil, Peer{}, mangos.ErrClosed
		case <-d.quit:
			return nil, Peer{}, errDispatchStopped
		}
	}
}

// authorize asks OptionRequestAuthorizer about r, on the receiving
// goroutine; a refused request is answered NOT_AUTHORIZED (or dropped, if
// plain) and counted.
func (s *Socket) authorize(r *delivered) bool {
	e := s.engine()
	if e.requestAuth == nil || e.requestAuth(r.peer, r.msg.Body) {
		return true
	}
	s.reject(e, Event{Reason: ReasonNotAuthorized, Peer: r.peer.Key, ServerKey: r.peer.ServerKey, Pipe: r.msg.Pipe})
	r.msg.Free()
	r.msg = nil
	r.refuse(s)
	return false
}

func newBody(n int) []byte { return make([]byte, 0, n) }

// open receives from p (REQ) until a reply opens or fails. A reply that
// anyone on the path could have made (isAdvisory) does not end the
// request: the identical sealed request is resent and the client waits
// out the grace for an authenticated answer (SPEC.md §7). alloc gives the
// buffer for the opened body. The returned message's Body is that buffer.
func (s *Socket) open(p msgPipe, x *exchange, e *engine, alloc func(n int) []byte) (*mangos.Message, error) {
	if e.err != nil {
		return nil, e.err
	}
	start := time.Now()
	m, err := p.RecvMsg()
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	o, ok, sent := x.out, x.hasOut, x.sent
	x.hasOut, x.sent = false, nil
	x.mu.Unlock()
	if !ok {
		m.Free()
		if sent != nil {
			sent.Free()
		}
		return nil, mangos.ErrProtoState
	}
	body, err := e.client.openReply(alloc(len(m.Body)), o, m.Body)
	if errors.Is(err, ErrUnknownEpoch) || errors.Is(err, ErrUnknownTicket) {
		if fb, ok, ferr := s.epochResend(p, x, e, alloc); ok {
			m.Free()
			if sent != nil {
				sent.Free()
			}
			return fb, ferr
		}
	}
	if err != nil && isAdvisory(err) && sent != nil {
		if b, err2 := s.advisory(p, x, e, o, sent.Body, err, start, alloc); err2 == nil {
			body, err = b, nil
		} else if !isAdvisory(err2) {
			err = err2 // authenticated, or the socket closed
		}
	}
	if sent != nil {
		sent.Free()
	}
	if err == nil && e.maxBody > 0 && len(body) > e.maxBody {
		err = fmt.Errorf("secsock: reply body of %d bytes is over mangos.OptionMaxRecvSize (%d): %w", len(body), e.maxBody, ErrTooLarge)
	}
	if err != nil {
		m.Free()
		s.reject(e, Event{Reason: reasonOf(err), Peer: e.peer, Err: err})
		return nil, err
	}
	m.Body = body
	s.stats.opened.Add(1)
	return m, nil
}

// epochResend answers a verified UNKNOWN_EPOCH refusal (the client has
// forgotten its epoch keys): the same body is sealed again, to the
// long-term key only, as a new request, and its answer is the answer
// (SPEC.md §14.3). ok is false when the request was not kept for that.
func (s *Socket) epochResend(p msgPipe, x *exchange, e *engine, alloc func(int) []byte) (*mangos.Message, bool, error) {
	x.mu.Lock()
	plain, ping, ok := x.plain, x.ping, x.hasPlain
	x.hasPlain = false
	x.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	if c, hy := e.client.(*curveClient); hy && c.cfg.hybrid {
		// Never outside the mode: fresh keys first (SPEC.md §16.4).
		if err := s.ensureHybridKeys(e, c); err != nil {
			return nil, true, err
		}
	}
	if err := s.seal(p, x, e, nil, plain, ping); err != nil {
		return nil, true, err
	}
	m, err := s.open(p, x, e, alloc)
	return m, true, err
}

// advisoryCopies is how many copies of a request the client resends at
// once after an advisory answer: two, because mangos REQ sends the next
// message on the pipe that answered last (the one that sent the advisory
// message, perhaps a rogue), so that the second copy takes another pipe.
// maxAdvisoryCopies bounds them all: when a copy gets an advisory answer
// too, one more is sent, up to this many (with the original, the 4 routes
// a server keeps per request, SPEC.md §6.3).
const (
	advisoryCopies    = 2
	maxAdvisoryCopies = 3
	advisoryRespace   = 10 * time.Millisecond
)

// advisory resends wire (the identical sealed request o) and waits until
// the grace ends, or p's receive deadline (counted from start), for an
// authenticated answer among the copies' replies. It returns the opened
// body, an authenticated error, mangos.ErrClosed, or first when nothing
// authenticated came.
func (s *Socket) advisory(p msgPipe, x *exchange, e *engine, o outstanding, wire []byte, first error, start time.Time, alloc func(int) []byte) ([]byte, error) {
	end := time.Now().Add(e.grace)
	if dl := durationOption(p, mangos.OptionRecvDeadline); dl > 0 && start.Add(dl).Before(end) {
		end = start.Add(dl)
	}
	if time.Until(end) <= 0 {
		return nil, first
	}
	type result struct {
		m   *mangos.Message
		err error
	}
	results := make(chan result, maxAdvisoryCopies)
	var ctxs []mangos.Context
	defer func() {
		for _, c := range ctxs {
			c.Close() // ends the copies' RecvMsg
		}
	}()
	sent, live := 0, 0
	resend := func() {
		wait := time.Until(end)
		if sent >= maxAdvisoryCopies || wait <= 0 {
			return
		}
		sent++
		c, err := s.sock.OpenContext()
		if err != nil {
			return
		}
		ctxs = append(ctxs, c)
		c.SetOption(mangos.OptionBestEffort, true) // queued for the next free pipe, never blocks
		c.SetOption(mangos.OptionRecvDeadline, wait)
		m := mangos.NewMessage(len(wire))
		m.Body = append(m.Body, wire...)
		// Request IDs are a counter per socket, unauthenticated: a peer
		// that saw one ID can answer the next ones before the server
		// does. Skipping a random stretch of IDs just before each copy
		// (one copy at a time per socket) puts the copy out of reach of
		// a "next IDs" spray narrower than the stretch.
		s.resendMu.Lock()
		s.skipRequestIDs(64 + rand.IntN(192))
		err = c.SendMsg(m)
		s.resendMu.Unlock()
		if err != nil {
			m.Free()
			return
		}
		live++
		go func() {
			rm, err := c.RecvMsg()
			results <- result{rm, err}
		}()
	}
	for i := 0; i < advisoryCopies; i++ {
		resend()
	}
	timer := time.NewTimer(time.Until(end))
	defer timer.Stop()
	// A further copy goes out a little later, when the pipes have moved
	// on: right after an advisory answer, mangos REQ would hand it to the
	// pipe that sent that answer.
	var later <-chan time.Time
	for live > 0 || later != nil {
		select {
		case r := <-results:
			live--
			if r.err != nil {
				continue // timeout or closed: this copy is over
			}
			body, err := e.client.openReply(alloc(len(r.m.Body)), o, r.m.Body)
			r.m.Free()
			if err == nil || !isAdvisory(err) {
				return body, err
			}
			if later == nil && sent < maxAdvisoryCopies {
				later = time.After(advisoryRespace)
			}
		case <-later:
			later = nil
			resend()
		case <-timer.C:
			return nil, first
		case <-x.closedCh:
			return nil, mangos.ErrClosed
		case <-s.closedCh:
			return nil, mangos.ErrClosed
		}
	}
	return nil, first
}

// skipRequestIDs makes the wrapped REQ socket skip request IDs: at least
// n, and until the last 48 skipped were consecutive (no other context took
// one in between), at most 1024. mangos REQ takes the next ID (and writes
// it into the message header) before it sees that the context is closed.
// s.resendMu is held.
func (s *Socket) skipRequestIDs(n int) {
	if s.skipCtx == nil {
		c, err := s.sock.OpenContext()
		if err != nil {
			return
		}
		c.Close()
		s.skipCtx = c
	}
	c := s.skipCtx
	m := mangos.NewMessage(0)
	defer m.Free()
	var last uint32
	run := 0
	for i := 0; i < 1024 && (i < n || run < 48); i++ {
		c.SendMsg(m)
		if len(m.Header) != 4 {
			return // not mangos REQ as we know it
		}
		id := binary.BigEndian.Uint32(m.Header)
		if id == last+1 {
			run++
		} else {
			run = 0
		}
		last = id
	}
}

// reject counts a rejected message and reports it to the hook and logger.
func (s *Socket) reject(e *engine, ev Event) {
	s.stats.rejected[ev.Reason].Add(1)
	if e.hook != nil {
		e.hook(ev)
	}
	if e.logger != nil {
		attrs := []slog.Attr{slog.String("reason", ev.Reason.String())}
		if !ev.Peer.IsZero() {
			attrs = append(attrs, slog.String("peer", ev.Peer.String()))
		}
		if ev.Err != nil {
			attrs = append(attrs, slog.String("error", ev.Err.Error()))
		}
		e.logger.LogAttrs(context.Background(), slog.LevelDebug, "secsock: message rejected", attrs...)
	}
}
