package secsock

// The PUSH side of the pipeline pattern (SPEC.md §15): each message is
// sealed like a REQ client's request, under the PUSH key and kinds, and
// sent one way. Nothing comes back: a pusher never learns whether a PULL
// worker delivered or dropped a message.

import (
	"fmt"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/push"

	"github.com/secsock/secsock/internal/wire"
)

// NewPushSocket returns a new PUSH socket with mechanism "none". With
// OptionMechanism "curve" and OptionServerKey (the service's public key)
// it seals every message it sends, as a REQ socket seals requests:
// short-term keys (OptionShortTermMessages, OptionShortTermLifetime), the
// suite of OptionCipher, and, with OptionSecretKey, a vouch for its
// long-term key that the PULL side's client policy checks. PULL workers
// drop what fails their checks and count it there (Stats, OptionEventHook
// on the PULL socket); the pusher is never told (SPEC.md §15), and its
// Authenticate returns mangos.ErrProtoOp.
func NewPushSocket() (*Socket, error) { return newSocket(push.NewSocket) }

// errNoBackChannel is Authenticate on a PUSH or PULL socket.
var errNoBackChannel = fmt.Errorf("secsock: Authenticate on PUSH/PULL: a PULL worker cannot answer (SPEC.md §15); "+
	"to check the keys, call Authenticate on a REQ socket with the same keys against a REP socket of the service: %w", mangos.ErrProtoOp)

// sendOneWay seals b as a PUSH message and sends it with header.
func (s *Socket) sendOneWay(header, b []byte) error {
	e := s.engine()
	if e.err != nil {
		return e.err
	}
	n := len(b)
	if e.client != nil {
		n = e.client.sealedSize(n)
	}
	m := mangos.NewMessage(n)
	if e.passThrough() {
		m.Body = append(m.Body, b...)
	} else if err := s.sealOneWay(e, m, b); err != nil {
		m.Free()
		return err
	}
	m.Header = append(m.Header, header...)
	if err := s.sock.SendMsg(m); err != nil {
		m.Free()
		return err
	}
	if !e.passThrough() {
		s.stats.sealed.Add(1)
	}
	return nil
}

// sendOneWayMsg is sendOneWay for a mangos.Message, which the socket owns
// after a successful call.
func (s *Socket) sendOneWayMsg(m *mangos.Message) error {
	if e := s.engine(); e.err == nil && e.passThrough() {
		return s.sock.SendMsg(m)
	}
	if err := s.sendOneWay(m.Header, m.Body); err != nil {
		return err
	}
	m.Free()
	return nil
}

// sealOneWay puts b sealed as a PUSH message in m's body.
func (s *Socket) sealOneWay(e *engine, m *mangos.Message, b []byte) error {
	if e.client == nil {
		// A PULL socket sends nothing, and never anything unsealed.
		return fmt.Errorf("secsock: a PULL socket cannot send: %w", mangos.ErrProtoOp)
	}
	c, _ := e.client.(*curveClient)
	for try := 0; ; try++ {
		if err := s.pushEpochs(e); err != nil {
			return err
		}
		body, _, err := e.client.sealRequest(m.Body[:0], b, false)
		if err != nil {
			return err
		}
		m.Body = body
		// An epoch boundary between pushEpochs' clock read and the
		// sealer's can leave a message without the epoch key the pusher
		// holds (or requires): seal it again after asking the source.
		epoch := body[3]&(1<<wire.ElemEpoch) != 0
		if epoch || c == nil || (c.ann.Load() == nil && c.cfg.epochs != EpochsRequire) {
			return nil
		}
		if try == 1 {
			if c.cfg.epochs == EpochsRequire {
				return fmt.Errorf("secsock: no epoch key for this PUSH message: %w", ErrUnknownEpoch)
			}
			return nil
		}
		c.annAt.Store(0) // ask the source before the second try
	}
}

