package secsock

// The REP side of the curve mechanism: the adapter between the socket and
// the pure state machine of internal/server (SPEC.md §6).

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"

	servercore "github.com/secsock/secsock/internal/server"
	"github.com/secsock/secsock/internal/wire"
)

// Authorizer decides whether a client's long-term public key may be
// served. It is called with keys that are valid (SPEC.md §4.1) but whose
// vouch may not have been checked yet: its "no" is final, its "yes" is
// followed by the vouch check. It should be fast and must be safe for
// concurrent use.
type Authorizer func(client PublicKey) bool

// curveServer opens requests and seals replies for one REP socket. Its
// state lives as long as the socket, across policy and key changes, so
// replay protection never resets.
type curveServer struct {
	policy  atomic.Pointer[policyView]
	env     atomic.Pointer[serverEnv]
	state   atomic.Pointer[servercore.Server]
	started atomic.Bool // a request was received: the state must now persist
	mu      sync.Mutex  // serializes configure and epoch changes
	lim     atomic.Pointer[servercore.Limits]
	counts  serverCounts
	events  atomic.Pointer[eventConfig]

	shared atomic.Pointer[sharedReplay] // nil: replay state per instance (SPEC.md §17)
	seed   atomic.Pointer[EpochSeed]    // nil: no epoch keys (SPEC.md §14)
	until  atomic.Int64                 // ms until which the policy's epochs hold
	logger *slog.Logger
}

// policyView is the state machine's policy with the counters of its
// server keys, in the policy's key order, replaced together.
type policyView struct {
	p    *servercore.Policy
	keys []*keyCount
}

// serverCounts are the REP side's counters by server key and by
// protection level (ServerStats).
type serverCounts struct {
	mu        sync.Mutex
	keys      []*keyCount // every server key ever configured, in order
	anonymous atomic.Uint64
	vouched   atomic.Uint64
	// By protection (SPEC.md §14.4): sealed with an epoch key, or with
	// the long-term key only.
	forwardSecret, longTermOnly atomic.Uint64
	hybrid                      atomic.Uint64 // sealed in the hybrid mode (SPEC.md §16)
	plain                       atomic.Uint64 // plain requests delivered (permissive mode)
}

var hybridModes = map[string]servercore.HybridMode{HybridOff: servercore.HybridOff, HybridOn: servercore.HybridOn, HybridRequire: servercore.HybridRequire}

type keyCount struct {
	key      PublicKey
	accepted atomic.Uint64
}

// key returns the counter of k, making it on first use.
func (c *serverCounts) key(k PublicKey) *keyCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, kc := range c.keys {
		if kc.key == k {
			return kc
		}
	}
	kc := &keyCount{key: k}
	c.keys = append(c.keys, kc)
	return kc
}

// eventConfig is what openRequest reports to the event hook.
type eventConfig struct {
	hook     func(Event)
	accepted bool // EventAccepted for every request delivered and ping answered
	sessions bool // EventSession for the first accepted request of each short-term key
}

// serverEnv is the server's randomness and clock (injected by tests).
type serverEnv struct {
	rand io.Reader
	now  func() time.Time
}

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

// configure sets the clock, randomness and limits. Limits apply only
// until the first request: after it the state holds replay protection.
func (s *curveServer) configure(rnd io.Reader, now func() time.Time, lim servercore.Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.env.Store(&serverEnv{rand: &lockedReader{r: bufio.NewReaderSize(rnd, 4096)}, now: now})
	if !s.started.Load() {
		s.state.Store(servercore.New(lim))
		s.lim.Store(&lim)
	}
}

// setStore sets the shared replay store; like the limits, only until the
// first request.
func (s *curveServer) setStore(c *config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started.Load() {
		s.shared.Store(newSharedReplay(c))
	}
}

// setEvents sets what openRequest reports to hook (nil: nothing).
func (s *curveServer) setEvents(hook func(Event), accepted, sessions bool) {
	if hook == nil || (!accepted && !sessions) {
		s.events.Store(nil)
		return
	}
	s.events.Store(&eventConfig{hook: hook, accepted: accepted, sessions: sessions})
}

