package secsock

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.nanomsg.org/mangos/v3"

	servercore "github.com/secsock/secsock/internal/server"
	"github.com/secsock/secsock/internal/wire"
	"github.com/secsock/secsock/replaystore"
)

// Options, set and read with Socket.SetOption and Socket.GetOption like any
// mangos option. A value of the wrong type or out of range gives an error
// naming the expected type and wrapping mangos.ErrBadValue; an option for
// the other side (a REQ-only option on REP, or the reverse), or any
// sealing option on a protocol without a mechanism, gives one wrapping
// mangos.ErrBadOption. Names that are not secsock's go to mangos
// unchanged. Keys may be set in any order: Listen and Dial check that the
// mechanism has the keys it needs (ErrNoKey).
//
// PUSH and PULL sockets (SPEC.md §15) take the options of the side they
// play: what is marked REQ applies to a PUSH socket and what is marked
// REP to a PULL socket, except the options about answers, which a
// pipeline does not have (OptionReplyCacheSize, OptionReplyCacheBytes,
// OptionBacklog, OptionAdvisoryGrace, OptionAuthenticateFirst,
// OptionPermissive, OptionAllowPlain: refused with mangos.ErrBadOption).
const (
	// OptionMechanism selects the security mechanism. The value is a
	// string: "none" (the default: the socket behaves exactly like the
	// mangos socket it wraps) or "curve" (SPEC.md).
	OptionMechanism = "SECSOCK-MECHANISM"

	// OptionSecretKey is this socket's long-term secret key, a SecretKey,
	// a *SecretKey or a string that ParseSecretKey accepts. On REP it is the server
	// key, required by "curve". On REQ it is the client's long-term key:
	// optional, without it the client is anonymous. Write-only: reading
	// it gives ErrWriteOnly. Default: none.
	OptionSecretKey = "SECSOCK-SECRET-KEY"

	// OptionPublicKey is this socket's long-term public key (PublicKey),
	// derived from OptionSecretKey. Read-only. ErrNoKey when no secret
	// key is set.
	OptionPublicKey = "SECSOCK-PUBLIC-KEY"

	// OptionServerKey is the server's public key, a PublicKey or a string
	// that ParsePublicKey accepts. REQ only; required by "curve".
	// Default: none.
	OptionServerKey = "SECSOCK-SERVER-KEY"

	// OptionPreviousSecretKeys are server secret keys still accepted
	// during a key rotation ([]SecretKey). Requests sealed to any of them
	// are served and answered under the key they used. REP only.
	// Default: none.
	OptionPreviousSecretKeys = "SECSOCK-PREVIOUS-SECRET-KEYS"

	// OptionAuthorizedKeys is the set of client long-term public keys the
	// REP side serves ([]PublicKey). Setting it (even to an empty slice)
	// turns the client policy on; nil turns the list off. It may be
	// replaced while serving: requests already delivered are not
	// affected. Default: nil.
	OptionAuthorizedKeys = "SECSOCK-AUTHORIZED-KEYS"

	// OptionAuthorizer is a callback (Authorizer) asked about client keys
	// that are not in OptionAuthorizedKeys. Setting it turns the client
	// policy on. REP only. Default: nil.
	OptionAuthorizer = "SECSOCK-AUTHORIZER"

	// OptionAllowAnonymous (bool) says whether a REP socket with a client
	// policy also serves anonymous clients. Without a client policy every
	// client is served. Default: false.
	OptionAllowAnonymous = "SECSOCK-ALLOW-ANONYMOUS"

	// OptionFreshness (time.Duration) is how far a request's timestamp may
	// be from the server's clock. It bounds cross-instance replay and must
	// exceed clock skew plus the longest time a REQ retries
	// (mangos.OptionRetryTime); a value below OptionMaxClockSkew is
	// refused. REP only. Default: 2 minutes.
	OptionFreshness = "SECSOCK-FRESHNESS"

	// OptionMaxClockSkew (time.Duration) is how far a request's timestamp
	// may be ahead of the server's clock (at most OptionFreshness: a larger
	// value is refused).
	// Keeping it small bounds how long one client's future-dated requests
	// can hold up others after a cache eviction (SPEC.md §6.2). REP only.
	// Default: 10 seconds.
	OptionMaxClockSkew = "SECSOCK-MAX-CLOCK-SKEW"

	// OptionCipher (string) selects the cipher suite of requests and their
	// replies: CipherBox (the default) or CipherAESGCM. REQ only; a REP
	// socket answers in the suite of each request.
	OptionCipher = "SECSOCK-CIPHER"

	// OptionShortTermMessages (int) is how many requests a client seals
	// with one short-term key before making a new one, at most 16,777,216
	// (2^24: SPEC.md §7.2). REQ only. Default: 1,048,576.
	OptionShortTermMessages = "SECSOCK-SHORT-TERM-MESSAGES"

	// OptionShortTermLifetime (time.Duration) is how long a client uses
	// one short-term key, at most 24 hours; its vouch expires then (SPEC.md
	// §4.3). REQ only. Default: 1 hour.
	OptionShortTermLifetime = "SECSOCK-SHORT-TERM-LIFETIME"

	// OptionPeerCacheSize (int) is how many client short-term keys a REP
	// socket remembers (agreed key and replay window, about 1.2 KiB
	// each). Takes effect only before the first request. Default: 4096.
	OptionPeerCacheSize = "SECSOCK-PEER-CACHE-SIZE"

	// OptionReplyCacheSize (int) is how many recent replies a REP socket
	// keeps for answering retries. Takes effect only before the first
	// request. Default: 1024.
	OptionReplyCacheSize = "SECSOCK-REPLY-CACHE-SIZE"

	// OptionReplyCacheBytes (int) caps the bytes of the kept replies;
	// replies over 64 KiB are never kept. Takes effect only before the
	// first request. Default: 8 MiB.
	OptionReplyCacheBytes = "SECSOCK-REPLY-CACHE-BYTES"

	// OptionKeyAgreementBudget (int) is how many scalar multiplications
	// per second a REP socket spends on messages from short-term keys it
	// does not hold yet (new sessions, and forgeries). Past it, such
	// messages are dropped and counted as ReasonBusy; established sessions
	// are never charged (SPEC.md §6 step 3). 0 means unlimited. Takes
	// effect only before the first request. Default: 2048 (about 15% of
	// one core).
	OptionKeyAgreementBudget = "SECSOCK-KEY-AGREEMENT-BUDGET"

	// OptionEpochSeed is the service's epoch seed chain (SPEC.md §14), a
	// *EpochSeed or the path of a seed file (a string: loaded with
	// LoadEpochSeedFile, ratcheted, and kept ratcheted as epochs pass).
	// With it, a REP socket announces epoch keys and accepts requests
	// sealed with them, which stay confidential after their epoch even if
	// the server's secret key and the seed are stolen later. Its epochs
	// must be at least OptionFreshness plus OptionMaxClockSkew long. REP
	// only. Default: nil, no epoch keys (requests that name one get an
	// authenticated UNKNOWN_EPOCH refusal).
	OptionEpochSeed = "SECSOCK-EPOCH-SEED"

	// OptionEpochs (string) is how a REQ socket uses epoch keys: EpochsAuto
	// (the default: ask for them, seal with them once known, and fall back
	// to the long-term key alone on an authenticated UNKNOWN_EPOCH
	// refusal), EpochsRequire (the same, but never fall back: such requests
	// fail with ErrUnknownEpoch) or EpochsOff. REQ only.
	OptionEpochs = "SECSOCK-EPOCHS"

	// OptionHybrid (string) is the post-quantum hybrid mode (SPEC.md §16):
	// requests and replies mix an ML-KEM-768 shared secret with the X25519
	// agreements, so recorded traffic stays confidential unless both are
	// broken (a future quantum computer breaks X25519 alone).
	// Authentication stays classical. HybridOff (the default), HybridOn,
	// or, on REP only, HybridRequire (requests without it are refused
	// with an authenticated HYBRID_REQUIRED). A REQ socket with HybridOn
	// never sends data outside the mode: it fetches the server's ML-KEM
	// key with an anonymous ping when it lacks it (once per epoch), and a
	// server that does not serve the mode gives ErrHybridUnsupported; it
	// needs OptionEpochs other than EpochsOff and never falls back to the
	// long-term key alone. A REP socket with HybridOn or HybridRequire
	// needs OptionEpochSeed (the ML-KEM keys are epoch keys).
	OptionHybrid = "SECSOCK-HYBRID"

	// OptionAuthenticateFirst (bool) makes a REQ socket run Authenticate
	// before its first request, so that the server's epoch keys are known
	// and every request is forward-secret (SPEC.md §14.2). Its error, if
	// any, is the first Send's. REQ only. Default: false (the first
	// request is sealed to the long-term key only).
	OptionAuthenticateFirst = "SECSOCK-AUTHENTICATE-FIRST"

	// OptionEpochSource (*Socket) gives a PUSH socket the epoch keys of its
	// service (SPEC.md §15.6): a REQ socket with mechanism "curve" and the
	// same OptionServerKey, connected to a REP endpoint of the service.
	// Before sealing, when its epoch keys do not cover the time, the
	// pusher has that socket ping (Authenticate, with WANT_EPOCH) and
	// seals with the keys the authenticated answer announces; a failed
	// ping fails the Send rather than downgrading it. An answer without
	// keys (the service has no epoch seed) makes it seal to the long-term
	// key for a minute before asking again. PULL workers must hold the
	// service's seed chain: they drop what they cannot open, and the
	// pusher cannot know. PUSH only. Default: nil, every PUSH message is
	// sealed to the long-term key only (not forward-secret); with
	// OptionEpochs EpochsRequire, Send then fails with ErrUnknownEpoch.
	OptionEpochSource = "SECSOCK-EPOCH-SOURCE"

	// OptionEventHook (func(Event)) is called for every message the socket
	// rejects, with the reason, the time and the peer's long-term key when
	// known, and, when OptionEventAccepted or OptionEventSessions ask for
	// them, for accepted requests and new client sessions. It runs on the
	// receiving goroutine and must not block. Default: nil.
	OptionEventHook = "SECSOCK-EVENT-HOOK"

	// OptionEventAccepted (bool) also reports every request the REP side
	// accepts (delivered to the application, or a ping it answered) to
	// OptionEventHook, as an Event of Kind EventAccepted with the time,
	// the server key it was sealed to, the client's key when it proved
	// one, and the pipe when known. REP only. Default: false.
	OptionEventAccepted = "SECSOCK-EVENT-ACCEPTED"

	// OptionEventSessions (bool) also reports the first accepted request
	// of each new client session (short-term key) to OptionEventHook, as
	// an Event of Kind EventSession. It costs one cache lookup more per
	// request. REP only. Default: false.
	OptionEventSessions = "SECSOCK-EVENT-SESSIONS"

	// OptionLogger (*slog.Logger) receives one Debug record per rejected
	// message (reason and peer public key; never secrets or bodies).
	// Default: nil, the library logs nothing.
	OptionLogger = "SECSOCK-LOGGER"

	// OptionBacklog (int, at least 1) is how many delivered requests a REP
	// socket with a sealing mechanism holds for the application's Recv
	// (on the socket and its contexts), beyond those the application is
	// handling. Such a socket reads the wire itself, so pings, refusals,
	// hints and cached replies are answered while every application
	// worker is busy; when the backlog is full it stops reading, as
	// mangos does when nobody calls Recv. Memory: at most OptionBacklog +
	// max(4, 2 × GOMAXPROCS) + 64 received messages, each at most
	// mangos.OptionMaxRecvSize, besides those the application holds, and
	// at most 256 answers waiting to be sent (pings, refusals, hints,
	// cached replies up to 64 KiB). Read when the socket starts reading
	// (its first Recv with a sealing mechanism). REP only. Default: 128.
	OptionBacklog = "SECSOCK-BACKLOG"

	// OptionReplayStore (a replaystore.Store, or nil) is replay state
	// shared with every other REP socket that serves the same server key
	// (SPEC.md §17): with it each request reaches the application at most
	// once across all of them, a retry that reaches another worker gets the
	// same sealed reply, and a restarted worker refuses replays of what any
	// worker handled. Use replaystore.NewMemory for sockets of one process,
	// redisstore for several processes or hosts. The socket fails closed: a
	// request the store cannot be asked about in time is refused
	// (ErrStoreUnavailable on the client, ReasonStoreUnavailable here)
	// unless OptionReplayStorePerInstance is set. Takes effect only before
	// the first request. REP and PULL (a PULL worker claims each message
	// and drops what another worker delivered, SPEC.md §15.5). Default:
	// nil (per-instance replay state).
	OptionReplayStore = "SECSOCK-REPLAY-STORE"

	// OptionReplayStoreDeadline (time.Duration) bounds one round trip to
	// the replay store; past it the request is handled as if the store
	// were unreachable. REP and PULL. Default: 100 ms.
	OptionReplayStoreDeadline = "SECSOCK-REPLAY-STORE-DEADLINE"

	// OptionReplayStoreLease (time.Duration) is how long a claim in the
	// replay store stays live without a reply: copies of the request at
	// other workers wait for the reply that long at most, and are refused
	// IN_DOUBT (never delivered) if none came, for example because the
	// worker died. Set it above the application's longest handling time.
	// REP and PULL (a PULL worker ends its claim at once, after delivery;
	// the lease matters only if it dies in between). Default: 10 seconds.
	OptionReplayStoreLease = "SECSOCK-REPLAY-STORE-LEASE"

	// OptionReplayStorePerInstance (bool) makes a REP socket deliver a
	// request when the replay store cannot be asked, with its own
	// per-instance checks only, instead of refusing it: during the outage a
	// captured request can again be replayed once to each other worker and
	// to a restarted one (SPEC.md §17.5). Counted in
	// ReplayStoreStats.Fallbacks. REP and PULL. Default: false (fail
	// closed: a PULL worker drops the message, ReasonStoreUnavailable).
	OptionReplayStorePerInstance = "SECSOCK-REPLAY-STORE-PER-INSTANCE"

	// OptionAdvisoryGrace (time.Duration, 0 or more) is how long a REQ
	// socket keeps waiting for an authenticated answer after one that
	// anyone on the path could have made: a hint (ErrServerKeyMismatch,
	// ErrUnsupported), or a reply that does not open (ErrAuthFailed,
	// ErrMalformed, ErrUnknownKind, ErrUnknownVersion). The client
	// resends the identical sealed request and reports the first such
	// error only when the grace ends without an authenticated reply or
	// refusal, and never later than mangos.OptionRecvDeadline. 0 reports
	// it at once. REQ only. Default: 1 second.
	OptionAdvisoryGrace = "SECSOCK-ADVISORY-GRACE"

	// OptionRequestAuthorizer (a RequestAuthorizer, or a func(Peer,
	// []byte) bool) is asked about every request a REP socket is about to
	// deliver, after the server's checks and the client policy, with who
	// sent it (Peer) and its body; false refuses it with an authenticated
	// NOT_AUTHORIZED. REP, and PULL (false drops the message, counted as
	// ReasonNotAuthorized: nothing can tell the pusher). Default: nil,
	// every request that passed the checks is delivered.
	OptionRequestAuthorizer = "SECSOCK-REQUEST-AUTHORIZER"

	// OptionPermissive (bool) makes a REP socket with mechanism "curve"
	// also serve plain (unsealed) requests, for moving a service from
	// plain mangos to secsock without a failed request (README, "Rolling
	// out"). A body that is not a secsock message at all (SPEC.md §6 step
	// 1) is delivered as it came, with Peer.Plain set, answered unsealed,
	// and counted (ServerStats.Plain); everything that parses as secsock
	// is handled as sealed, never as plain. Plain requests are neither
	// authenticated nor confidential nor replay-protected, so under a
	// client policy they are dropped (counted as ReasonNotAuthorized)
	// unless OptionAllowPlain is also set. Clients never fall back to
	// plain. REP only. Default: false (strict: plain requests are dropped
	// and counted as ReasonNotSecsock).
	OptionPermissive = "SECSOCK-PERMISSIVE"

	// OptionAllowPlain (bool) lets a permissive REP socket (OptionPermissive)
	// serve plain requests even under a client policy (OptionAuthorizedKeys
	// or OptionAuthorizer). OptionRequestAuthorizer still sees them, as
	// Peer.Plain. REP only. Default: false.
	OptionAllowPlain = "SECSOCK-ALLOW-PLAIN"

	// OptionClock (func() time.Time) is the clock of everything
	// time-based in the socket: request timestamps and the freshness
	// window, vouch expiry, short-term key lifetime, epochs, and the
	// key-agreement budget. For tests (for example of ErrStale handling):
	// production code leaves it alone. Deadlines and timeouts of mangos
	// (and OptionAdvisoryGrace) keep the real clock. Default: time.Now.
	OptionClock = "SECSOCK-CLOCK"
)

