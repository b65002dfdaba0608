package secsock

import (
	"bufio"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds the curve mechanism's per-socket state: the client's
// short-term sessions and the server's caches and policy. It does no I/O;
// secsock.go moves the bytes.

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

// clientSession is one short-term key pair C'. Its secret is used once, to
// agree on key, and then dropped: it is never stored.
type clientSession struct {
	eph     PublicKey
	key     *sharedKey
	id      *identity // nil for anonymous clients
	counter atomic.Uint64
	expires time.Time
}

// curveClient seals requests and opens replies for one REQ socket.
type curveClient struct {
	cfg      clientConfig
	vouchKey *sharedKey // long-term C with server S, computed once
	mu       sync.Mutex
	sess     *clientSession
	cur      atomic.Pointer[clientSession] // c.sess, for the lock-free fast path
}

func newCurveClient(cfg clientConfig) (*curveClient, error) {
	if cfg.server.IsZero() {
		return nil, ErrNoKey
	}
	c := &curveClient{cfg: cfg}
	if !cfg.longTerm.IsZero() {
		k, err := precompute(cfg.server, cfg.longTerm.bytes())
		if err != nil {
			return nil, err
		}
		c.vouchKey = k
	}
	return c, nil
}

// session returns the current short-term session, making a new one when
// the old one has sealed maxMessages requests or reached maxAge.
func (c *curveClient) session(now time.Time) (*clientSession, uint64, error) {
	// Fast path without the lock: contexts sealing concurrently only
	// share the atomic counter. Counters taken past maxMessages are
	// never used.
	if s := c.cur.Load(); s != nil && now.Before(s.expires) {
		if n := s.counter.Add(1); n <= c.cfg.maxMessages {
			return s, n, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sess; s != nil && now.Before(s.expires) {
		if n := s.counter.Add(1); n <= c.cfg.maxMessages {
			return s, n, nil
		}
	}
	eph, err := generateShortTermKey(c.cfg.rand)
	if err != nil {
		return nil, 0, err
	}
	k, err := precompute(c.cfg.server, eph.bytes())
	clear(eph.bytes()[:])
	if err != nil {
		return nil, 0, err
	}
	s := &clientSession{eph: eph.public, key: k, expires: now.Add(c.cfg.maxAge)}
	if c.vouchKey != nil {
		s.id = &identity{client: c.cfg.longTerm.public, vouch: makeVouch(c.vouchKey, s.eph)}
	}
	s.counter.Store(1)
	c.sess = s
	c.cur.Store(s)
	return s, 1, nil
}

// outstanding is what a client remembers about the request it sent last
// on a context, to open the reply.
type outstanding struct {
	sess    *clientSession
	counter uint64
	suite   byte
}

// sealRequest appends a sealed request (or ping) carrying body to dst.
func (c *curveClient) sealRequest(dst, body []byte, ping bool) ([]byte, outstanding, error) {
	now := c.cfg.now() // one clock read: the session's age and the timestamp
	s, n, err := c.session(now)
	if err != nil {
		return nil, outstanding{}, err
	}
	kind := kindRequest
	if ping {
		kind = kindPing
	}
	if s.id != nil {
		kind++ // the vouched variant of each kind
	}
	ts := uint64(now.UnixMilli())
	out := appendRequest(dst, kind, c.cfg.suite, s.eph, n, ts, s.key, s.id, body)
	return out, outstanding{sess: s, counter: n, suite: c.cfg.suite}, nil
}

// openReply opens the reply to o and appends its body to dst. Refusals
// and hints become their typed errors.
func (c *curveClient) openReply(dst []byte, o outstanding, wire []byte) ([]byte, error) {
	kind, body, err := openReply(dst, o.suite, o.sess.key, o.counter, wire)
	if err != nil {
		return nil, err
	}
	switch kind {
	case kindRefusal:
		switch body[len(body)-1] {
		case refuseNotAuthorized:
			return nil, ErrNotAuthorized
		case refuseStale:
			return nil, ErrStale
		case refuseReplayed:
			return nil, ErrReplayed
		}
		return nil, ErrUnknownKind
	case kindHint:
		if body[0] == hintUnsupported {
			return nil, ErrUnsupported
		}
		return nil, ErrServerKeyMismatch
	}
	return body, nil
}

// Authorizer decides whether a client's long-term public key may be
// served. It is called for every request from a vouched client, so it
// should be fast; it must be safe for concurrent use.
type Authorizer func(client PublicKey) bool

// serverPolicy is the REP side's client policy. It is replaced whole, so
// a reload never mixes two versions.
type serverPolicy struct {
	keys           []SecretKey // current first, then previous keys
	authorized     map[PublicKey]struct{}
	authorizer     Authorizer
	allowAnonymous bool
	window         time.Duration // how old a request may be
	skew           time.Duration // how far in the future (clock skew), at most window
}

// restricted reports whether a client policy is configured at all.
func (p *serverPolicy) restricted() bool { return p.authorized != nil || p.authorizer != nil }

func (p *serverPolicy) allows(id *identity) bool {
	if !p.restricted() {
		return true
	}
	if id == nil {
		return p.allowAnonymous
	}
	if _, ok := p.authorized[id.client]; ok {
		return true
	}
	return p.authorizer != nil && p.authorizer(id.client)
}

func (p *serverPolicy) hasKey(pub PublicKey) *SecretKey {
	for i := range p.keys {
		if p.keys[i].public == pub {
			return &p.keys[i]
		}
	}
	return nil
}

// curveServer opens requests and seals replies for one REP socket. Its
// caches live as long as the socket, across policy and key changes, so
// replay protection never resets.
type curveServer struct {
	policy  atomic.Pointer[serverPolicy]
	env     atomic.Pointer[serverEnv]
	started atomic.Bool          // a request was received: caches must now persist
	last    atomic.Pointer[peer] // peer of the last delivered request, looked up without the lock

	mu        sync.Mutex
	peers     *peerCache
	replies   *replyCache
	vouchKeys map[[2]PublicKey]*sharedKey // (client C, server S) -> Kv, so a client's new short-term keys cost one X25519, not two
}

// maxVouchKeys bounds vouchKeys; when full it is emptied (a cache miss
// only costs one X25519).
const maxVouchKeys = 1024

// lockedReader makes a buffered random source safe for concurrent use.
type lockedReader struct {
	mu sync.Mutex
	r  *bufio.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return io.ReadFull(l.r, p)
}

// serverEnv is the server's randomness and clock (injected by tests).
type serverEnv struct {
	rand io.Reader
	now  func() time.Time
}

func newCurveServer(rnd io.Reader, now func() time.Time, peers, replySlots, replyBytes int) *curveServer {
	s := new(curveServer)
	s.configure(rnd, now, peers, replySlots, replyBytes)
	return s
}

// configure sets the clock, randomness and cache sizes. Once a request has
// been received it does nothing: the caches hold replay state.
func (s *curveServer) configure(rnd io.Reader, now func() time.Time, peers, replySlots, replyBytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started.Load() {
		return
	}
	s.env.Store(&serverEnv{rand: &lockedReader{r: bufio.NewReaderSize(rnd, 4096)}, now: now})
	s.peers, s.replies = newPeerCache(peers), newReplyCache(replySlots, replyBytes)
}

// ticket is what a REP context keeps between delivering a request and
// sealing its reply.
type ticket struct {
	key    replyKey
	shared *sharedKey
	suite  byte
}

// inbound is the server's decision about one received message: deliver
// body to the application (with a ticket for the reply), answer with
// respond on the application's behalf, or drop it. reason is set for
// everything that was not delivered.
type inbound struct {
	body    []byte
	ticket  ticket
	respond []byte
	reason  Reason
	client  PublicKey // long-term key, when known
	deliver bool
	// pending: a duplicate of a request the application is handling;
	// ticket names that request. Its route should get the reply too.
	pending bool
}

// openRequest runs the server's checks on one received body (SPEC.md §6)
// and appends the delivered request body, if any, to dst.
func (s *curveServer) openRequest(dst, wire []byte) inbound {
	pol, env := s.policy.Load(), s.env.Load()
	r, err := parseRequest(wire)
	switch err {
	case nil:
	case ErrUnknownVersion:
		return inbound{reason: ReasonUnknownVersion, respond: appendHint(nil, hintUnsupported)}
	case ErrUnsupported:
		return inbound{reason: ReasonUnsupported, respond: appendHint(nil, hintUnsupported)}
	case ErrUnknownKind:
		return inbound{reason: ReasonUnknownKind}
	default:
		return inbound{reason: ReasonMalformed}
	}

	// Find the agreed key: cached, or by trying each server key. The
	// peer of the last delivered request is tried first without the
	// lock (one busy client is the common case); its fields read here
	// never change, and peers.add below puts it back in the cache (and
	// first in LRU order) under the lock.
	p := s.last.Load()
	if p == nil || p.eph != r.eph || pol.hasKey(p.server) == nil {
		s.mu.Lock()
		s.started.Store(true)
		p = s.peers.get(r.eph)
		if p != nil && pol.hasKey(p.server) == nil {
			// Its server key was retired: forget it (raising the low-water
			// mark, so its replay window stays in force) and try the others.
			s.peers.evict(p)
			p = nil
		}
		s.mu.Unlock()
	}
	var body []byte
	if p != nil {
		if body, err = openRequestBody(dst, &r, p.key); err != nil {
			return inbound{reason: ReasonForged, respond: appendHint(nil, hintCannotOpen)}
		}
	} else {
		for i := range pol.keys {
			k, err := precompute(r.eph, pol.keys[i].bytes())
			if err != nil {
				return inbound{reason: ReasonWeakKey}
			}
			if body, err = openRequestBody(dst, &r, k); err == nil {
				p = &peer{eph: r.eph, server: pol.keys[i].public, key: k}
				break
			}
		}
		if p == nil {
			return inbound{reason: ReasonForged, respond: appendHint(nil, hintCannotOpen)}
		}
	}
	refuse := func(reason Reason, code byte, client PublicKey) inbound {
		out, err := appendReply(nil, kindRefusal, r.suite, p.key, r.counter, env.rand, []byte{code})
		if err != nil {
			return inbound{reason: reason, client: client}
		}
		return inbound{reason: reason, respond: out, client: client}
	}

	// Who is the client?
	var id *identity
	if isVouched(r.kind) {
		got, err := openIdentity(&r, p.key)
		if err != nil {
			return inbound{reason: ReasonForged, respond: appendHint(nil, hintCannotOpen)}
		}
		id = &got
		s.mu.Lock()
		known := p.vouched && p.client == id.client
		s.mu.Unlock()
		if !known {
			vk, err := s.vouchKey(id.client, pol.hasKey(p.server))
			if err != nil {
				return inbound{reason: ReasonWeakKey, client: id.client}
			}
			if !checkVouch(vk, r.eph, id.vouch[:]) {
				return refuse(ReasonBadVouch, refuseNotAuthorized, id.client)
			}
			s.mu.Lock()
			p.client, p.vouched = id.client, true
			s.mu.Unlock()
		}
	}
	var client PublicKey
	if id != nil {
		client = id.client
	}
	if !pol.allows(id) {
		return refuse(ReasonNotAuthorized, refuseNotAuthorized, client)
	}

	// Fresh, and not seen before by this instance?
	now := uint64(env.now().UnixMilli())
	w, skew := uint64(pol.window.Milliseconds()), uint64(pol.skew.Milliseconds())
	// The lock covers the cache decisions only: refusals and ping
	// replies are sealed after it is released.
	s.mu.Lock()
	if r.timestamp+w < now || r.timestamp > now+skew || r.timestamp <= *s.peers.mark(r.eph) {
		s.mu.Unlock()
		return refuse(ReasonStale, refuseStale, client)
	}
	p = s.peers.add(p)
	key := replyKey{eph: r.eph, counter: r.counter}
	if !p.filter.Accept(r.counter) {
		state, cached := s.replies.lookup(key)
		switch state {
		case slotAnswered:
			out := slices.Clone(cached) // the slot's buffer is reused: copy it under the lock
			s.mu.Unlock()
			return inbound{reason: ReasonRetry, respond: out, client: client}
		case slotPending:
			s.mu.Unlock()
			return inbound{reason: ReasonRetry, client: client, pending: true, ticket: ticket{key: key, shared: p.key, suite: r.suite}}
		}
		s.mu.Unlock()
		return refuse(ReasonReplayed, refuseReplayed, client)
	}
	p.maxT = max(p.maxT, r.timestamp)
	s.replies.begin(key)
	s.mu.Unlock()
	s.last.Store(p)
	t := ticket{key: key, shared: p.key, suite: r.suite}
	if isPing(r.kind) {
		// Until finish, a retry of the ping finds its slot pending, as
		// for a request the application is handling.
		out, err := appendReply(nil, kindReply, t.suite, t.shared, t.key.counter, env.rand, nil)
		if err != nil {
			return inbound{reason: ReasonMalformed}
		}
		s.mu.Lock()
		s.replies.finish(t.key, out)
		s.mu.Unlock()
		return inbound{respond: out, client: client}
	}
	return inbound{deliver: true, body: body, ticket: t, client: client}
}

// vouchKey returns Kv = beforenm(client, server), cached.
func (s *curveServer) vouchKey(client PublicKey, server *SecretKey) (*sharedKey, error) {
	ck := [2]PublicKey{client, server.public}
	s.mu.Lock()
	k := s.vouchKeys[ck]
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	k, err := precompute(client, server.bytes())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.vouchKeys == nil || len(s.vouchKeys) >= maxVouchKeys {
		s.vouchKeys = make(map[[2]PublicKey]*sharedKey)
	}
	s.vouchKeys[ck] = k
	s.mu.Unlock()
	return k, nil
}

// sealReply appends the sealed reply for t to dst and remembers it for
// retries.
func (s *curveServer) sealReply(dst []byte, t ticket, body []byte) ([]byte, error) {
	start := len(dst)
	out, err := appendReply(dst, kindReply, t.suite, t.shared, t.key.counter, s.env.Load().rand, body)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.replies.finish(t.key, out[start:])
	s.mu.Unlock()
	return out, nil
}

// established reports whether wire's short-term key is cached.
func (s *curveServer) established(wire []byte) bool {
	r, err := parseRequest(wire)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers.byKey[r.eph] != nil
}