// A pusher's epoch source (SPEC.md §15.6): after an answer without keys
// (the service has no epoch seed) it seals to the long-term key for
// noSeedRetry before asking again, and it re-asks at least every
// epochRecheck while it holds keys, so that a reseeded service (whose
// PULL workers drop the old chain's messages, silently for the pusher)
// costs at most that long.
const (
	noSeedRetry  = time.Minute
	epochRecheck = 5 * time.Minute
)

// pushEpochs gives the pusher of e the epoch keys that cover now, from
// its OptionEpochSource (SPEC.md §15.6): it keeps its keys while they
// cover the time and were confirmed within epochRecheck, and otherwise
// has the source ping for fresh ones. An error (the ping failed, or keys
// are required and there are none) fails the Send: a pusher never
// downgrades on its own.
func (s *Socket) pushEpochs(e *engine) error {
	c, _ := e.client.(*curveClient)
	if c == nil || c.cfg.epochs == EpochsOff {
		return nil
	}
	s.mu.Lock()
	src := s.cfg.epochSource
	s.mu.Unlock()
	if !c.pushNeedsSource(src != nil) {
		return nil
	}
	s.authMu.Lock() // one ping at a time per pusher
	defer s.authMu.Unlock()
	if c.pushNeedsSource(src != nil) {
		now := c.cfg.now().UnixMilli()
		ann, err := src.announcement(c.cfg.server)
		if err != nil {
			return err
		}
		c.ann.Store(ann)
		c.annAt.Store(now)
		if ann == nil {
			c.noSeedUntil.Store(now + noSeedRetry.Milliseconds())
		}
	}
	if have, _ := c.epochState(c.cfg.now()); !have && c.cfg.epochs == EpochsRequire {
		return fmt.Errorf("secsock: no epoch key for this PUSH message (OptionEpochs is %q; OptionEpochSource set: %v): %w",
			EpochsRequire, src != nil, ErrUnknownEpoch)
	}
	return nil
}

// pushNeedsSource reports whether the pusher c must ask its epoch source
// now: its keys do not cover the time, or were last confirmed more than
// epochRecheck ago; not while a "no seed" answer is recent.
func (c *curveClient) pushNeedsSource(hasSource bool) bool {
	if !hasSource {
		return false
	}
	now := c.cfg.now()
	have, _ := c.epochState(now)
	if !have {
		return now.UnixMilli() >= c.noSeedUntil.Load()
	}
	return now.UnixMilli() >= c.annAt.Load()+epochRecheck.Milliseconds()
}

// announcement has the REQ socket s ping its server (which must be the
// pusher's, server) with WANT_EPOCH and returns the epoch keys it then
// holds; nil when the authenticated answer said the service has no epoch
// seed (SPEC.md §14.2). The ping asks even if this REQ session heard
// "no seed" before (a worker without the seed during a rollout must not
// stop a pusher for the whole session), and one sealed with keys of a
// replaced chain meets UNKNOWN_EPOCH and is resent asking for the new
// ones.
func (s *Socket) announcement(server PublicKey) (*wire.Announcement, error) {
	e := s.engine()
	if e.err != nil {
		return nil, e.err
	}
	c, _ := e.client.(*curveClient)
	switch {
	case c == nil || s.oneWay:
		return nil, fmt.Errorf("secsock: OptionEpochSource is not a REQ socket with mechanism curve: %w", mangos.ErrBadValue)
	case c.cfg.server != server:
		return nil, fmt.Errorf("secsock: OptionEpochSource has another server key than the pusher: %w", mangos.ErrBadValue)
	case c.cfg.epochs == EpochsOff:
		return nil, fmt.Errorf("secsock: OptionEpochSource has OptionEpochs %q: it cannot learn epoch keys: %w", EpochsOff, mangos.ErrBadValue)
	}
	if sess := c.cur.Load(); sess != nil {
		sess.noEpochs.Store(false)
	}
	if err := s.Authenticate(); err != nil {
		return nil, fmt.Errorf("secsock: epoch keys for PUSH (OptionEpochSource): %w", err)
	}
	return c.ann.Load(), nil
}