// Values of OptionHybrid.
const (
	HybridOff     = "off"
	HybridOn      = "on"
	HybridRequire = "require" // REP only
)

// Values of OptionEpochs.
const (
	EpochsAuto    = "auto"
	EpochsRequire = "require"
	EpochsOff     = "off"
)

// Mechanism names and cipher suites, the values of OptionMechanism and
// OptionCipher.
const (
	MechanismNone  = "none"
	MechanismCurve = "curve"

	CipherBox    = "xsalsa20poly1305" // NaCl crypto_box (default)
	CipherAESGCM = "aes256gcm"        // AES-256-GCM, fastest for large messages on CPUs with AES instructions
)

var cipherSuites = map[string]byte{CipherBox: wire.SuiteBox, CipherAESGCM: wire.SuiteAESGCM}

// config holds the option values of one socket.
type config struct {
	mechanism      string
	secret         SecretKey
	serverKey      PublicKey
	previous       []SecretKey
	authorized     map[PublicKey]struct{}
	authorizer     Authorizer
	allowAnonymous bool
	freshness      time.Duration
	maxSkew        time.Duration
	cipher         string
	maxMessages    int
	maxAge         time.Duration
	peerCache      int
	replySlots     int
	replyBytes     int
	budget         int
	epochSeed      *EpochSeed
	epochs         string
	authFirst      bool
	hybrid         string
	eventHook      func(Event) // userHook, stamping events with the time
	userHook       func(Event) // as set, for GetOption
	eventAccepted  bool
	eventSessions  bool
	logger         *slog.Logger
	backlog        int
	grace          time.Duration
	oneWay         bool // a PUSH or PULL socket (SPEC.md §15); set by Wrap
	epochSource    *Socket

	replayStore      replaystore.Store
	storeDeadline    time.Duration
	storeLease       time.Duration
	storePerInstance bool
	requestAuth      RequestAuthorizer
	permissive       bool
	allowPlain       bool
	clockSet         bool // OptionClock was set (now is the application's)
	maxBody          int  // mangos.OptionMaxRecvSize, as a limit on bodies (0: none)

	now func() time.Time // OptionClock

	// Injected only by tests in this package.
	rand io.Reader
}

