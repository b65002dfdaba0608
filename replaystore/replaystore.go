// Package replaystore is the replay state that REP workers sharing one
// server key share, so that each request reaches the application at most
// once across all of them (SPEC.md §17), not once per worker.
//
// A worker claims a request only after every other check passed (so
// nobody can pre-claim a victim's request: C' and N travel in clear). A
// claim carries a lease: while it is live, copies of the request at other
// workers wait; once the owner stores its sealed reply, they get those
// same bytes (a bounded number of times); if the lease lapses without a
// reply, they are refused IN_DOUBT and the request never runs again.
// Entries expire when the request leaves the freshness window.
//
// Memory is the default store for sockets in one process (tests, several
// sockets behind one device); package redisstore shares the state between
// processes and hosts. A REP socket without a store keeps its replay state
// to itself (per-instance, the behaviour of SPEC.md §6).
package replaystore

import (
	"context"
	"errors"
	"time"
)

// Request names one request that passed every check of a worker, with
// what the store needs to decide about it.
type Request struct {
	// Service is a fingerprint of the server public key that opened the
	// request (SHA-256 of the key, first 16 bytes): services sharing one
	// store never meet.
	Service [16]byte
	// Eph is the request's canonical short-term key C' and Counter its N.
	Eph     [32]byte
	Counter uint64
	// Header is the SHA-256 of the request's exact header bytes H: a
	// claim is for one exact request, never for another one that reuses
	// (C', N).
	Header [32]byte
	// Timestamp is the request's T and Now the worker's clock, both in ms
	// since the Unix epoch; Skew is the allowed clock skew Z in ms.
	Timestamp, Now, Skew uint64
	// Owner names the claiming worker instance (random): a claim found
	// again by its own owner (a retried round trip, or a copy after a
	// claim whose answer was lost) is the owner's.
	Owner [16]byte
	// Lease is how long a claim stays live without a reply; TTL how long
	// the entry must be kept (until the request is stale everywhere).
	Lease, TTL time.Duration
}

// State is what the store says about a request.
type State uint8

// States a Claim or Lookup returns.
const (
	// Claimed: this call claimed the request; deliver it, then Reply.
	Claimed State = iota + 1
	// Pending: another worker holds a live claim (Result.LeaseLeft);
	// ask again later.
	Pending
	// Answered: Result.Reply is the sealed reply that the owner stored
	// (this call took one of the request's resends), or its
	// authenticated refusal (IsRefusal: resent to every copy).
	Answered
	// Replayed: the request was answered, but its reply is not kept or
	// its resends are spent.
	Replayed
	// InDoubt: claimed, and the lease lapsed without a reply (the owner
	// died, or its application never answered); or, for Lookup, the store
	// does not know the request any more.
	InDoubt
	// Conflict: (C', N) is claimed by a request with another header; this
	// one can never be delivered.
	Conflict
	// Quiescent: the request is dated at or before the start of the
	// store's current generation plus the clock skew: a claim of it may
	// have been lost with the previous generation (SPEC.md §17.4).
	Quiescent
	// Refused: the request is recorded as refused UNKNOWN_EPOCH (its
	// client falls back to a new request, SPEC.md §17.2): it is never
	// delivered; refuse it UNKNOWN_EPOCH again.
	Refused
)

var stateNames = [...]string{"", "claimed", "pending", "answered", "replayed", "in-doubt", "conflict", "quiescent", "refused"}

// String returns the state's name, such as "in-doubt".
func (s State) String() string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return "unknown"
}

// Result is the outcome of a Claim or Lookup.
type Result struct {
	State     State
	Reply     []byte        // Answered: the sealed reply
	LeaseLeft time.Duration // Pending: how long the owner's claim stays live
}

// Store is shared replay state. Implementations are safe for concurrent
// use; every method is one round trip to the store, and returns an error
// (wrapping ErrUnavailable for a store that cannot be reached) rather
// than a guess.
type Store interface {
	// Claim claims r, or reports what the store holds for it: when it is
	// answered, it takes a resend, at most maxResends in all for r.
	Claim(ctx context.Context, r *Request, maxResends int) (Result, error)
	// Lookup is Claim without claiming: a request the store does not
	// hold is InDoubt.
	Lookup(ctx context.Context, r *Request, maxResends int) (Result, error)
	// Refuse records that a worker refuses r UNKNOWN_EPOCH (before
	// opening it: r is unauthenticated), unless the store holds a claim
	// of it: then it answers as Lookup. It records at most MaxRefused
	// headers per (C', N), so forgeries cannot block a real request's
	// claim (a claim with another header takes the entry over); past
	// that it answers Conflict.
	Refuse(ctx context.Context, r *Request, maxResends int) (Result, error)
	// Renew extends the leases of claims this worker holds (Owner) whose
	// application still handles them, by each request's Lease from now;
	// a lease that already lapsed is not renewed (copies may have been
	// told IN_DOUBT).
	Renew(ctx context.Context, rs []*Request) error
	// Reply stores the sealed reply to r, claimed by this worker; a nil
	// or empty sealed says the reply is not kept (too large). It does
	// nothing when the entry expired or is another request's.
	Reply(ctx context.Context, r *Request, sealed []byte) error
}

// ReplyBatcher is a Store that can store several replies in one round
// trip (a pipeline); a REP socket uses it for replies that are ready
// together.
type ReplyBatcher interface {
	Replies(ctx context.Context, rs []*Request, sealed [][]byte) error
}

// ErrUnavailable: the store could not be reached or did not answer in
// time; nothing is known about the request.
var ErrUnavailable = errors.New("replaystore: store unavailable")

// IsRefusal reports whether a stored answer is an authenticated refusal
// (SPEC.md §5.3: 19 bytes, kind 0x12) rather than a sealed reply: the
// application refused the request after it was delivered, so every copy
// gets the same refusal, with no bound on resends (it never becomes
// REPLAYED, which would say the request ran).
func IsRefusal(answer []byte) bool {
	return len(answer) == 19 && answer[0] == 0x02 && answer[1] == 0x12
}

// MaxRefused is how many headers one (C', N) may have refused
// UNKNOWN_EPOCH in a store.
const MaxRefused = 4

// MaxReply is the largest sealed reply a store keeps (as the per-instance
// reply cache, SPEC.md §6.3); larger replies are stored as not kept.
const MaxReply = 64 << 10