// setPolicy builds the state machine's policy from the options.
func (s *curveServer) setPolicy(c *config) {
	keys := make([]servercore.KeyPair, 0, 1+len(c.previous))
	for _, k := range append([]SecretKey{c.secret}, c.previous...) {
		priv, err := wire.NewPrivateKey(secretOf(&k))
		if err != nil {
			priv = nil // agree falls back to X25519, which refuses the key the same way
		}
		keys = append(keys, servercore.KeyPair{Secret: *secretOf(&k), Public: k.public, Private: priv})
	}
	p := &servercore.Policy{
		Keys:            keys,
		AllowAnonymous:  c.allowAnonymous,
		Window:          uint64(c.freshness.Milliseconds()),
		Skew:            uint64(min(c.maxSkew, c.freshness).Milliseconds()),
		Hybrid:          hybridModes[c.hybrid],
		RefuseAfterOpen: c.requestAuth != nil,
		MaxBody:         max(c.maxBody, 0),
	}
	if c.authorized != nil {
		p.Authorized = make(map[[wire.KeySize]byte]struct{}, len(c.authorized))
		for k := range c.authorized {
			p.Authorized[k] = struct{}{}
		}
	}
	if a := c.authorizer; a != nil {
		p.Authorizer = func(k [wire.KeySize]byte) bool { return a(PublicKey(k)) }
	}
	v := &policyView{p: p, keys: make([]*keyCount, len(keys))}
	for i := range keys {
		v.keys[i] = s.counts.key(PublicKey(keys[i].Public))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seed.Store(c.epochSeed)
	s.logger = c.logger
	s.policy.Store(v)
	s.until.Store(0) // recompute the epochs on the next request
}

// epochView returns the policy for time now (ms), moving to the epoch
// keys of now when the accepted set changes (SPEC.md §14.1): the seed is
// ratcheted (and its file rewritten), and every peer's agreements with
// epochs that left the set are forgotten.
func (s *curveServer) epochView(now int64) *policyView {
	seed := s.seed.Load()
	if seed == nil || now < s.until.Load() {
		return s.policy.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.policy.Load()
	if seed = s.seed.Load(); seed == nil || now < s.until.Load() {
		return old
	}
	p := *old.p
	v := &policyView{p: &p, keys: old.keys}
	seed.mu.Lock()
	n, err := seed.advance(now)
	if err == nil && n > 0 {
		err = seed.save()
	}
	seed.mu.Unlock()
	if err != nil {
		s.log(slog.LevelError, "secsock: epoch seed not usable; serving long-term keys only", "error", err)
		p.Epochs = nil
		s.policy.Store(v)
		s.until.Store(now + 1000) // try again in a second
		return v
	}
	if n > 0 {
		s.log(slog.LevelInfo, "secsock: epoch seed ratcheted", "steps", n, "epoch", seed.Index())
	}
	keys, ann := seed.keysAt(now, int64(p.Skew))
	p.Epochs = &servercore.Epochs{Accepted: keys, Announce: ann.Append(nil)}
	if p.Hybrid != servercore.HybridOff {
		attachHybrid(p.Epochs, seed.hybridKeysAt(now), ann.Index)
	}
	if ann.Index != seed.Epoch(time.UnixMilli(now)) || ann.Current == ([wire.KeySize]byte{}) {
		p.Epochs.Announce = nil // the seed is ahead of this clock: accept what it derives, announce nothing
	}
	s.policy.Store(v)
	s.until.Store(seed.nextChange(now, int64(p.Skew)))
	keep := map[[wire.EpochIDSize]byte]bool{}
	for _, k := range keys {
		keep[k.ID] = true
	}
	// The old policy and the forgotten agreements become unreachable;
	// requests in flight under them keep their own references until they
	// finish.
	s.state.Load().RetainEpochs(func(id [wire.EpochIDSize]byte) bool { return keep[id] })
	return v
}

func (s *curveServer) log(level slog.Level, msg string, args ...any) {
	if s.logger != nil {
		s.logger.Log(context.Background(), level, msg, args...)
	}
}

// ticket is what a REP context keeps between delivering a request and
// sealing its reply. key is comparable: equal keys name the same request.
type ticket struct {
	key servercore.ID
	t   servercore.Ticket
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
	client  PublicKey // the long-term key, once its vouch verified
	// server is the server key the request was sealed to, when the state
	// machine knows it (accepted, refused after opening, retries); zero
	// for hints and drops. For Event.ServerKey.
	server  PublicKey
	deliver bool
	peer    Peer // who sent a delivered request
	// account counts and reports the request as accepted, when that waits
	// for a PULL worker's store claim (nil otherwise: done already).
	account func()
	// pending: a duplicate of a request the application is handling;
	// ticket names that request. Its route should get the reply too.
	pending bool
	// store: with a shared replay store, the request to claim (deliver)
	// or to look up (a duplicate whose fate the store knows).
	store *storeCall
}

// openRequest runs the server's checks on one received body (SPEC.md §6)
// and appends the delivered request body, if any, to dst.
func (s *curveServer) openRequest(dst, b []byte) inbound { return s.openRequestFrom(dst, b, nil) }

// openRequestFrom is openRequest for a message received from pipe, which
// accepted and session events name (nil: unknown).
func (s *curveServer) openRequestFrom(dst, b []byte, pipe mangos.Pipe) inbound {
	s.started.Store(true)
	env := s.env.Load()
	now := env.now()
	state, view, ev := s.state.Load(), s.epochView(now.UnixMilli()), s.events.Load()
	newSession := ev != nil && ev.sessions && !state.Established(b)
	d := state.Open(dst, b, uint64(now.UnixMilli()), view.p, env.rand)
	// account counts and reports an accepted request (delivered, or a
	// ping answered).
	var account func()
	if d.Deliver || (d.Reason == servercore.ReasonNone && d.Respond != nil && !d.KeyFetch) {
		account = func() { s.accepted(&d, view, ev, now, pipe, newSession) }
	}
	in := inbound{
		body: d.Body, respond: d.Respond, reason: Reason(d.Reason),
		deliver: d.Deliver, pending: d.Pending,
		ticket: ticket{key: d.Ticket.ID(), t: d.Ticket},
	}
	if d.Vouched {
		in.client = PublicKey(d.Client)
	}
	if d.Deliver {
		in.peer = Peer{Key: in.client, ForwardSecret: d.Epoch, Hybrid: d.Hybrid, Previous: d.ServerKey > 0}
		if d.ServerKey >= 0 && d.ServerKey < len(view.keys) {
			in.peer.ServerKey = view.keys[d.ServerKey].key
		}
	}
	if sr := s.shared.Load(); sr != nil && (d.Deliver || d.Consult || sr.recordsRefusal(&d, uint64(now.UnixMilli()), view.p)) {
		// Named by the exact key that opened it, never by an index.
		in.store = sr.request(&d, PublicKey(d.Ticket.Server()), uint64(now.UnixMilli()), view.p)
	}
	switch {
	case account == nil:
	case d.Deliver && s.oneWay():
		in.account = account // a PULL worker counts it once it delivers it (after the authorizer and the store)
	default:
		account()
	}
	return s.finish(in, &d, view)
}

// oneWay reports whether s is a PULL worker's.
func (s *curveServer) oneWay() bool {
	l := s.lim.Load()
	return l != nil && l.OneWay
}

// accepted counts an accepted request (delivered, or a ping answered) and
// reports it to the event hook.
func (s *curveServer) accepted(d *servercore.Decision, view *policyView, ev *eventConfig, now time.Time, pipe mangos.Pipe, newSession bool) {
	var server PublicKey
	if d.ServerKey >= 0 && d.ServerKey < len(view.keys) {
		kc := view.keys[d.ServerKey]
		kc.accepted.Add(1)
		server = kc.key
	}
	if d.Vouched {
		s.counts.vouched.Add(1)
	} else {
		s.counts.anonymous.Add(1)
	}
	if d.Hybrid {
		s.counts.hybrid.Add(1)
	}
	if d.Epoch {
		s.counts.forwardSecret.Add(1)
	} else {
		s.counts.longTermOnly.Add(1)
	}
	if ev != nil {
		e := Event{Time: now, Pipe: pipe, ServerKey: server, Ping: !d.Deliver}
		if d.Vouched {
			e.Peer = PublicKey(d.Client)
		}
		if newSession {
			e.Kind = EventSession
			ev.hook(e)
		}
		if ev.accepted {
			e.Kind = EventAccepted
			ev.hook(e)
		}
	}
}

// finish fills in the server key an inbound decision names.
func (s *curveServer) finish(in inbound, d *servercore.Decision, view *policyView) inbound {
	switch in.reason {
	case ReasonNone, ReasonNotAuthorized, ReasonStale, ReasonReplayed, ReasonInDoubt, ReasonRetry, ReasonUnknownEpoch, ReasonUnknownTicket, ReasonHybridRequired:
		if d.ServerKey >= 0 && d.ServerKey < len(view.keys) && (d.Deliver || d.Respond != nil || d.Pending) {
			in.server = view.keys[d.ServerKey].key
		}
	}
	return in
}

// sealReply appends the sealed reply for t to dst and keeps it for
// retries.
func (s *curveServer) sealReply(dst []byte, t ticket, body []byte) ([]byte, error) {
	return s.state.Load().SealReply(dst, t.t, body, s.env.Load().rand)
}

// refuse answers the delivered request t with its authenticated
// NOT_AUTHORIZED refusal (OptionRequestAuthorizer said no), kept for its
// retries like a reply.
func (s *curveServer) refuse(dst []byte, t ticket) ([]byte, bool) {
	return s.state.Load().Refuse(dst, t.t)
}

// established reports whether wire's short-term key is cached.
func (s *curveServer) established(b []byte) bool { return s.state.Load().Established(b) }

func (s *curveServer) sealedSize(n int) int { return n + replyOver }

// secretOf returns the secret bytes of k.
func secretOf(k *SecretKey) *[KeySize]byte { return k.bytes() }
