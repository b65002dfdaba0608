package secsock

import (
	"errors"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"
)

// Reason says why a message was not delivered or a request was refused.
// Reasons are counted in Stats and reported to the EventHook.
type Reason uint8

// Reasons, in the order of the server's checks (SPEC.md §6).
const (
	ReasonNone             Reason = iota
	ReasonMalformed               // wrong length or layout
	ReasonUnknownVersion          // version byte not known
	ReasonUnknownKind             // kind byte unknown or not valid here (e.g. a reply sent to a server)
	ReasonUnsupported             // cipher suite or feature not supported (refused)
	ReasonWeakKey                 // short-term or long-term key of small order
	ReasonForged                  // box did not open: forged, corrupted or sealed to another server key
	ReasonBadVouch                // identity box opened but the vouch did not
	ReasonNotAuthorized           // client policy refused the client
	ReasonStale                   // timestamp outside the freshness window
	ReasonReplayed                // request already handled and its reply is gone
	ReasonRetry                   // duplicate of a request being handled or answered from the reply cache
	ReasonBusy                    // hinted BUSY (the key-agreement budget for unknown keys is spent), or dropped unread (the REP side's queue for unknown keys was full)
	ReasonInDoubt                 // refused: may have been handled before (too old for the replay window, or evicted)
	ReasonUnknownEpoch            // refused: sealed with an epoch key this server does not accept
	ReasonStoreUnavailable        // refused: the shared replay store (OptionReplayStore) could not be asked in time
	ReasonUnknownTicket           // refused: a hybrid ticket this server cannot open (SPEC.md §16.4)
	ReasonHybridRequired          // refused: sealed without the hybrid mode, which this server requires
	ReasonNotSecsock              // not a secsock message at all (a plain SP peer): dropped, or delivered as plain in permissive mode (Peer.Plain)
	ReasonOversize                // the opened body is longer than mangos.OptionMaxRecvSize
	numReasons
)

var reasonNames = [numReasons]string{
	"none", "malformed", "unknown-version", "unknown-kind", "unsupported",
	"weak-key", "forged", "bad-vouch", "not-authorized", "stale", "replayed", "retry", "busy", "in-doubt", "unknown-epoch",
	"store-unavailable",
	"unknown-ticket", "hybrid-required", "not-secsock", "oversize",
}

// Reasons returns every reason a message can be rejected for, in the
// order of the server's checks (ReasonNone excluded), so that counters
// and metrics can list them all, zeros included.
func Reasons() []Reason {
	rs := make([]Reason, 0, numReasons-1)
	for r := ReasonNone + 1; r < numReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// String returns the reason's short name, such as "not-authorized".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Stats are counters of a Socket since it was made. All counts are of
// messages.
type Stats struct {
	Sealed   uint64 // requests or replies sealed and handed to mangos
	Opened   uint64 // requests or replies opened and returned to the application
	Answered uint64 // requests the REP side answered itself (pings, refusals, hints, cached replies)
	// Rejected counts messages that were not delivered, by reason. A retry
	// answered from the reply cache counts as ReasonRetry, not as an attack.
	Rejected map[Reason]uint64
	// Retries is Rejected[ReasonRetry]: duplicates of requests in progress
	// or answered from the reply cache (mangos REQ resends). They are
	// normal under loss or slow servers; alert on TotalRefused instead.
	Retries uint64
}

type counters struct {
	sealed, opened, answered atomic.Uint64
	rejected                 [numReasons]atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{Sealed: c.sealed.Load(), Opened: c.opened.Load(), Answered: c.answered.Load(), Rejected: map[Reason]uint64{}}
	for i := range c.rejected {
		if n := c.rejected[i].Load(); n > 0 {
			s.Rejected[Reason(i)] = n
		}
	}
	s.Retries = s.Rejected[ReasonRetry]
	return s
}

// TotalRefused returns the messages rejected for a reason other than
// ReasonRetry: TotalRejected minus Retries.
func (s Stats) TotalRefused() uint64 { return s.TotalRejected() - s.Retries }

// TotalRejected returns the sum of s.Rejected, retries included.
func (s Stats) TotalRejected() uint64 {
	var n uint64
	for _, v := range s.Rejected {
		n += v
	}
	return n
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventRejected: a message the socket rejected (Reason says why).
	// Always reported to the hook.
	EventRejected EventKind = iota
	// EventAccepted: a request the REP side accepted (OptionEventAccepted).
	EventAccepted
	// EventSession: the first accepted request of a new client
	// short-term key (OptionEventSessions).
	EventSession
)

var eventKindNames = [...]string{"rejected", "accepted", "session"}

// String returns "rejected", "accepted" or "session".
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "unknown"
}

// Event describes one message that a socket rejected: a request the REP
// side did not deliver (whether or not it answered it), or a reply that
// made the REQ side's Recv fail; or, when asked for, a request the REP
// side accepted or the start of a client session (Kind).
type Event struct {
	Kind   EventKind
	Time   time.Time // when it was received
	Reason Reason    // ReasonNone unless Kind is EventRejected
	// Peer is the client's long-term public key on the REP side when the
	// request proved it (zero otherwise), and the server key on REQ.
	Peer PublicKey
	// Err is the error Recv returned, on the REQ side; nil on REP.
	Err error
	// ServerKey is the server public key the request was sealed to, on
	// the REP side when known (accepted requests): during a key rotation
	// it tells which clients still use a previous key.
	ServerKey PublicKey
	// Pipe is the connection the message came from, when known.
	Pipe mangos.Pipe
	// Ping: the accepted request was a credential check (Authenticate).
	Ping bool
}