func defaultConfig() config {
	return config{
		mechanism:   MechanismNone,
		freshness:   2 * time.Minute,
		maxSkew:     10 * time.Second,
		cipher:      CipherBox,
		maxMessages: 1 << 20,
		maxAge:      time.Hour,
		peerCache:   4096,
		replySlots:  1024,
		replyBytes:  8 << 20,
		budget:      servercore.DefaultLimits().Budget,
		epochs:      EpochsAuto,
		hybrid:      HybridOff,
		backlog:     128,
		grace:       time.Second,

		storeDeadline: 100 * time.Millisecond,
		storeLease:    10 * time.Second,
		rand:          rand.Reader,
		now:           time.Now,
	}
}

// set applies one secsock option. It reports false for names that are
// not secsock's.
func (c *config) set(name string, v any) (bool, error) {
	bad := func() (bool, error) { return true, badValue(name) }
	switch name {
	case OptionMechanism:
		m, ok := v.(string)
		if !ok || mechanisms[m] == nil {
			return bad()
		}
		c.mechanism = m
	case OptionSecretKey:
		k, err := secretKeyValue(v)
		if err != nil {
			return true, err
		}
		c.secret = k
	case OptionServerKey:
		k, err := publicKeyValue(v)
		if err != nil {
			return true, err
		}
		c.serverKey = k
	case OptionPreviousSecretKeys:
		ks, ok := v.([]SecretKey)
		if !ok {
			return bad()
		}
		for _, k := range ks {
			if k.IsZero() {
				return bad()
			}
		}
		c.previous = append([]SecretKey(nil), ks...)
	case OptionAuthorizedKeys:
		ks, ok := v.([]PublicKey)
		if !ok {
			return bad()
		}
		if ks == nil {
			c.authorized = nil
			break
		}
		set := make(map[PublicKey]struct{}, len(ks))
		for _, k := range ks {
			if err := checkPublicKey(k); err != nil {
				return true, err
			}
			set[k] = struct{}{}
		}
		c.authorized = set
	case OptionAuthorizer:
		switch f := v.(type) {
		case Authorizer:
			c.authorizer = f
		case func(PublicKey) bool:
			c.authorizer = f
		default:
			return bad()
		}
	case OptionAllowAnonymous:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		c.allowAnonymous = b
	case OptionFreshness, OptionShortTermLifetime, OptionMaxClockSkew:
		d, ok := v.(time.Duration)
		if !ok || d <= 0 || (name == OptionShortTermLifetime && d > maxShortTermLifetime) {
			return bad()
		}
		switch name {
		case OptionFreshness:
			c.freshness = d
		case OptionMaxClockSkew:
			c.maxSkew = d
		default:
			c.maxAge = d
		}
	case OptionCipher:
		s, ok := v.(string)
		if _, known := cipherSuites[s]; !ok || !known {
			return bad()
		}
		c.cipher = s
	case OptionShortTermMessages, OptionPeerCacheSize, OptionReplyCacheSize, OptionReplyCacheBytes:
		n, ok := v.(int)
		if !ok || n < 1 || (name == OptionShortTermMessages && n > maxShortTermMessages) {
			return bad()
		}
		switch name {
		case OptionShortTermMessages:
			c.maxMessages = n
		case OptionPeerCacheSize:
			c.peerCache = n
		case OptionReplyCacheSize:
			c.replySlots = n
		default:
			c.replyBytes = n
		}
	case OptionKeyAgreementBudget:
		n, ok := v.(int)
		if !ok || n < 0 {
			return bad()
		}
		c.budget = n
	case OptionEpochSeed:
		switch e := v.(type) {
		case *EpochSeed:
			c.epochSeed = e
		case string:
			seed, n, err := LoadEpochSeedFile(e, c.now())
			if err != nil {
				return true, err
			}
			if n > 0 && c.logger != nil {
				c.logger.Info("secsock: epoch seed file was behind; ratcheted and rewritten", "file", e, "steps", n)
			}
			c.epochSeed = seed
		default:
			return bad()
		}
		if c.epochSeed != nil && c.epochSeed.Length() < c.freshness+c.maxSkew {
			return true, fmt.Errorf("secsock: option %s: epochs of %v are shorter than the freshness window plus the clock skew (%v): %w",
				name, c.epochSeed.Length(), c.freshness+c.maxSkew, mangos.ErrBadValue)
		}
	case OptionHybrid:
		m, ok := v.(string)
		if !ok || (m != HybridOff && m != HybridOn && m != HybridRequire) {
			return bad()
		}
		c.hybrid = m
	case OptionEpochs:
		m, ok := v.(string)
		if !ok || (m != EpochsAuto && m != EpochsRequire && m != EpochsOff) {
			return bad()
		}
		c.epochs = m
	case OptionAuthenticateFirst:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		c.authFirst = b
	case OptionEpochSource:
		src, ok := v.(*Socket)
		if !ok || (src != nil && (src.server || src.oneWay)) {
			return bad() // a REQ socket, or nil
		}
		c.epochSource = src
	case OptionBacklog:
		n, ok := v.(int)
		if !ok || n < 1 {
			return bad()
		}
		c.backlog = n
	case OptionAdvisoryGrace:
		d, ok := v.(time.Duration)
		if !ok || d < 0 {
			return bad()
		}
		c.grace = d
	case OptionReplayStore:
		st, ok := v.(replaystore.Store)
		if !ok && v != nil {
			return bad()
		}
		c.replayStore = st
	case OptionReplayStoreDeadline, OptionReplayStoreLease:
		d, ok := v.(time.Duration)
		if !ok || d <= 0 {
			return bad()
		}
		if name == OptionReplayStoreDeadline {
			c.storeDeadline = d
		} else {
			c.storeLease = d
		}
	case OptionReplayStorePerInstance:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		c.storePerInstance = b
	case OptionEventHook:
		f, ok := v.(func(Event))
		if !ok {
			return bad()
		}
		c.userHook, c.eventHook = f, stampEvents(f, c.now)
	case OptionEventAccepted, OptionEventSessions:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		if name == OptionEventAccepted {
			c.eventAccepted = b
		} else {
			c.eventSessions = b
		}
	case OptionLogger:
		l, ok := v.(*slog.Logger)
		if !ok {
			return bad()
		}
		c.logger = l
	case OptionRequestAuthorizer:
		switch f := v.(type) {
		case RequestAuthorizer:
			c.requestAuth = f
		case func(Peer, []byte) bool:
			c.requestAuth = f
		default:
			return bad()
		}
	case OptionPermissive, OptionAllowPlain:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		if name == OptionPermissive {
			c.permissive = b
		} else {
			c.allowPlain = b
		}
	case OptionClock:
		f, ok := v.(func() time.Time)
		if !ok || f == nil {
			return bad()
		}
		c.now, c.clockSet = f, true
		c.eventHook = stampEvents(c.userHook, f)
	default:
		return false, nil
	}
	return true, nil
}

