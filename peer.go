package secsock

import (
	"fmt"

	"go.nanomsg.org/mangos/v3"
)

// Peer is who sent a request that a REP socket delivered: what the server's
// checks proved about it. Read it with Socket.Peer or Context.Peer while
// the request is held (between Recv and the Send that answers it).
type Peer struct {
	// Key is the client's canonical long-term public key when the request
	// proved it (a vouched request, SPEC.md §4.3); zero for anonymous and
	// plain requests. Every encoding of one key gives the same Key.
	Key PublicKey
	// ServerKey is the server key the request was sealed to: the current
	// OptionSecretKey's, or one of OptionPreviousSecretKeys during a
	// rotation (Previous). Zero for plain requests.
	ServerKey PublicKey
	// Previous: sealed to a previous server key (OptionPreviousSecretKeys),
	// so this client has not moved to the current key yet.
	Previous bool
	// ForwardSecret: sealed with an epoch key (SPEC.md §14), so it stays
	// confidential once its epoch has ended.
	ForwardSecret bool
	// Hybrid: sealed in the hybrid mode (OptionHybrid, SPEC.md §16), so
	// recorded traffic stays confidential unless both X25519 and
	// ML-KEM-768 are broken.
	Hybrid bool
	// Plain: an unsealed request: delivered by a permissive server
	// (OptionPermissive), or by one with mechanism "none" (RecvPeer). It is not authenticated, not confidential and
	// not replay-protected; its reply goes back unsealed.
	Plain bool
}

// Anonymous reports whether the request proved no client key (an
// anonymous sealed request, or a plain one).
func (p Peer) Anonymous() bool { return p.Key.IsZero() }

// Fingerprint returns a short name of the client for logs and metric
// labels: Key.Fingerprint() (16 hex characters), "anonymous" or "plain".
func (p Peer) Fingerprint() string {
	switch {
	case p.Plain:
		return "plain"
	case p.Key.IsZero():
		return "anonymous"
	}
	return p.Key.Fingerprint()
}

// String describes the peer for logs, such as
// "client 1a2b3c4d5e6f7a8b to server 8b7a6f5e4d3c2b1a (forward-secret)".
// It holds no secret.
func (p Peer) String() string {
	if p.Plain {
		return "plain (unauthenticated)"
	}
	s := fmt.Sprintf("client %s to server %s", p.Fingerprint(), p.ServerKey.Fingerprint())
	if p.Previous {
		s += " (previous key)"
	}
	if p.ForwardSecret {
		s += " (forward-secret)"
	}
	if p.Hybrid {
		s += " (hybrid)"
	}
	return s
}

// Peer returns who sent the request the socket's default context holds:
// the one its last Recv or RecvMsg returned, until Send answers it. With
// no request held (and always on REQ, PUSH and PULL, or with mechanism
// "none") it returns mangos.ErrProtoState. A PULL socket holds nothing
// between messages and may be read by several goroutines at once: use
// RecvPeer or RecvMsgPeer there, which return the sender with the message.
func (s *Socket) Peer() (Peer, error) { return s.def.peer() }

// RecvPeer is Recv returning also who sent the body: on REP the Peer of
// the request now held, on PULL the sender of this message (Peer.Plain
// with mechanism "none"); the zero Peer on REQ and PUSH.
func (s *Socket) RecvPeer() ([]byte, Peer, error) { return s.recvPeer(s.sock, &s.def) }

// RecvMsgPeer is RecvMsg returning also who sent the message, as RecvPeer.
func (s *Socket) RecvMsgPeer() (*mangos.Message, Peer, error) {
	m, _, p, err := s.receive(s.sock, &s.def)
	return m, p, err
}

// RecvPeer is Socket.RecvPeer on this context.
func (c *Context) RecvPeer() ([]byte, Peer, error) { return c.s.recvPeer(c.ctx, &c.x) }

// RecvMsgPeer is Socket.RecvMsgPeer on this context.
func (c *Context) RecvMsgPeer() (*mangos.Message, Peer, error) {
	m, _, p, err := c.s.receive(c.ctx, &c.x)
	return m, p, err
}

// Peer is Socket.Peer for the request this context holds.
func (c *Context) Peer() (Peer, error) { return c.x.peer() }

func (x *exchange) peer() (Peer, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.req == nil {
		return Peer{}, fmt.Errorf("secsock: no request held: %w", mangos.ErrProtoState)
	}
	return x.req.peer, nil
}

// RequestAuthorizer decides about each request a REP socket is about to
// deliver, seeing who sent it and its opened body (read-only: do not keep
// or change it). Returning false refuses the request with an
// authenticated NOT_AUTHORIZED refusal (the client's ErrNotAuthorized;
// plain requests in permissive mode are dropped instead, counted as
// ReasonNotAuthorized; so are refused PULL messages, which have nobody to
// tell). It runs on the goroutine that called Recv, before
// Recv returns, so it may block that goroutine but not the socket; it
// must be safe for concurrent use when several goroutines receive.
type RequestAuthorizer func(p Peer, body []byte) bool