// ServerStats is the state of a REP socket's curve mechanism: the sizes
// of its caches with their limits, and the requests it accepted by
// server key and by protection level. Use it to watch a key rotation:
// once a previous key's Accepted stops growing, no client uses it.
type ServerStats struct {
	Peers, PeerLimit           int // cached client short-term keys
	Tombstones, TombstoneLimit int // replay state kept for evicted short-term keys
	ReplyBytes, ReplyByteLimit int // bytes of replies kept for retries
	// Anonymous and Vouched count accepted requests (delivered, or pings
	// answered) from anonymous clients and from clients that proved a
	// long-term key.
	Anonymous, Vouched uint64
	// ForwardSecret and LongTermOnly count the same requests by
	// protection: sealed with an epoch key (forward-secret once its epoch
	// ends, SPEC.md §14.4) or with the server's long-term key only.
	ForwardSecret, LongTermOnly uint64
	// ReplayStore counts the use of the shared replay store
	// (OptionReplayStore); zero without one.
	ReplayStore ReplayStoreStats
	// Hybrid counts those of them sealed in the hybrid mode (an ML-KEM-768
	// secret mixed in, SPEC.md §16): confidential unless both X25519 and
	// ML-KEM-768 are broken.
	Hybrid uint64
	// Plain counts plain requests a permissive socket delivered
	// (OptionPermissive): watch it fall to zero before going strict.
	Plain uint64
	// ServerKeys has one entry per server key ever set on the socket:
	// the current key first, then the previous keys, then keys no longer
	// configured.
	ServerKeys []ServerKeyStats
}

// ServerKeyStats counts the requests accepted under one server key.
type ServerKeyStats struct {
	Key      PublicKey
	Role     string // "current", "previous" or "retired" (no longer configured)
	Accepted uint64
}

// ServerStats returns the REP side's cache sizes and counters by server
// key and protection level. On a REQ socket, or before the curve
// mechanism is set up, only the limits are filled in.
func (s *Socket) ServerStats() ServerStats {
	s.mu.Lock()
	srv, _ := s.srv.(*curveServer)
	lim := s.cfg.limits()
	window, skew := s.cfg.freshness, min(s.cfg.maxSkew, s.cfg.freshness)
	s.mu.Unlock()
	var st ServerStats
	if srv != nil {
		if l := srv.lim.Load(); l != nil {
			lim = *l
		}
	}
	st.PeerLimit, st.ReplyByteLimit = lim.Peers, lim.ReplyBytes
	// The state machine's tombstone capacity (SPEC.md §6.2).
	st.TombstoneLimit = lim.Tombstones
	if b := lim.Budget; b > 0 {
		st.TombstoneLimit = int(uint64(b)*uint64((window+skew).Milliseconds())/1000) + b
	}
	if srv == nil {
		return st
	}
	if state := srv.state.Load(); state != nil {
		st.Peers, st.Tombstones, st.ReplyBytes = state.Size()
	}
	if sr := srv.shared.Load(); sr != nil {
		st.ReplayStore = sr.stats()
	}
	st.Anonymous, st.Vouched = srv.counts.anonymous.Load(), srv.counts.vouched.Load()
	st.ForwardSecret, st.LongTermOnly = srv.counts.forwardSecret.Load(), srv.counts.longTermOnly.Load()
	st.Hybrid = srv.counts.hybrid.Load()
	st.Plain = srv.counts.plain.Load()
	role := map[PublicKey]string{}
	var order []*keyCount
	if v := srv.policy.Load(); v != nil {
		for i, kc := range v.keys {
			if _, seen := role[kc.key]; !seen {
				role[kc.key] = "previous"
				if i == 0 {
					role[kc.key] = "current"
				}
				order = append(order, kc)
			}
		}
	}
	srv.counts.mu.Lock()
	for _, kc := range srv.counts.keys {
		if _, ok := role[kc.key]; !ok {
			role[kc.key] = "retired"
			order = append(order, kc)
		}
	}
	srv.counts.mu.Unlock()
	for _, kc := range order {
		st.ServerKeys = append(st.ServerKeys, ServerKeyStats{Key: kc.key, Role: role[kc.key], Accepted: kc.accepted.Load()})
	}
	return st
}

// reasonOf maps an error returned for a reply to the reason it is
// counted under.
func reasonOf(err error) Reason {
	switch {
	case errors.Is(err, ErrMalformed):
		return ReasonMalformed
	case errors.Is(err, ErrUnknownVersion):
		return ReasonUnknownVersion
	case errors.Is(err, ErrUnknownKind):
		return ReasonUnknownKind
	case errors.Is(err, ErrUnsupported), errors.Is(err, ErrUnsupportedFeature):
		return ReasonUnsupported
	case errors.Is(err, ErrNotAuthorized):
		return ReasonNotAuthorized
	case errors.Is(err, ErrStale):
		return ReasonStale
	case errors.Is(err, ErrReplayed):
		return ReasonReplayed
	case errors.Is(err, ErrInDoubt):
		return ReasonInDoubt
	case errors.Is(err, ErrUnknownEpoch):
		return ReasonUnknownEpoch
	case errors.Is(err, ErrStoreUnavailable):
		return ReasonStoreUnavailable
	case errors.Is(err, ErrUnknownTicket):
		return ReasonUnknownTicket
	case errors.Is(err, ErrHybridRequired):
		return ReasonHybridRequired
	case errors.Is(err, ErrHybridUnsupported):
		return ReasonUnsupported
	case errors.Is(err, ErrBusy):
		return ReasonBusy
	case errors.Is(err, ErrTooLarge):
		return ReasonOversize
	case errors.Is(err, ErrNotSecsock):
		return ReasonNotSecsock
	case errors.Is(err, ErrServerKeyMismatch):
		return ReasonForged
	}
	return ReasonForged
}
