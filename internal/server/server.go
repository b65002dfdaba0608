package server

import (
	"crypto/rand"
	"io"
	"slices"
	"sync"

	"github.com/secsock/secsock/internal/wire"
)

// Server is one server instance's state. Its methods are safe for
// concurrent use.
type Server struct {
	lim Limits

	mu        sync.Mutex
	peers     *peerCache
	replies   *replyCache
	budget    budget
	vouchKeys map[[2][wire.KeySize]byte]*wire.Secret // (C, S) -> prkV, set only after a vouch verified
}

// New returns a Server with the given limits.
func New(lim Limits) *Server {
	return &Server{
		lim:       lim,
		peers:     newPeerCache(max(lim.Peers, 1)),
		replies:   newReplyCache(lim.ReplySlots, lim.ReplyBytes),
		budget:    newBudget(lim.Budget),
		vouchKeys: make(map[[2][wire.KeySize]byte]*wire.Secret),
	}
}

// Ticket is what the caller keeps between a delivered request and its
// reply.
type Ticket struct {
	key      ID
	keys     *wire.Keys
	announce []byte      // REPLY_EXT elements for the reply, or nil (§14.2)
	prk0     wire.Secret // for refusals decided after the checks (Refusal)
	t        uint64      // the request's T
	// refusal is the request's NOT_AUTHORIZED refusal, for Refuse; made
	// only under a policy with RefuseAfterOpen (nil otherwise).
	refusal []byte
	server  [wire.KeySize]byte
}

// ID is a comparable name of one request: equal IDs, same request.
type ID struct {
	eph     [wire.KeySize]byte
	counter uint64
}

// ID returns t's request name.
func (t Ticket) ID() ID { return t.key }

// Counter returns the request's N.
func (t Ticket) Counter() uint64 { return t.key.counter }

// Eph returns the request's short-term key C'.
func (t Ticket) Eph() [wire.KeySize]byte { return t.key.eph }

// Timestamp returns the request's T.
func (t Ticket) Timestamp() uint64 { return t.t }

// Server returns the exact server public key that opened the request
// (its prk0's), for naming it in a shared store.
func (t Ticket) Server() [wire.KeySize]byte { return t.server }

// Decision is the outcome of one received body.
type Decision struct {
	Deliver bool   // give Body to the application; reply with SealReply(Ticket)
	Body    []byte // the opened body (appended to the caller's dst)
	Ticket  Ticket
	Respond []byte // send these bytes as the reply to this message (may be nil)
	Reason  Reason // why it was not delivered (ReasonNone for pings answered)
	Client  [wire.KeySize]byte
	Vouched bool // Client proved itself with a vouch
	Pending bool // a duplicate of a pending request (Ticket names it); its route should get the reply too
	Epoch   bool // sealed with an epoch key: forward-secret once the epoch ends (§14)
	Hybrid  bool // sealed in the hybrid mode: a ciphertext or a ticket mixed in (§16)
	// KeyFetch: the stateless answer to an unauthorized sender's key-fetch
	// ping (public keys only, §16.5): answered, but not an accepted request.
	KeyFetch bool
	// Consult (with Limits.Shared): a duplicate whose fate the shared
	// replay store knows (handled by another instance, or no longer in
	// this one's reply cache); Ticket names it. Ask the store (SPEC.md §17).
	Consult bool
	// Header is the request's header H (a slice of the received body),
	// for the store's claim and Refusal; set with Ticket.
	Header []byte
	// ServerKey is the index in the policy of the key that opened it.
	ServerKey int
}

func drop(r Reason) *Decision { return &Decision{Reason: r} }

func hint(r Reason, h byte) *Decision {
	return &Decision{Reason: r, Respond: wire.AppendHint(nil, h)}
}

// Established reports whether b's short-term key is a cached peer,
// without any scalar multiplication.
func (s *Server) Established(b []byte) bool {
	if len(b) < wire.HeaderSize || b[0] != wire.Version {
		return false
	}
	var eph [wire.KeySize]byte
	copy(eph[:], b[4:36])
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers.get(&eph) != nil
}

