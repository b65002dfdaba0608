package secsock

// The REQ side of the curve mechanism: short-term sessions, sealing
// requests and opening answers (SPEC.md §7). No I/O.

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/secsock/secsock/internal/wire"
)

// clientConfig is everything a REQ socket needs to seal requests.
type clientConfig struct {
	server      PublicKey
	longTerm    SecretKey // zero: anonymous
	suite       byte
	maxMessages uint64
	maxAge      time.Duration
	rand        io.Reader
	now         func() time.Time
}

// clientSession is one short-term key C'. Its secret is used once, for
// dh1, and never stored.
type clientSession struct {
	eph     [wire.KeySize]byte
	prk0    wire.Secret
	keys    *wire.Keys
	id      *wire.Identity // nil for anonymous clients
	counter atomic.Uint64
	expires time.Time
}

// curveClient seals requests and opens answers for one REQ socket.
type curveClient struct {
	cfg  clientConfig
	prkV *wire.Secret // vouch secret of (C, S), computed once; nil: anonymous
	mu   sync.Mutex
	cur  atomic.Pointer[clientSession]
}

func newCurveClient(cfg clientConfig) (*curveClient, error) {
	if cfg.server.IsZero() {
		return nil, ErrNoKey
	}
	cfg.maxMessages = min(max(cfg.maxMessages, 1), maxShortTermMessages)
	cfg.maxAge = min(cfg.maxAge, maxShortTermLifetime)
	c := &curveClient{cfg: cfg}
	if !cfg.longTerm.IsZero() {
		srv, me := [wire.KeySize]byte(cfg.server), [wire.KeySize]byte(cfg.longTerm.public)
		dh, err := wire.X25519(secretOf(&cfg.longTerm), &srv)
		if err != nil {
			return nil, fmt.Errorf("secsock: server key: %w", ErrWeakKey)
		}
		v := wire.VouchSecret(&dh, &me, &srv)
		clear(dh[:])
		c.prkV = &v
	}
	return c, nil
}

// session returns the current short-term session and a fresh counter,
// making a new session when the old one has sealed maxMessages requests
// or reached maxAge. Contexts sealing concurrently share only the atomic
// counter; counters taken past maxMessages are never used.
func (c *curveClient) session(now time.Time) (*clientSession, uint64, error) {
	if s := c.cur.Load(); s != nil && now.Before(s.expires) {
		if n := s.counter.Add(1); n <= c.cfg.maxMessages {
			return s, n, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.cur.Load(); s != nil && now.Before(s.expires) {
		if n := s.counter.Add(1); n <= c.cfg.maxMessages {
			return s, n, nil
		}
	}
	s, err := c.newSession(now)
	if err != nil {
		return nil, 0, err
	}
	c.cur.Store(s)
	return s, 1, nil
}

func (c *curveClient) newSession(now time.Time) (*clientSession, error) {
	secret, eph, err := wire.GenerateShortTerm(c.cfg.rand)
	if err != nil {
		return nil, err
	}
	srv := [wire.KeySize]byte(c.cfg.server)
	dh, err := wire.X25519(&secret, &srv)
	clear(secret[:])
	if err != nil {
		return nil, err
	}
	s := &clientSession{eph: eph, prk0: wire.RequestSecret(&dh, &eph, &srv), expires: now.Add(c.cfg.maxAge)}
	clear(dh[:])
	s.keys = wire.SessionKeys(&s.prk0, c.cfg.suite)
	if c.prkV != nil {
		me := [wire.KeySize]byte(c.cfg.longTerm.public)
		e := uint64(s.expires.UnixMilli())
		s.id = &wire.Identity{Client: me, Vouch: wire.Vouch(c.prkV, &eph, &me, &srv, e), Expiry: e}
	}
	s.counter.Store(1)
	return s, nil
}

// Client limits on one short-term key (SPEC.md §4.2): counters up to 2^24
// keep AES-GCM's random reply nonces far from a collision, and vouches
// expire at most 24 hours after they are made.
const (
	maxShortTermMessages = 1 << 24
	maxShortTermLifetime = 24 * time.Hour
)

// outstanding is what a client remembers about the request it sent last
// on a context, to open the answer.
type outstanding struct {
	sess    *clientSession
	counter uint64
	header  [wire.HeaderSize]byte // H as sent (no extensions): refusals are bound to it
}

// sealRequest appends a sealed request (or ping) carrying body to dst.
func (c *curveClient) sealRequest(dst, body []byte, ping bool) ([]byte, outstanding, error) {
	now := c.cfg.now() // one clock read: the session's age and the timestamp
	s, n, err := c.session(now)
	if err != nil {
		return nil, outstanding{}, err
	}
	f := wire.RequestFields{Kind: wire.KindRequest, Suite: c.cfg.suite, Eph: s.eph, Counter: n, Timestamp: uint64(now.UnixMilli())}
	if ping {
		f.Kind = wire.KindPing
	}
	if s.id != nil {
		f.Kind++ // the vouched variant of each kind
	}
	start := len(dst)
	out := wire.AppendRequest(dst, &f, s.keys, s.id, body)
	o := outstanding{sess: s, counter: n}
	copy(o.header[:], out[start:])
	return out, o, nil
}

// openReply opens the answer to o and appends a reply's body to dst.
// Refusals and hints become their typed errors.
func (c *curveClient) openReply(dst []byte, o outstanding, b []byte) ([]byte, error) {
	kind, hint, err := wire.Classify(b)
	switch {
	case err == wire.ErrVersion:
		if len(b) >= 2 && b[0] == 0x01 && b[1] >= wire.KindReply && b[1] <= wire.KindHint {
			return nil, ErrUnknownVersion // a secsock v1 peer
		}
		return nil, ErrNotSecsock
	case err == wire.ErrKind:
		return nil, ErrUnknownKind
	case err != nil:
		return nil, ErrMalformed
	}
	switch kind {
	case wire.KindHint:
		switch hint {
		case wire.HintUnsupportedVersion:
			return nil, ErrUnsupported
		case wire.HintBusy:
			return nil, ErrBusy
		}
		return nil, ErrServerKeyMismatch
	case wire.KindRefusal:
		reason, err := wire.CheckRefusal(&o.sess.prk0, o.header[:], b)
		if err != nil {
			return nil, wireError(err)
		}
		return nil, refusalError(reason)
	}
	body, err := wire.OpenReply(dst, o.sess.keys, o.counter, b)
	if err != nil {
		return nil, wireError(err)
	}
	return body, nil
}

// refusalError maps an authenticated refusal's reason to its error.
func refusalError(reason byte) error {
	switch reason {
	case wire.RefuseNotAuthorized:
		return ErrNotAuthorized
	case wire.RefuseStale:
		return ErrStale
	case wire.RefuseReplayed:
		return ErrReplayed
	case wire.RefuseUnsupportedFeature:
		return ErrUnsupportedFeature
	case wire.RefuseInDoubt:
		return ErrInDoubt
	}
	return fmt.Errorf("secsock: reason 0x%02x: %w", reason, ErrRefused)
}

// wireError maps the crypto core's failures to the package's errors.
func wireError(err error) error {
	switch err {
	case wire.ErrOpen:
		return ErrAuthFailed
	case wire.ErrMalformed:
		return ErrMalformed
	case wire.ErrKind:
		return ErrUnknownKind
	case wire.ErrVersion:
		return ErrUnknownVersion
	case wire.ErrWeakKey:
		return ErrWeakKey
	}
	return err
}

func (c *curveClient) sealedSize(n int) int {
	if c.prkV != nil {
		return n + vouchRequestOver
	}
	return n + anonRequestOver
}
