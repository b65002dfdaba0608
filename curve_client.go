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
	epochs      string // EpochsAuto, EpochsRequire or EpochsOff
	hybrid      bool   // OptionHybrid on (SPEC.md §16)
	rand        io.Reader
	now         func() time.Time
	// push: a PUSH socket's sealer (SPEC.md §15): PUSH kinds, the PUSH
	// key, never WANT_EPOCH (nothing could answer it).
	push bool
}

// clientSession is one short-term key C'. Its secret stays in memory for
// the session's life, for the epoch agreements (SPEC.md §14.3): a thief
// of the client's memory reads its current sessions anyway.
type clientSession struct {
	eph     [wire.KeySize]byte
	prk0    wire.Secret
	keys    *wire.Keys
	id      *wire.Identity // nil for anonymous clients
	counter atomic.Uint64
	expires time.Time

	mu     sync.Mutex
	secret *wire.PrivateKey // c', dropped when the session is replaced
	epochs []clientEpoch
	// noEpochs: a server answered a WANT_EPOCH with a plain REPLY (it has
	// no epoch seed); this session stops asking. The next one asks again.
	noEpochs atomic.Bool
	// hybrids: the hybrid state per epoch (SPEC.md §16), guarded by mu;
	// keepPRK: keep each epoch secret for it.
	hybrids []*sessionHybrid
	keepPRK bool
}

// clientEpoch is a session's agreement with one epoch key.
type clientEpoch struct {
	public  [wire.KeySize]byte
	element []byte // the EPOCH request element
	keys    *wire.Keys
	prk     wire.Secret // the epoch secret, kept in the hybrid mode only
}

// curveClient seals requests and opens answers for one REQ socket.
type curveClient struct {
	cfg  clientConfig
	prkV *wire.Secret // vouch secret of (C, S), computed once; nil: anonymous
	mu   sync.Mutex
	cur  atomic.Pointer[clientSession]
	ann  atomic.Pointer[wire.Announcement] // the server's latest epoch keys (§14.2)
	// noSeedUntil: a pusher's epoch source said the service has no epoch
	// seed; until this time (ms) it does not ask again (§15.6).
	noSeedUntil atomic.Int64
	annAt       atomic.Int64                   // when (ms) a pusher's source last confirmed its keys
	kem         kemKeys                        // the server's ML-KEM keys by epoch (§16)
	ids         [2]atomic.Pointer[epochIDMemo] // ids of the announced epoch keys, memoized (§16)
	idNext      atomic.Uint32
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
	if old := c.cur.Swap(s); old != nil {
		old.mu.Lock()
		old.secret = nil // crypto/ecdh keeps its copy until collected
		old.mu.Unlock()
	}
	return s, 1, nil
}

