// Package secsock adds end-to-end encryption to nanomsg-compatible mangos v3
// sockets. It seals each message body right after Send and opens it right
// before Recv returns, with CurveCP-style NaCl boxes; the SP header
// (request ID, backtrace) is never touched, so raw mangos devices route
// sealed traffic over any transport without keys.
//
// The wire protocol is "secsock curve, version 1", specified in SPEC.md
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
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/req"
)

// Socket is a mangos.Socket whose message bodies are sealed end to end.
// Methods not listed here are those of the wrapped socket.
type Socket struct {
	mangos.Socket
	server bool // REP (true) or REQ (false)
	stats  counters

	mu      sync.Mutex // guards cfg, srv, maxRecv and building eng
	cfg     config
	maxRecv *int                   // the application's mangos.OptionMaxRecvSize (nil: not read yet)
	srv     serverMechanism        // kept across option changes
	eng     atomic.Pointer[engine] // nil: rebuild from cfg

	def exchange // the default context's state
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
}

func (e *engine) passThrough() bool { return e.err == nil && e.client == nil && e.server == nil }

// exchange is the state of one context between a request and its reply.
type exchange struct {
	mu     sync.Mutex
	out    outstanding // REQ: the last request sent
	hasOut bool
	tk     ticket // REP: the request delivered last
	hasTk  bool
	// routeLost: since tk was delivered, Recv received (and dropped or
	// answered) another message, so mangos would route a reply to that
	// message's sender. The reply is then only kept for the client's retry.
	routeLost bool
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

// Wrap wraps an existing cooked mangos socket. REQ and REP sockets can use
// every mechanism; other protocols only "none" for now. Raw sockets are
// refused with ErrRawSocket: a device forwards sealed bodies as they are.
// The caller must not use sock directly afterwards.
func Wrap(sock mangos.Socket) (*Socket, error) {
	if raw, err := sock.GetOption(mangos.OptionRaw); err == nil && raw == true {
		return nil, ErrRawSocket
	}
	s := &Socket{Socket: sock, cfg: defaultConfig()}
	switch sock.Info().Self {
	case mangos.ProtoRep:
		s.server = true
	case mangos.ProtoReq:
	default:
		s.server = false
		s.eng.Store(&engine{}) // pass-through until a mechanism says otherwise
	}
	return s, nil
}

func (s *Socket) isReqRep() bool {
	self := s.Socket.Info().Self
	return self == mangos.ProtoReq || self == mangos.ProtoRep
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
	e := &engine{peer: s.cfg.serverKey, hook: s.cfg.eventHook, logger: s.cfg.logger}
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
	s.mu.Lock()
	ok, err := s.cfg.set(name, v)
	if ok && err == nil {
		s.eng.Store(nil)
		if name == OptionMechanism {
			err = s.applyMaxRecvSize()
		}
	}
	s.mu.Unlock()
	if !ok {
		return s.Socket.SetOption(name, v)
	}
	if err == nil && s.server {
		// Goroutines already waiting in Recv hold the current engine:
		// rebuild now so that a new policy or key set applies to the
		// next request they receive (the server state is shared).
		s.engine()
	}
	return err
}

// maxSealOverhead is what a wrapped socket's receive limit adds to the
// application's: the most that sealing adds to a body (a vouched request;
// replies add less) plus an SP header of up to 16 hops, which mangos
// counts too.
const maxSealOverhead = vouchRequestOver + 16*4

// setMaxRecvSize takes mangos.OptionMaxRecvSize as a limit on the
// application's bodies: with a sealing mechanism the wrapped socket
// allows maxSealOverhead more, so that a body at the limit is not dropped
// silently once sealed (mangos counts the header and the sealed body).
func (s *Socket) setMaxRecvSize(v any) error {
	n, ok := v.(int)
	if !ok || n < 0 {
		return mangos.ErrBadValue
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxRecv = &n
	return s.applyMaxRecvSize()
}

// applyMaxRecvSize sets the wrapped socket's limit; s.mu is held.
func (s *Socket) applyMaxRecvSize() error {
	if s.maxRecv == nil {
		v, err := s.Socket.GetOption(mangos.OptionMaxRecvSize)
		if err != nil {
			return nil // the protocol has no such option
		}
		n := v.(int)
		if s.cfg.mechanism != MechanismNone && n > 0 {
			n -= maxSealOverhead // it was raised for sealing before
		}
		s.maxRecv = &n
	}
	n := *s.maxRecv
	if s.cfg.mechanism != MechanismNone && n > 0 {
		n += maxSealOverhead
	}
	return s.Socket.SetOption(mangos.OptionMaxRecvSize, n)
}

// GetOption reads a secsock option or passes the name on to mangos.
func (s *Socket) GetOption(name string) (any, error) {
	s.mu.Lock()
	if name == mangos.OptionMaxRecvSize && s.maxRecv != nil {
		defer s.mu.Unlock()
		return *s.maxRecv, nil
	}
	ok, v, err := s.cfg.get(name)
	s.mu.Unlock()
	if ok {
		return v, err
	}
	return s.Socket.GetOption(name)
}

// Stats returns the socket's counters (contexts included).
func (s *Socket) Stats() Stats { return s.stats.snapshot() }

// Send seals b and sends it: a request on REQ, the reply to the request
// last received on REP.
func (s *Socket) Send(b []byte) error { return s.send(s.Socket, &s.def, b) }

// SendMsg is Send for a mangos.Message. As with mangos, the socket owns m
// after a successful call; on error the caller keeps m unchanged.
func (s *Socket) SendMsg(m *mangos.Message) error { return s.sendMsg(s.Socket, &s.def, m) }

// Recv receives a message and returns its opened body.
func (s *Socket) Recv() ([]byte, error) { return s.recv(s.Socket, &s.def) }

// RecvMsg is Recv returning a mangos.Message.
func (s *Socket) RecvMsg() (*mangos.Message, error) { return s.recvMsg(s.Socket, &s.def) }

// OpenContext opens a mangos context whose Send and Recv seal and open
// like the socket's. It returns a *Context.
func (s *Socket) OpenContext() (mangos.Context, error) {
	c, err := s.Socket.OpenContext()
	if err != nil {
		return nil, err
	}
	return &Context{Context: c, s: s}, nil
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
	if e.client == nil {
		return fmt.Errorf("secsock: Authenticate needs a REQ socket with mechanism curve: %w", mangos.ErrProtoOp)
	}
	c, err := s.Socket.OpenContext()
	if err != nil {
		return err
	}
	defer c.Close()
	var x exchange
	if err := s.seal(c, &x, e, nil, nil, true); err != nil {
		return err
	}
	_, err = s.recv(c, &x)
	return err
}

// Context is a mangos.Context of a Socket; its data methods seal and open.
type Context struct {
	mangos.Context
	s *Socket
	x exchange
}

// Send is Socket.Send on this context.
func (c *Context) Send(b []byte) error { return c.s.send(c.Context, &c.x, b) }

// SendMsg is Socket.SendMsg on this context.
func (c *Context) SendMsg(m *mangos.Message) error { return c.s.sendMsg(c.Context, &c.x, m) }

// Recv is Socket.Recv on this context.
func (c *Context) Recv() ([]byte, error) { return c.s.recv(c.Context, &c.x) }

// RecvMsg is Socket.RecvMsg on this context.
func (c *Context) RecvMsg() (*mangos.Message, error) { return c.s.recvMsg(c.Context, &c.x) }

// SetOption sets a mangos option of the context. secsock options are
// socket-wide: setting them on a context gives mangos.ErrBadOption.
func (c *Context) SetOption(name string, v any) error { return c.Context.SetOption(name, v) }

// GetOption reads a context option; secsock options read the socket's.
func (c *Context) GetOption(name string) (any, error) {
	c.s.mu.Lock()
	ok, v, err := c.s.cfg.get(name)
	c.s.mu.Unlock()
	if ok {
		return v, err
	}
	return c.Context.GetOption(name)
}

// msgPipe is what the socket and its contexts have in common.
type msgPipe interface {
	SendMsg(*mangos.Message) error
	RecvMsg() (*mangos.Message, error)
}

func (s *Socket) send(p msgPipe, x *exchange, b []byte) error {
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
	return s.seal(p, x, e, nil, b, false)
}

func (s *Socket) sendMsg(p msgPipe, x *exchange, m *mangos.Message) error {
	e := s.engine()
	if e.passThrough() {
		return p.SendMsg(m)
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
	} else {
		if !x.hasTk {
			return mangos.ErrProtoState // never send a reply unsealed
		}
		m = mangos.NewMessage(e.server.sealedSize(len(body)))
		if m.Body, err = e.server.sealReply(m.Body, x.tk, body); err != nil {
			m.Free()
			return err // the ticket stays: Send may be tried again
		}
		x.hasTk = false
		if x.routeLost {
			// The reply cache holds it for the client's retry (mangos
			// REQ resends); sending it now would reach the wrong peer.
			m.Free()
			s.stats.sealed.Add(1)
			return nil
		}
	}
	m.Header = append(m.Header, header...)
	if err := p.SendMsg(m); err != nil {
		m.Free()
		x.hasOut = false
		return err
	}
	s.stats.sealed.Add(1)
	return nil
}

func (s *Socket) recv(p msgPipe, x *exchange) ([]byte, error) {
	e := s.engine()
	if e.passThrough() {
		if err := x.sealedOutstanding(); err != nil {
			return nil, err
		}
		m, err := p.RecvMsg()
		if err != nil {
			return nil, err
		}
		b := append(make([]byte, 0, len(m.Body)), m.Body...)
		m.Free()
		return b, nil
	}
	m, err := s.open(p, x, e, newBody)
	if err != nil {
		return nil, err
	}
	b := m.Body // not the message's pooled buffer: Free does not recycle it
	m.Free()
	return b, nil
}

func (s *Socket) recvMsg(p msgPipe, x *exchange) (*mangos.Message, error) {
	e := s.engine()
	if e.passThrough() {
		if err := x.sealedOutstanding(); err != nil {
			return nil, err
		}
		return p.RecvMsg()
	}
	return s.open(p, x, e, newBody)
}

func newBody(n int) []byte { return make([]byte, 0, n) }

// open receives from p until a message opens, answering on the
// application's behalf what the mechanism answers itself (server side).
// alloc gives the buffer for the opened body. The returned message's
// Body is that buffer.
func (s *Socket) open(p msgPipe, x *exchange, e *engine, alloc func(n int) []byte) (*mangos.Message, error) {
	if e.err != nil {
		return nil, e.err
	}
	for {
		m, err := p.RecvMsg()
		if err != nil {
			return nil, err
		}
		if e.client != nil {
			x.mu.Lock()
			o, ok := x.out, x.hasOut
			x.hasOut = false
			x.mu.Unlock()
			if !ok {
				m.Free()
				return nil, mangos.ErrProtoState
			}
			body, err := e.client.openReply(alloc(len(m.Body)), o, m.Body)
			if err != nil {
				m.Free()
				s.reject(e, Event{Reason: reasonOf(err), Peer: e.peer, Err: err})
				return nil, err
			}
			m.Body = body
			s.stats.opened.Add(1)
			return m, nil
		}
		in := e.server.openRequest(alloc(len(m.Body)), m.Body)
		if in.deliver {
			x.mu.Lock()
			x.tk, x.hasTk, x.routeLost = in.ticket, true, false
			x.mu.Unlock()
			m.Body = in.body
			s.stats.opened.Add(1)
			return m, nil
		}
		// mangos now holds this message's return path, not the one of
		// the request delivered last: its reply must not go there.
		x.mu.Lock()
		x.routeLost = x.hasTk
		x.mu.Unlock()
		if in.reason != ReasonNone { // pings are answered, not rejected
			s.reject(e, Event{Reason: in.reason, Peer: in.client})
		}
		if in.respond == nil {
			m.Free()
			continue
		}
		m.Body = append(m.Body[:0], in.respond...)
		if err := p.SendMsg(m); err != nil {
			m.Free()
		} else {
			s.stats.answered.Add(1)
		}
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
