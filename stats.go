package secsock

import (
	"errors"
	"sync/atomic"
)

// Reason says why a message was not delivered or a request was refused.
// Reasons are counted in Stats and reported to the EventHook.
type Reason uint8

// Reasons, in the order of the server's checks (SPEC.md §6).
const (
	ReasonNone           Reason = iota
	ReasonMalformed             // wrong length or layout
	ReasonUnknownVersion        // version byte not known
	ReasonUnknownKind           // kind byte unknown or not valid here (e.g. a reply sent to a server)
	ReasonUnsupported           // cipher suite or feature not supported (refused)
	ReasonWeakKey               // short-term or long-term key of small order
	ReasonForged                // box did not open: forged, corrupted or sealed to another server key
	ReasonBadVouch              // identity box opened but the vouch did not
	ReasonNotAuthorized         // client policy refused the client
	ReasonStale                 // timestamp outside the freshness window
	ReasonReplayed              // request already handled and its reply is gone
	ReasonRetry                 // duplicate of a request being handled or answered from the reply cache
	ReasonBusy                  // hinted BUSY (the key-agreement budget for unknown keys is spent), or dropped unread (the REP side's queue for unknown keys was full)
	ReasonInDoubt               // refused: may have been handled before (too old for the replay window, or evicted)
	ReasonUnknownEpoch          // refused: sealed with an epoch key this server does not accept
	numReasons
)

var reasonNames = [numReasons]string{
	"none", "malformed", "unknown-version", "unknown-kind", "unsupported",
	"weak-key", "forged", "bad-vouch", "not-authorized", "stale", "replayed", "retry", "busy", "in-doubt", "unknown-epoch",
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
	return s
}

// TotalRejected returns the sum of s.Rejected.
func (s Stats) TotalRejected() uint64 {
	var n uint64
	for _, v := range s.Rejected {
		n += v
	}
	return n
}

// Event describes one message that a socket rejected: a request the REP
// side did not deliver (whether or not it answered it), or a reply that
// made the REQ side's Recv fail.
type Event struct {
	Reason Reason
	// Peer is the client's long-term public key on the REP side when the
	// request proved it (zero otherwise), and the server key on REQ.
	Peer PublicKey
	// Err is the error Recv returned, on the REQ side; nil on REP.
	Err error
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
	case errors.Is(err, ErrBusy):
		return ReasonBusy
	case errors.Is(err, ErrServerKeyMismatch):
		return ReasonForged
	}
	return ReasonForged
}