// get reads one secsock option. It reports false for names that are not
// secsock's.
func (c *config) get(name string) (bool, any, error) {
	var v any
	switch name {
	case OptionMechanism:
		v = c.mechanism
	case OptionSecretKey, OptionPreviousSecretKeys:
		return true, nil, fmt.Errorf("secsock: option %s: %w", name, ErrWriteOnly)
	case OptionPublicKey:
		if c.secret.IsZero() {
			return true, nil, fmt.Errorf("secsock: option %s: %w", name, ErrNoKey)
		}
		v = c.secret.Public()
	case OptionServerKey:
		v = c.serverKey
	case OptionAuthorizedKeys:
		if c.authorized != nil {
			ks := make([]PublicKey, 0, len(c.authorized))
			for k := range c.authorized {
				ks = append(ks, k)
			}
			v = ks
		} else {
			v = []PublicKey(nil)
		}
	case OptionAuthorizer:
		v = c.authorizer
	case OptionAllowAnonymous:
		v = c.allowAnonymous
	case OptionFreshness:
		v = c.freshness
	case OptionMaxClockSkew:
		v = c.maxSkew
	case OptionCipher:
		v = c.cipher
	case OptionShortTermMessages:
		v = c.maxMessages
	case OptionShortTermLifetime:
		v = c.maxAge
	case OptionPeerCacheSize:
		v = c.peerCache
	case OptionReplyCacheSize:
		v = c.replySlots
	case OptionReplyCacheBytes:
		v = c.replyBytes
	case OptionKeyAgreementBudget:
		v = c.budget
	case OptionEpochSeed:
		v = c.epochSeed
	case OptionEpochs:
		v = c.epochs
	case OptionHybrid:
		v = c.hybrid
	case OptionAuthenticateFirst:
		v = c.authFirst
	case OptionEpochSource:
		v = c.epochSource
	case OptionBacklog:
		v = c.backlog
	case OptionAdvisoryGrace:
		v = c.grace
	case OptionReplayStore:
		v = c.replayStore
	case OptionReplayStoreDeadline:
		v = c.storeDeadline
	case OptionReplayStoreLease:
		v = c.storeLease
	case OptionReplayStorePerInstance:
		v = c.storePerInstance
	case OptionEventHook:
		v = c.userHook
	case OptionEventAccepted:
		v = c.eventAccepted
	case OptionEventSessions:
		v = c.eventSessions
	case OptionLogger:
		v = c.logger
	case OptionRequestAuthorizer:
		v = c.requestAuth
	case OptionPermissive:
		v = c.permissive
	case OptionAllowPlain:
		v = c.allowPlain
	case OptionClock:
		v = c.now
	default:
		return false, nil, nil
	}
	return true, v, nil
}

