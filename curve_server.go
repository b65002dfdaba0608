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
	policy  atomic.Pointer[servercore.Policy] // base, with the epochs of epochs.until
	env     atomic.Pointer[serverEnv]
	state   atomic.Pointer[servercore.Server]
	started atomic.Bool // a request was received: the state must now persist
	mu      sync.Mutex  // serializes configure and epoch changes

	seed   *EpochSeed   // nil: no epoch keys
	until  atomic.Int64 // ms until which the policy's epochs hold
	logger *slog.Logger
	// Requests delivered or pinged, by protection (SPEC.md §14.4).
	forwardSecret, longTermOnly atomic.Uint64
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
	}
}

// setPolicy builds the state machine's policy from the options.
func (s *curveServer) setPolicy(c *config) {
	keys := make([]servercore.KeyPair, 0, 1+len(c.previous))
	for _, k := range append([]SecretKey{c.secret}, c.previous...) {
		keys = append(keys, servercore.KeyPair{Secret: *secretOf(&k), Public: k.public})
	}
	p := &servercore.Policy{
		Keys:           keys,
		AllowAnonymous: c.allowAnonymous,
		Window:         uint64(c.freshness.Milliseconds()),
		Skew:           uint64(min(c.maxSkew, c.freshness).Milliseconds()),
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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seed, s.logger = c.epochSeed, c.logger
	s.policy.Store(p)
	s.until.Store(0) // recompute the epochs on the next request
}

// epochPolicy returns the policy for time now (ms), moving to the epoch
// keys of now when the accepted set changes (SPEC.md §14.1): the seed is
// ratcheted (and its file rewritten), and every peer's secrets of epochs
// that left the set are wiped.
func (s *curveServer) epochPolicy(now int64) *servercore.Policy {
	if s.seed == nil || now < s.until.Load() {
		return s.policy.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pol := s.policy.Load()
	if s.seed == nil || now < s.until.Load() {
		return pol
	}
	p := *pol
	s.seed.mu.Lock()
	n, err := s.seed.advance(now)
	if err == nil && n > 0 {
		err = s.seed.save()
	}
	s.seed.mu.Unlock()
	if err != nil {
		s.log(slog.LevelError, "secsock: epoch seed not usable; serving long-term keys only", "error", err)
		p.Epochs = nil
		s.policy.Store(&p)
		s.until.Store(now + 1000) // try again in a second
		return &p
	}
	if n > 0 {
		s.log(slog.LevelInfo, "secsock: epoch seed ratcheted", "steps", n, "epoch", s.seed.Index())
	}
	keys, ann := s.seed.keysAt(now, int64(p.Skew))
	p.Epochs = &servercore.Epochs{Accepted: keys, Announce: ann.Append(nil)}
	s.policy.Store(&p)
	s.until.Store(s.seed.nextChange(now, int64(p.Skew)))
	keep := map[[wire.EpochIDSize]byte]bool{}
	for _, k := range keys {
		keep[k.ID] = true
	}
	// The old policy and the wiped agreements become unreachable; requests
	// in flight under them keep their own references until they finish.
	s.state.Load().RetainEpochs(func(id [wire.EpochIDSize]byte) bool { return keep[id] })
	return &p
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
	deliver bool
	// pending: a duplicate of a request the application is handling;
	// ticket names that request. Its route should get the reply too.
	pending bool
}

// openRequest runs the server's checks on one received body (SPEC.md §6)
// and appends the delivered request body, if any, to dst.
func (s *curveServer) openRequest(dst, b []byte) inbound {
	s.started.Store(true)
	env := s.env.Load()
	now := env.now().UnixMilli()
	d := s.state.Load().Open(dst, b, uint64(now), s.epochPolicy(now), env.rand)
	if d.Deliver || (d.Reason == servercore.ReasonNone && d.Respond != nil) {
		if d.Epoch {
			s.forwardSecret.Add(1)
		} else {
			s.longTermOnly.Add(1)
		}
	}
	in := inbound{
		body: d.Body, respond: d.Respond, reason: Reason(d.Reason),
		deliver: d.Deliver, pending: d.Pending,
		ticket: ticket{key: d.Ticket.ID(), t: d.Ticket},
	}
	if d.Vouched {
		in.client = PublicKey(d.Client)
	}
	return in
}

// sealReply appends the sealed reply for t to dst and keeps it for
// retries.
func (s *curveServer) sealReply(dst []byte, t ticket, body []byte) ([]byte, error) {
	return s.state.Load().SealReply(dst, t.t, body, s.env.Load().rand)
}

// established reports whether wire's short-term key is cached.
func (s *curveServer) established(b []byte) bool { return s.state.Load().Established(b) }

func (s *curveServer) sealedSize(n int) int { return n + replyOver }

// secretOf returns the secret bytes of k.
func secretOf(k *SecretKey) *[KeySize]byte { return k.bytes() }
