package secsock

// SendRaw and RecvRaw are a deliberate bypass: they move bodies through
// the wrapped mangos socket without sealing or opening, whatever the
// mechanism. Use them to talk to a peer that does not speak secsock, to
// inspect or inject wire bytes in tests, or to forward sealed bodies
// unchanged. Nothing sent with SendRaw is protected, and nothing received
// with RecvRaw has been authenticated.
//
// They also end the exchange in progress on the socket or context: after
// SendRaw, a sealed reply to the earlier request no longer opens (Recv
// fails closed); after RecvRaw, Send has no request to answer.

// On a REP socket with a sealing mechanism, RecvRaw also stops the
// socket's own reading (see OptionBacklog) until the next Recv, so that
// the raw message is not taken by it: meanwhile pings and refusals are not
// answered, and requests queued for Recv are dropped unanswered.

// SendRaw sends b as it is, without sealing.
func (s *Socket) SendRaw(b []byte) error { return sendRaw(s.sock, &s.def, b) }

// RecvRaw receives a body as it arrived, without opening or checking it.
func (s *Socket) RecvRaw() ([]byte, error) { return s.recvRaw(s.sock, &s.def) }

// SendRaw is Socket.SendRaw on this context.
func (c *Context) SendRaw(b []byte) error { return sendRaw(c.ctx, &c.x, b) }

// RecvRaw is Socket.RecvRaw on this context.
func (c *Context) RecvRaw() ([]byte, error) { return c.s.recvRaw(c.ctx, &c.x) }

type rawPipe interface {
	Send([]byte) error
	Recv() ([]byte, error)
}

// endExchange forgets the request in progress on x.
func endExchange(x *exchange) {
	x.mu.Lock()
	r, sent := x.req, x.sent
	x.hasOut, x.req, x.sent = false, nil, nil
	x.mu.Unlock()
	if r != nil {
		r.abandon()
	}
	if sent != nil {
		sent.Free()
	}
}

func sendRaw(p rawPipe, x *exchange, b []byte) error {
	endExchange(x)
	return p.Send(b)
}

func (s *Socket) recvRaw(p rawPipe, x *exchange) ([]byte, error) {
	endExchange(x)
	if s.server {
		s.stopDispatch()
	}
	return p.Recv()
}