// request is one message on its way through the checks.
type request struct {
	wire.Request
	now uint64
	pol *Policy
	p   *peer // the cached peer, or a new one (not in the cache yet)
	new bool  // p is not in the cache yet
	// server is the index in pol of p's server key (a cached peer's index
	// at caching time may be stale: keys move when one is retired).
	server int
	keys   *wire.Keys
	// client is the long-term key that proved itself (vouched).
	client  [wire.KeySize]byte
	vouched bool
	// epoch is the accepted epoch key the request names (§14), and
	// epochCached whether the peer already agreed with it (r.keys set).
	epoch       *wire.EpochKey
	epochCached bool
	// prkE is the cached peer's epoch secret when it agreed with the epoch
	// but not with this hybrid element; ss is a decapsulated KEM secret.
	prkE *wire.Secret
	ss   [wire.KEMSharedSize]byte
	// q is a ciphertext request's resumption secret (§16.4), for its
	// ticket; digest the SHA-256 of its ciphertext element (cache key).
	q         [wire.KEMSharedSize]byte
	hasQ      bool
	digest    [32]byte
	hasDigest bool
	// bound is what the cached peer had verified, read with its keys.
	bound struct {
		vouched bool
		id      wire.Identity
	}
}

func (r *request) refuse(reason Reason, code byte) *Decision {
	d := &Decision{Reason: reason, ServerKey: r.server, Client: r.client, Vouched: r.vouched}
	if !r.p.oneWay { // a PULL instance makes no refusal (SPEC.md §15.1)
		d.Respond = wire.AppendRefusal(nil, &r.p.prk0, r.Header, code)
	}
	return d
}

// Open runs the checks of SPEC.md §6 on one received body at time now
// (ms since the Unix epoch) under policy pol, appending a delivered body
// to dst. rnd supplies the R of a ping's reply. A OneWay (PULL) server
// runs SPEC.md §15's checks instead and never answers.
func (s *Server) Open(dst, b []byte, now uint64, pol *Policy, rnd io.Reader) Decision {
	if s.lim.OneWay {
		return s.openPush(dst, b, now, pol)
	}
	parsed, err := wire.ParseRequest(b)
	switch err {
	case nil:
	case wire.ErrVersion:
		if !wire.IsSecsock(b) {
			return *drop(ReasonNotSecsock) // a plain SP body: a hint would read as a successful reply
		}
		return *hint(ReasonUnknownVersion, wire.HintUnsupportedVersion)
	case wire.ErrKind:
		return *drop(ReasonUnknownKind)
	default:
		return *drop(ReasonMalformed)
	}
	if parsed.HybridMalformed() && pol.Hybrid != HybridOff {
		return *drop(ReasonMalformed)
	}
	r := &request{Request: parsed, now: now, pol: pol}
	defer r.wipe()
	if d := s.lookup(r); d != nil {
		return *d
	}
	if !r.supported() {
		return *s.refuseWithPrk0(r, ReasonUnsupported, wire.RefuseUnsupportedFeature)
	}
	if r.Epoch != nil && r.epoch == nil {
		d := s.refuseWithPrk0(r, ReasonUnknownEpoch, wire.RefuseUnknownEpoch)
		if s.lim.Shared && d.Reason == ReasonUnknownEpoch {
			// The shared store must learn of the refusal before the
			// client does, or a copy could run elsewhere besides the
			// client's fallback resend (SPEC.md §17.2).
			d.Ticket = Ticket{key: ID{eph: r.Eph, counter: r.Counter}, prk0: r.p.prk0, t: r.Timestamp, server: r.p.serverPK}
			d.Header = r.Header
		}
		return *d
	}
	if r.hybridRequired() {
		return *s.refuseWithPrk0(r, ReasonHybridRequired, wire.RefuseHybridRequired)
	}
	start := len(dst)
	body, d := s.requestKey(dst, r)
	if d != nil {
		return *d
	}
	var dec Decision
	if wire.IsVouched(r.Kind) {
		if d := s.identify(r); d != nil {
			return *d
		}
		dec.Client, dec.Vouched = r.client, true
	} else if pol.Restricted() && !pol.AllowAnonymous {
		if r.keyFetch() {
			return s.answerKeyFetch(r, rnd)
		}
		return *r.refuse(ReasonNotAuthorized, wire.RefuseNotAuthorized)
	}
	dec.ServerKey = r.server
	if pol.MaxBody > 0 && len(body)-start > pol.MaxBody {
		// Only after the body box opened: the refusal verifies for the
		// header's owner, so it must be about the body that owner sealed.
		return *r.refuse(ReasonOversize, wire.RefuseTooLarge)
	}
	return s.accept(r, body, dec, rnd)
}