// consistent reports settings that contradict each other, which Listen
// and Dial refuse (and SetOption, once the socket has endpoints): checked
// there rather than per option, so that the order they are set in does
// not matter.
func (c *config) consistent() error {
	if c.maxSkew > c.freshness {
		return fmt.Errorf("secsock: OptionMaxClockSkew (%v) exceeds OptionFreshness (%v): %w", c.maxSkew, c.freshness, mangos.ErrBadValue)
	}
	return nil
}

// stampEvents returns f giving every event a time from now (rejections
// are made without one).
func stampEvents(f func(Event), now func() time.Time) func(Event) {
	if f == nil {
		return nil
	}
	return func(ev Event) {
		if ev.Time.IsZero() {
			ev.Time = now()
		}
		f(ev)
	}
}

func secretKeyValue(v any) (SecretKey, error) {
	switch k := v.(type) {
	case SecretKey:
		if !k.IsZero() {
			return k, nil
		}
	case *SecretKey:
		if k != nil && !k.IsZero() {
			return *k, nil
		}
	case string:
		return ParseSecretKey(k)
	}
	return SecretKey{}, badValue(OptionSecretKey)
}

func publicKeyValue(v any) (PublicKey, error) {
	switch k := v.(type) {
	case PublicKey:
		return k, checkPublicKey(k)
	case *PublicKey:
		if k != nil {
			return *k, checkPublicKey(*k)
		}
	case string:
		return ParsePublicKey(k)
	}
	return PublicKey{}, badValue(OptionServerKey)
}

// limits are the server state's sizes from the options.
func (c *config) limits() servercore.Limits {
	l := servercore.DefaultLimits()
	l.Peers, l.ReplySlots, l.ReplyBytes, l.Budget = c.peerCache, c.replySlots, c.replyBytes, c.budget
	l.OneWay = c.oneWay
	l.Shared = c.replayStore != nil
	return l
}