func (c *curveClient) newSession(now time.Time) (*clientSession, error) {
	// c' is 32 random bytes prepared as a crypto/ecdh key: its public key
	// and each agreement (dh1, and dhE per epoch) one scalar
	// multiplication each.
	var seed [wire.KeySize]byte
	if _, err := io.ReadFull(c.cfg.rand, seed[:]); err != nil {
		return nil, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	priv, err := wire.NewPrivateKey(&seed)
	clear(seed[:])
	if err != nil {
		return nil, err
	}
	eph := priv.Public()
	srv := [wire.KeySize]byte(c.cfg.server)
	dh, err := priv.Agree(&srv)
	if err != nil {
		return nil, err
	}
	s := &clientSession{eph: eph, prk0: wire.RequestSecret(&dh, &eph, &srv), expires: now.Add(c.cfg.maxAge), secret: priv}
	clear(dh[:])
	s.keys = c.derive(&s.prk0, c.cfg.suite)
	if c.prkV != nil {
		me := [wire.KeySize]byte(c.cfg.longTerm.public)
		e := uint64(s.expires.UnixMilli())
		vouch := wire.Vouch
		if c.cfg.push {
			vouch = wire.PushVouch // bound to the pattern (SPEC.md §15.1)
		}
		s.id = &wire.Identity{Client: me, Vouch: vouch(c.prkV, &eph, &me, &srv, e), Expiry: e}
	}
	s.counter.Store(1)
	s.keepPRK = c.cfg.hybrid
	return s, nil
}

// derive returns the keys of the session secret prk for suite: a REQ
// socket's request and reply keys, or a pusher's PUSH key.
func (c *curveClient) derive(prk *wire.Secret, suite byte) *wire.Keys {
	if c.cfg.push {
		return wire.PushKeys(prk, suite)
	}
	return wire.SessionKeys(prk, suite)
}

// Client limits on one short-term key (SPEC.md §4.2): counters up to 2^24
// keep AES-GCM's random reply nonces far from a collision, and vouches
// expire at most 24 hours after they are made.
const (
	maxShortTermMessages = 1 << 24
	maxShortTermLifetime = 24 * time.Hour
)

// maxClientHeader is the longest header this client keeps in place: an
// EPOCH, a hybrid ticket, a WANT_EPOCH and a WANT_KEM element (a header
// with an ML-KEM ciphertext is kept in bigHeader).
const maxClientHeader = wire.HeaderSize + 11 + wire.TicketElementSize + 3 + 3

// outstanding is what a client remembers about the request it sent last
// on a context, to open the answer.
type outstanding struct {
	sess    *clientSession
	keys    *wire.Keys // the keys it was sealed with (epoch or long-term)
	counter uint64
	header  [maxClientHeader]byte // H as sent: refusals are bound to it
	hlen    uint8
	want    bool // it asked for epoch keys
	// The hybrid mode (SPEC.md §16): a hybrid request; the anonymous
	// key-fetch ping; the session state it was sealed with and whether it
	// carried the ciphertext; a header too long for header.
	hybrid, keyFetch bool
	hsess            *sessionHybrid
	hkem             bool
	bigHeader        []byte
}

// h returns the header sent.
func (o *outstanding) h() []byte {
	if o.bigHeader != nil {
		return o.bigHeader
	}
	return o.header[:o.hlen]
}

// epochFor returns the session's keys and request element for the epoch
// key in use at now, nil when the client has none (SPEC.md §14.2), and
// whether to ask for an announcement.
func (c *curveClient) epochFor(s *clientSession, now time.Time) (*clientEpoch, bool, error) {
	if c.cfg.epochs == EpochsOff {
		return nil, false, nil
	}
	a := c.ann.Load()
	if a == nil {
		return nil, !s.noEpochs.Load(), nil
	}
	t := uint64(now.UnixMilli())
	var k uint64
	if t >= a.Start {
		k = (t - a.Start) / a.Length // epochs after the announced one
	}
	if k > 1 {
		return nil, true, nil
	}
	pub := a.Current
	if k == 1 {
		pub = a.Next
	}
	e, err := s.agree(&pub, c.derive)
	return e, k == 1, err
}

// epochState says, at now, whether the client holds an epoch key to seal
// with, and whether it must ping for a fresh announcement before sealing
// data: it once held keys that no longer cover now (it sat idle, or the
// replies that would have announced the next keys were lost), or it
// requires epoch keys and has none yet. Sealing such data to the long-term
// key alone would be a downgrade that nothing authenticated asked for.
func (c *curveClient) epochState(now time.Time) (have, ping bool) {
	if c.cfg.epochs == EpochsOff {
		return false, false
	}
	a := c.ann.Load()
	if a == nil {
		return false, c.cfg.epochs == EpochsRequire
	}
	t := uint64(now.UnixMilli())
	have = t < a.Start || (t-a.Start)/a.Length <= 1
	return have, !have
}

// agree returns the session's agreement with the epoch key pub, making it
// on first use (one X25519 per session and epoch).
func (s *clientSession) agree(pub *[wire.KeySize]byte, derive func(*wire.Secret, byte) *wire.Keys) (*clientEpoch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.epochs {
		if s.epochs[i].public == *pub {
			return &s.epochs[i], nil
		}
	}
	if s.secret == nil {
		return nil, fmt.Errorf("secsock: short-term key already replaced: %w", ErrNoKey)
	}
	dhE, err := s.secret.Agree(pub)
	if err != nil {
		return nil, err
	}
	defer clear(dhE[:])
	e := clientEpoch{public: *pub, element: wire.EpochElement(wire.EpochID(pub))}
	prk := wire.EpochSecret(&s.prk0, &dhE, pub, e.element)
	e.keys = derive(&prk, s.keys.Suite)
	if s.keepPRK {
		e.prk = prk
	}
	clear(prk[:])
	s.epochs = append(s.epochs, e)
	return &s.epochs[len(s.epochs)-1], nil
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
	if c.cfg.push {
		f.Kind = wire.KindPush
	}
	if c.cfg.hybrid {
		return c.sealHybrid(dst, body, ping, s, n, now)
	}
	if s.id != nil {
		f.Kind++ // the vouched variant of each kind
	}
	e, want, err := c.epochFor(s, now)
	if err != nil {
		return nil, outstanding{}, err
	}
	o := outstanding{sess: s, keys: s.keys, counter: n}
	if e != nil {
		f.Epoch, o.keys = e.element, e.keys
	}
	want = want && !c.cfg.push
	f.WantEpoch, o.want = want, want
	start := len(dst)
	out := wire.AppendRequest(dst, &f, o.keys, s.id, body)
	o.hlen = uint8(copy(o.header[:], out[start:start+wire.HeaderSize+len(f.Epoch)+3*btoi(want)]))
	return out, o, nil
}

// openReply opens the answer to o and appends a reply's body to dst.
// Refusals and hints become their typed errors.
func (c *curveClient) openReply(dst []byte, o outstanding, b []byte) ([]byte, error) {
	kind, hint, err := wire.Classify(b)
	switch {
	case err == wire.ErrVersion:
		return nil, ErrNotSecsock // SPEC.md §7 step 1: not a secsock v2 answer
	case err == wire.ErrKind && wire.IsReflectedRequest(b):
		return nil, ErrNotSecsock // §7 step 1: a plain peer echoed the request
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
		reason, err := wire.CheckRefusal(&o.sess.prk0, o.h(), b)
		if err != nil {
			return nil, wireError(err)
		}
		if reason == wire.RefuseUnknownEpoch {
			c.ann.Store(nil) // verified: the server does not take our epoch keys
		}
		if o.hybrid {
			return nil, c.hybridRefusal(o, reason)
		}
		return nil, refusalError(reason)
	case wire.KindReplyExt:
		elems, body, err := wire.OpenReplyExt(dst, o.keys, o.counter, b)
		if err != nil {
			return nil, wireError(err)
		}
		c.learn(elems)
		if o.hybrid {
			if m, err := wire.Elements(elems); err == nil {
				c.learnHybrid(o, m)
			}
		}
		return body, nil
	}
	body, err := wire.OpenReply(dst, o.keys, o.counter, b)
	if err != nil {
		return nil, wireError(err)
	}
	if o.want {
		// Asked for epoch keys, answered without: this server has no
		// epoch seed (an authenticated answer). Stop asking in this
		// session, and drop keys learned elsewhere.
		o.sess.noEpochs.Store(true)
		c.ann.Store(nil)
	}
	return body, nil
}

// learn keeps the epoch keys a verified REPLY_EXT announced.
func (c *curveClient) learn(elems []byte) {
	m, err := wire.Elements(elems)
	if err != nil || m[wire.ElemEpoch] == nil || c.cfg.epochs == EpochsOff {
		return
	}
	if a, err := wire.ParseAnnouncement(m[wire.ElemEpoch]); err == nil {
		if old := c.ann.Load(); old == nil || old.Index <= a.Index {
			c.ann.Store(&a)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
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
	case wire.RefuseUnknownEpoch:
		return ErrUnknownEpoch
	case wire.RefuseStoreUnavailable:
		return ErrStoreUnavailable
	case wire.RefuseUnknownTicket:
		return ErrUnknownTicket
	case wire.RefuseHybridRequired:
		return ErrHybridRequired
	case wire.RefuseTooLarge:
		return fmt.Errorf("secsock: the server refused the request body as over its limit: %w", ErrTooLarge)
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
	if c.cfg.hybrid {
		n += 11 + wire.TicketElementSize + 6 // steady state: EPOCH and ticket elements
	}
	if c.prkV != nil {
		return n + vouchRequestOver
	}
	return n + anonRequestOver
}