// lookup finds the cached peer of r, forgetting one whose server key was
// retired, and charges the budget for a new one (SPEC.md §6 step 3).
func (s *Server) lookup(r *request) *Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers.get(&r.Eph)
	if p != nil {
		if i := r.pol.keyIndex(&p.serverPK); i < 0 {
			s.peers.evict(p, r.now, s.keep(r.pol))
			p = nil
		} else {
			r.server = i
		}
	}
	if r.Epoch != nil {
		r.epoch = r.pol.Epochs.find(r.Epoch[3:])
	}
	if p != nil {
		r.p = p
		switch {
		case !r.supported():
		case r.Epoch == nil:
			r.keys = p.keysFor(r.Suite) // under the lock: p.keys is shared
		case r.epoch != nil && r.hybridElement() != nil:
			var q *[wire.KEMSharedSize]byte
			if r.keys, q = p.hybridKeys(r); r.keys != nil && r.KEM != nil {
				r.q, r.hasQ = *q, true // a sibling of a decapsulated ciphertext: its ticket too
			}
			if r.keys == nil {
				cost := r.hybridCost()
				if r.prkE, r.epochCached = p.epochSecret(r.Epoch[3:]); !r.epochCached {
					cost++ // dhE
				}
				if !s.budget.take(cost, int64(r.now)) {
					return hint(ReasonBusy, wire.HintBusy)
				}
			}
		case r.epoch != nil:
			r.keys = p.epochKeys(r.Epoch[3:], r.Suite)
			r.epochCached = r.keys != nil
			// dhE; a PULL instance caches it on compute instead (at most
			// one per cached peer and epoch, SPEC.md §15.2 step 4).
			if !r.epochCached && !p.oneWay && !s.budget.take(1, int64(r.now)) {
				return hint(ReasonBusy, wire.HintBusy)
			}
		}
		r.bound.vouched, r.bound.id = p.vouched, wire.Identity{Client: p.client, Vouch: p.vouch, Expiry: p.expiry}
		return nil
	}
	cost := len(r.pol.Keys)
	switch {
	case !r.supported():
		cost = 1
	case r.epoch != nil:
		cost += 1 + r.hybridCost() // dhE and a decapsulation, once whatever the server key
	}
	if !s.budget.take(cost, int64(r.now)) {
		return hint(ReasonBusy, wire.HintBusy)
	}
	return nil
}

// keep is how tombstones are kept under pol: with a budget, enough that
// none can spill before it expires (SPEC.md §6.2).
func (s *Server) keep(pol *Policy) keep {
	n := s.lim.Tombstones
	if b := s.lim.Budget; b > 0 {
		n = int(uint64(b)*(pol.Window+pol.Skew)/1000) + b
	}
	return keep{window: pol.Window, capacity: n}
}

// refuseWithPrk0 refuses at SPEC.md §6 step 4 (an unknown suite or
// element, an unknown epoch) with the cached peer's prk0, or else the
// current server key's.
func (s *Server) refuseWithPrk0(r *request, reason Reason, code byte) *Decision {
	if r.p == nil {
		k := &r.pol.Keys[0]
		dh, err := k.agree(&r.Eph)
		if err != nil {
			return drop(ReasonWeakKey)
		}
		r.p = &peer{prk0: wire.RequestSecret(&dh, &r.Eph, &k.Public), serverPK: k.Public}
		clear(dh[:])
	}
	return r.refuse(reason, code)
}

// requestKey finds r's keys and opens its body (SPEC.md §6 step 5).
func (s *Server) requestKey(dst []byte, r *request) ([]byte, *Decision) {
	if r.p != nil && r.keys != nil { // a cached peer: no scalar multiplication
		body, err := wire.OpenBody(dst, &r.Request, r.keys)
		if err != nil {
			return nil, hint(ReasonForged, wire.HintCannotOpen)
		}
		return body, nil
	}
	return s.agree(dst, r)
}

// agree computes what a request from an unknown C', or a cached peer's
// first request with an epoch key or hybrid element, needs: dh1 per
// server key tried, dhE and a decapsulation once (SPEC.md §6 step 5,
// §14.3, §16.3).
func (s *Server) agree(dst []byte, r *request) ([]byte, *Decision) {
	var dhE [wire.KeySize]byte
	defer clear(dhE[:])
	if r.epoch != nil && r.prkE == nil {
		var err error
		if dhE, err = r.epoch.Agree(&r.Eph); err != nil {
			return nil, drop(ReasonWeakKey)
		}
	}
	if d := r.decapsulate(); d != nil {
		return nil, d
	}
	if r.p != nil { // a cached peer's first request in this epoch or with this element
		return s.agreeCached(dst, r, &dhE)
	}
	ticketOpened := false
	var refusal *peer // the current key's prk0, for an UNKNOWN_TICKET refusal
	for i := range r.pol.Keys {
		k := &r.pol.Keys[i]
		dh, err := k.agree(&r.Eph)
		if err != nil {
			return nil, drop(ReasonWeakKey)
		}
		p := &peer{eph: r.Eph, serverPK: k.Public, prk0: wire.RequestSecret(&dh, &r.Eph, &k.Public), oneWay: s.lim.OneWay}
		clear(dh[:])
		if refusal == nil {
			refusal = p
		}
		prkE := p.prk0
		if r.epoch != nil {
			prkE = wire.EpochSecret(&p.prk0, &dhE, &r.epoch.Public, r.Epoch)
		}
		prk, ok := r.hybridSecret(&prkE, &k.Public)
		if !ok {
			clear(prkE[:])
			continue // a ticket made for another server key, or for none
		}
		ticketOpened = true
		keys := p.derive(&prk, r.Suite)
		body, err := wire.OpenBody(dst, &r.Request, keys)
		if err == nil {
			switch {
			case r.hybridElement() != nil:
				p.addEpoch(r.epoch.ID, &prkE, r.Suite, nil)
				p.addHybrid(r, &prk, keys)
			case r.epoch != nil:
				p.addEpoch(r.epoch.ID, &prk, r.Suite, keys)
			default:
				p.keys[r.Suite] = keys
			}
			r.p, r.new, r.keys, r.server = p, true, keys, i
		}
		clear(prk[:])
		clear(prkE[:])
		if err == nil {
			return body, nil
		}
	}
	if !ticketOpened && refusal != nil {
		r.p = refusal
		return nil, r.refuse(ReasonUnknownTicket, wire.RefuseUnknownTicket)
	}
	return nil, hint(ReasonForged, wire.HintCannotOpen)
}

// agreeCached derives the keys of a cached peer's request under an epoch
// or hybrid element it has not used before.
func (s *Server) agreeCached(dst []byte, r *request, dhE *[wire.KeySize]byte) ([]byte, *Decision) {
	var prkE wire.Secret
	if r.prkE != nil {
		prkE = *r.prkE
	} else {
		prkE = wire.EpochSecret(&r.p.prk0, dhE, &r.epoch.Public, r.Epoch)
	}
	defer clear(prkE[:])
	prk, ok := r.hybridSecret(&prkE, &r.p.serverPK)
	if !ok {
		return nil, r.refuse(ReasonUnknownTicket, wire.RefuseUnknownTicket)
	}
	defer clear(prk[:])
	r.keys = r.p.derive(&prk, r.Suite)
	if r.p.oneWay && r.hybridElement() == nil {
		// PULL: kept whether or not the body opens, so that a cached
		// peer's agreement with an epoch is made once (SPEC.md §15.2).
		s.mu.Lock()
		r.p.addEpoch(r.epoch.ID, &prk, r.Suite, r.keys)
		s.mu.Unlock()
	}
	body, err := wire.OpenBody(dst, &r.Request, r.keys)
	if err != nil {
		return nil, hint(ReasonForged, wire.HintCannotOpen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if elem := r.hybridElement(); elem != nil {
		r.p.addEpoch(r.epoch.ID, &prkE, r.Suite, nil)
		r.p.addHybrid(r, &prk, r.keys)
	} else {
		r.p.addEpoch(r.epoch.ID, &prk, r.Suite, r.keys)
	}
	return body, nil
}

// supported reports whether this server opens r's suite and elements
// under its policy (SPEC.md §6 step 4, §16.5).
func (r *request) supported() bool { return r.Supported() && r.hybridServed() }

// wipe clears r's secrets once it is decided.
func (r *request) wipe() {
	clear(r.ss[:])
	clear(r.q[:])
	if r.prkE != nil {
		clear(r.prkE[:])
	}
}

// keysFor returns p's keys for suite, deriving them on first use. The
// server's lock is held.
func (p *peer) keysFor(suite byte) *wire.Keys {
	if p.keys[suite] == nil {
		p.keys[suite] = p.derive(&p.prk0, suite)
	}
	return p.keys[suite]
}

// identify runs step 6 for a vouched request; on success r.p.client is
// the verified key.
func (s *Server) identify(r *request) *Decision {
	id, err := wire.OpenIdentity(&r.Request, r.keys)
	if err != nil {
		return hint(ReasonForged, wire.HintCannotOpen)
	}
	vouched, same := r.bound.vouched, r.bound.id == id
	switch {
	case vouched && !same:
		return drop(ReasonForged) // one long-term key (and vouch) per short-term key
	case !vouched:
		if d := s.verifyVouch(r, id); d != nil {
			return d
		}
	}
	r.client, r.vouched = id.Client, true
	if r.Timestamp > id.Expiry || id.Expiry-r.Timestamp > wire.MaxVouchLife {
		return r.refuse(ReasonStale, wire.RefuseStale)
	}
	if r.pol.Restricted() && !r.pol.allowed(&id.Client) {
		return r.refuse(ReasonNotAuthorized, wire.RefuseNotAuthorized)
	}
	return nil
}

// verifyVouch runs step 6c: the valid-key check and the vouch, each
// charged to the budget unless (C, S) verified a vouch before.
func (s *Server) verifyVouch(r *request, id wire.Identity) *Decision {
	k := &r.pol.Keys[r.server]
	ck := [2][wire.KeySize]byte{id.Client, k.Public}
	s.mu.Lock()
	prkV := s.vouchKeys[ck]
	ok := prkV != nil || s.budget.take(2, int64(r.now))
	s.mu.Unlock()
	if !ok {
		return hint(ReasonBusy, wire.HintBusy)
	}
	fresh := prkV == nil
	if fresh {
		if wire.CheckLongTermKey(&id.Client) != nil {
			return drop(ReasonWeakKey)
		}
		dh, err := k.agree(&id.Client)
		if err != nil {
			return drop(ReasonWeakKey)
		}
		v := wire.VouchSecret(&dh, &id.Client, &k.Public)
		clear(dh[:])
		prkV = &v
	}
	check := wire.CheckVouch
	if r.p.oneWay {
		check = wire.CheckPushVouch // a REQ vouch never speaks for a pusher (SPEC.md §15.1)
	}
	if !check(prkV, &r.Eph, &id.Client, &k.Public, id.Expiry, id.Vouch[:]) {
		return drop(ReasonBadVouch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fresh {
		if len(s.vouchKeys) >= max(s.lim.VouchKeys, 1) {
			clear(s.vouchKeys) // a miss costs one X25519; verified keys only
		}
		s.vouchKeys[ck] = prkV
	}
	if !r.p.vouched {
		r.p.client, r.p.vouch, r.p.expiry, r.p.vouched = id.Client, id.Vouch, id.Expiry, true
	}
	return nil
}

func (p *Policy) allowed(c *[wire.KeySize]byte) bool {
	if _, ok := p.Authorized[*c]; ok {
		return true
	}
	return p.Authorizer != nil && p.Authorizer(*c)
}

// accept runs steps 8 to 10.
func (s *Server) accept(r *request, body []byte, dec Decision, rnd io.Reader) Decision {
	t, now, pol := r.Timestamp, r.now, r.pol
	if t+pol.Window < now || t > now+pol.Skew {
		return *r.refuse(ReasonStale, wire.RefuseStale)
	}
	key := ID{eph: r.Eph, counter: r.Counter}
	tk := Ticket{key: key, keys: r.keys, prk0: r.p.prk0, t: t, server: r.p.serverPK}
	dec.Header = r.Header
	var err error
	if tk.announce, err = r.replyElements(rnd); err != nil {
		return *drop(ReasonMalformed)
	}
	dec.Epoch, dec.Hybrid = r.epoch != nil, r.KEM != nil || r.Ticket != nil
	// A ping's reply is sealed before the lock, so that its reply-cache
	// slot goes from empty to answered at once: a copy of the ping never
	// sees it pending (nothing would ever answer that copy's route).
	var pong []byte
	if wire.IsPing(r.Kind) {
		if pong, err = s.seal(nil, tk, nil, rnd); err != nil {
			return *drop(ReasonMalformed)
		}
	}
	s.mu.Lock()
	if sl := s.replies.slot(key); sl != nil {
		d, code := s.duplicate(sl, tk, dec)
		s.mu.Unlock()
		if code != 0 {
			return *r.refuse(d.Reason, code)
		}
		if d.Deliver {
			d.Body = body
		}
		return d
	}
	if s.peers.inDoubt(&r.Eph, t, r.Counter) {
		s.mu.Unlock()
		return *r.refuse(ReasonInDoubt, wire.RefuseInDoubt)
	}
	p := r.p
	if r.new || s.peers.get(&r.Eph) != p {
		// New, or evicted while this message was opened (the lock was
		// released): accept it on a cached peer, or its N would reach
		// no tombstone and a replay would be accepted again.
		p = s.peers.add(p, now, s.keep(pol)) // or the copy that won a race
	}
	if !p.filter.Accept(r.Counter) {
		s.mu.Unlock()
		if p.filter.TooOld(r.Counter) {
			return *r.refuse(ReasonInDoubt, wire.RefuseInDoubt)
		}
		if s.lim.Shared { // handled here or elsewhere: the store knows which
			dec.Reason, dec.Ticket, dec.Consult = ReasonRetry, tk, true
			return dec
		}
		return *r.refuse(ReasonReplayed, wire.RefuseReplayed)
	}
	p.maxT, p.maxN = max(p.maxT, t), max(p.maxN, r.Counter)
	s.peers.touch(p)
	s.replies.begin(key)
	if pong != nil {
		s.replies.finish(key, pong)
	}
	s.mu.Unlock()
	dec.Ticket = tk
	if pong != nil {
		dec.Respond = pong
		return dec
	}
	if pol.RefuseAfterOpen {
		dec.Ticket.refusal = r.refuse(ReasonNotAuthorized, wire.RefuseNotAuthorized).Respond
	}
	dec.Deliver, dec.Body = true, body
	return dec
}

// duplicate decides about a (C', N) found in the reply cache (SPEC.md
// §6.3); the lock is held. A non-zero code asks for that refusal.
func (s *Server) duplicate(sl *replySlot, tk Ticket, dec Decision) (Decision, byte) {
	dec.Reason, dec.Ticket = ReasonRetry, tk
	switch {
	case sl.state == slotPending:
		if sl.routes < s.lim.MaxRoutes {
			sl.routes++
			dec.Pending = true
		}
	case sl.state == slotAnswered && (sl.resends < s.lim.MaxResends || sl.refused):
		sl.resends++
		dec.Respond = slices.Clone(sl.buf) // the slot's buffer is reused: copy under the lock
	case sl.state == slotElsewhere || (sl.state == slotGone && s.lim.Shared):
		dec.Consult = true
	case sl.state == slotInDoubt:
		dec.Reason = ReasonInDoubt
		return dec, wire.RefuseInDoubt
	case sl.state == slotReplayedElsewhere:
		dec.Reason = ReasonReplayed
		return dec, wire.RefuseReplayed
	case sl.state == slotUnknownEpoch:
		dec.Reason = ReasonUnknownEpoch
		return dec, wire.RefuseUnknownEpoch
	case sl.state == slotUnclaimed: // never delivered: claim it again
		sl.state = slotPending
		dec.Reason, dec.Deliver = ReasonNone, true
	default:
		dec.Reason = ReasonReplayed
		return dec, wire.RefuseReplayed
	}
	return dec, 0
}

var replyRand = sync.Pool{New: func() any { return new([wire.ReplyRandSize]byte) }}

// SealReply seals the reply to t, appends it to dst and keeps it for
// retries. rnd supplies R (crypto/rand when nil).
func (s *Server) SealReply(dst []byte, t Ticket, body []byte, rnd io.Reader) ([]byte, error) {
	if s.lim.OneWay {
		return nil, errOneWay
	}
	start := len(dst)
	out, err := s.seal(dst, t, body, rnd)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.replies.finish(t.key, out[start:])
	s.mu.Unlock()
	return out, nil
}

// Refuse answers the delivered request t with its authenticated
// NOT_AUTHORIZED refusal instead of a reply (the application's
// per-request authorization said no: SPEC.md §6 step 11), keeps the
// refusal for every copy while its slot lives (without the resend bound),
// and appends it to dst. It reports false
// when t was delivered under a policy without RefuseAfterOpen.
func (s *Server) Refuse(dst []byte, t Ticket) ([]byte, bool) {
	if t.refusal == nil {
		return dst, false
	}
	s.mu.Lock()
	s.replies.finish(t.key, t.refusal)
	if sl := s.replies.slot(t.key); sl != nil && sl.state == slotAnswered {
		sl.refused = true
	}
	s.mu.Unlock()
	return append(dst, t.refusal...), true
}

// seal seals the reply to t and appends it to dst.
func (s *Server) seal(dst []byte, t Ticket, body []byte, rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	// R comes from a pool: a local array would escape through the
	// io.Reader and cost an allocation per reply.
	r := replyRand.Get().(*[wire.ReplyRandSize]byte)
	defer replyRand.Put(r)
	if _, err := io.ReadFull(rnd, r[:]); err != nil {
		return nil, err
	}
	if t.announce != nil {
		return wire.AppendReplyExt(dst, t.keys, t.key.counter, r, t.announce, body), nil
	}
	return wire.AppendReply(dst, t.keys, t.key.counter, r, body), nil
}

// Settlement is what the shared replay store decided about a delivered
// request that the caller did not give the application (SPEC.md §17).
type Settlement uint8

// Settlements.
const (
	// Elsewhere: another instance handled it; copies consult the store.
	Elsewhere Settlement = iota + 1
	// InDoubt: it may have run elsewhere and cannot run again; copies are
	// refused IN_DOUBT.
	InDoubt
	// Unclaimed: the store could not be asked; a copy may claim it again.
	Unclaimed
	// ReplayedElsewhere: handled elsewhere and its resends are spent;
	// copies are refused REPLAYED.
	ReplayedElsewhere
	// RefusedEpoch: refused UNKNOWN_EPOCH by the fleet (§17.2); copies are
	// refused UNKNOWN_EPOCH.
	RefusedEpoch
)

// Settle records the store's decision about t, delivered by Open but not
// given to the application, or (from Elsewhere) its final fate, after
// which copies are answered without the store.
func (s *Server) Settle(t Ticket, how Settlement) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.replies.slot(t.key)
	if sl == nil || (sl.state != slotPending && sl.state != slotElsewhere) {
		return
	}
	final := how == InDoubt || how == ReplayedElsewhere || how == RefusedEpoch
	if sl.state == slotElsewhere && !final {
		return // handled elsewhere: never claimable here again
	}
	switch how {
	case Elsewhere:
		sl.state = slotElsewhere
	case InDoubt:
		sl.state = slotInDoubt
	case Unclaimed:
		sl.state = slotUnclaimed
	case ReplayedElsewhere:
		sl.state = slotReplayedElsewhere
	case RefusedEpoch:
		sl.state = slotUnknownEpoch
	}
}

// Refusal returns the refusal of the request t with header h for reason
// (a wire.Refuse* code), decided after the checks (SPEC.md §5.3).
func (s *Server) Refusal(t Ticket, h []byte, code byte) []byte {
	return wire.AppendRefusal(nil, &t.prk0, h, code)
}

// Size reports the number of cached peers and tombstones, and the bytes
// of kept replies, for statistics.
func (s *Server) Size() (peers, tombstones, replyBytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers.len(), s.peers.tombs.len(), s.replies.bytes
}

// RetainEpochs wipes every peer's agreements with epochs whose id keep
// refuses (an epoch that left the accepted set, SPEC.md §14.1).
func (s *Server) RetainEpochs(keep func(id [wire.EpochIDSize]byte) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.peers.byKey {
		p.retainEpochs(keep)
	}
}
