package secsock

// The REP side's use of a shared replay store (SPEC.md §17): the state
// machine decides, this adapter asks the store and turns its answers into
// settlements of the state machine and answers on the wire.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	servercore "github.com/secsock/secsock/internal/server"
	"github.com/secsock/secsock/internal/wire"
	"github.com/secsock/secsock/replaystore"
)

const (
	// maxStoreWaiters bounds the duplicates that wait, each on its own
	// goroutine, for another worker's claim to end; past it they are
	// dropped as retries (the client resends).
	maxStoreWaiters = 256
	// replyQueueSize bounds the replies waiting to be written to the
	// store (past it the sender writes its own); maxReplyBatch is how many
	// go in one round trip.
	replyQueueSize = 4096
	maxReplyBatch  = 128
	// maxRefusalsPerSecond bounds the store operations a worker spends
	// per second (burst as many) on messages it does not deliver:
	// UNKNOWN_EPOCH refusals to record and lookups for copies; past it
	// they are refused IN_DOUBT, which needs no round trip.
	maxRefusalsPerSecond = 1024
	// maxWaitLeases bounds a copy's wait for a live claim, in leases
	// (the owner renews its lease while its application works).
	maxWaitLeases = 4
	// storeReaders is how many more readers a REP socket with a store
	// runs: each claim holds its reader for one store round trip.
	storeReaders = 16
	// storeMargin is added to an entry's lifetime (the freshness window
	// and the skew after T) so that it outlives every worker's check.
	storeMargin = time.Second
)

// sharedReplay is a REP socket's shared replay store and its settings.
type sharedReplay struct {
	store       replaystore.Store
	deadline    time.Duration // one store round trip, then fail closed
	lease       time.Duration
	perInstance bool     // on a store failure, deliver with per-instance checks only
	owner       [16]byte // this instance's name in claims
	waiters     chan struct{}
	replyQueue  chan pendingReply
	writing     atomic.Bool // a writer goroutine runs
	counts      storeCounts

	refMu     sync.Mutex // the token bucket of recorded refusals
	refTokens float64
	refLast   time.Time

	liveMu   sync.Mutex
	live     map[*storeCall]struct{} // claims whose application still works
	renewing bool                    // a renewer goroutine runs

}

// storeCounts are the store's counters (ReplayStoreStats).
type storeCounts struct {
	claims, hits, waits, inDoubt, quiescent, errors, fallbacks, replies atomic.Uint64
	ops, nanos                                                          atomic.Uint64
}

// ReplayStoreStats counts a REP socket's use of its shared replay store
// (OptionReplayStore). All counts are of store operations or requests.
type ReplayStoreStats struct {
	Claims    uint64 // requests this worker claimed and delivered
	Hits      uint64 // copies answered with a reply another worker stored
	Waits     uint64 // copies that waited for another worker's live claim
	InDoubt   uint64 // copies refused IN_DOUBT: claimed elsewhere, lease lapsed without a reply (or a conflicting claim)
	Quiescent uint64 // requests refused IN_DOUBT: dated before the store's generation change plus the skew
	Errors    uint64 // store operations that failed or missed OptionReplayStoreDeadline
	Fallbacks uint64 // requests delivered without the store after an error (OptionReplayStorePerInstance)
	Replies   uint64 // sealed replies written to the store
	// Operations and Latency: store round trips made and their total time.
	Operations uint64
	Latency    time.Duration
}

func newSharedReplay(c *config) *sharedReplay {
	if c.replayStore == nil {
		return nil
	}
	sr := &sharedReplay{
		store: c.replayStore, deadline: c.storeDeadline, lease: c.storeLease, perInstance: c.storePerInstance,
		waiters: make(chan struct{}, maxStoreWaiters), replyQueue: make(chan pendingReply, replyQueueSize),
	}
	sr.refTokens, sr.refLast = maxRefusalsPerSecond, time.Now()
	if _, err := rand.Read(sr.owner[:]); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return sr
}

func (sr *sharedReplay) stats() ReplayStoreStats {
	c := &sr.counts
	return ReplayStoreStats{
		Claims: c.claims.Load(), Hits: c.hits.Load(), Waits: c.waits.Load(), InDoubt: c.inDoubt.Load(),
		Quiescent: c.quiescent.Load(), Errors: c.errors.Load(), Fallbacks: c.fallbacks.Load(),
		Replies: c.replies.Load(), Operations: c.ops.Load(), Latency: time.Duration(c.nanos.Load()),
	}
}

// storeCall is one request's business with the store: its name there, and
// what the adapter needs to answer copies later.
type storeCall struct {
	req    replaystore.Request
	header []byte // H, for refusals
	tk     servercore.Ticket
}

// request names the request of d for the store (SPEC.md §17.1).
func (sr *sharedReplay) request(d *servercore.Decision, server PublicKey, now uint64, pol *servercore.Policy) *storeCall {
	tk := d.Ticket
	sc := &storeCall{header: append([]byte(nil), d.Header...), tk: tk}
	r := &sc.req
	fp := sha256.Sum256(server[:])
	copy(r.Service[:], fp[:])
	r.Eph, r.Counter, r.Header = tk.Eph(), tk.Counter(), sha256.Sum256(d.Header)
	r.Timestamp, r.Now, r.Skew = tk.Timestamp(), now, pol.Skew
	r.Owner, r.Lease = sr.owner, sr.lease
	if end := r.Timestamp + pol.Window + pol.Skew; end > now {
		r.TTL = time.Duration(end-now)*time.Millisecond + storeMargin
	}
	r.TTL = max(r.TTL, r.Lease+storeMargin)
	return sc
}

// recordsRefusal reports whether d, an UNKNOWN_EPOCH refusal, must be
// recorded in the store before it is sent (SPEC.md §17.2): a request
// inside the freshness window, which an instance with the epoch could
// still accept.
func (sr *sharedReplay) recordsRefusal(d *servercore.Decision, now uint64, pol *servercore.Policy) bool {
	if d.Reason != servercore.ReasonUnknownEpoch || d.Header == nil {
		return false
	}
	t := d.Ticket.Timestamp()
	return t+pol.Window >= now && t <= now+pol.Skew
}

// spareToken takes one of the store operations per second that a worker
// spends on messages it will not deliver: refusals to record (they come
// from unauthenticated messages: a flood must not fill the store) and
// lookups for copies of requests handled elsewhere (a captured request
// must not drive the store at line rate); false when they are spent.
func (sr *sharedReplay) spareToken() bool {
	sr.refMu.Lock()
	defer sr.refMu.Unlock()
	now := time.Now()
	sr.refTokens = min(float64(maxRefusalsPerSecond), sr.refTokens+now.Sub(sr.refLast).Seconds()*maxRefusalsPerSecond)
	sr.refLast = now
	if sr.refTokens < 1 {
		return false
	}
	sr.refTokens--
	return true
}

func (sr *sharedReplay) refuse(sc *storeCall, maxResends int) (replaystore.Result, error) {
	return sr.do(func(ctx context.Context) (replaystore.Result, error) {
		return sr.store.Refuse(ctx, &sc.req, maxResends)
	})
}

// do runs one store operation within the deadline, counting it.
func (sr *sharedReplay) do(f func(ctx context.Context) (replaystore.Result, error)) (replaystore.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sr.deadline)
	defer cancel()
	t0 := time.Now()
	res, err := f(ctx)
	sr.counts.ops.Add(1)
	sr.counts.nanos.Add(uint64(time.Since(t0)))
	if err != nil {
		sr.counts.errors.Add(1)
		if !errors.Is(err, replaystore.ErrUnavailable) {
			err = errors.Join(replaystore.ErrUnavailable, err)
		}
	}
	return res, err
}

func (sr *sharedReplay) claim(sc *storeCall, maxResends int) (replaystore.Result, error) {
	return sr.do(func(ctx context.Context) (replaystore.Result, error) { return sr.store.Claim(ctx, &sc.req, maxResends) })
}

func (sr *sharedReplay) lookup(sc *storeCall, maxResends int) (replaystore.Result, error) {
	return sr.do(func(ctx context.Context) (replaystore.Result, error) {
		return sr.store.Lookup(ctx, &sc.req, maxResends)
	})
}

// hold keeps sc's claim live while the application works on it: a
// renewer extends the leases of held claims every third of a lease, so a
// slow application is not taken for a dead one (SPEC.md §17.1).
func (sr *sharedReplay) hold(sc *storeCall) {
	sr.liveMu.Lock()
	defer sr.liveMu.Unlock()
	if sr.live == nil {
		sr.live = make(map[*storeCall]struct{})
	}
	sr.live[sc] = struct{}{}
	if !sr.renewing {
		sr.renewing = true
		go sr.renew()
	}
}

// release ends the renewal of sc's lease (answered, or abandoned: then
// the lease lapses and copies are in doubt).
func (sr *sharedReplay) release(sc *storeCall) {
	sr.liveMu.Lock()
	delete(sr.live, sc)
	sr.liveMu.Unlock()
}

// releaseAll ends every renewal (the socket stops reading: a worker that
// stops is treated like one that died).
func (sr *sharedReplay) releaseAll() {
	sr.liveMu.Lock()
	clear(sr.live)
	sr.liveMu.Unlock()
}

// renew extends the held claims' leases until none is held.
func (sr *sharedReplay) renew() {
	for {
		time.Sleep(sr.lease / 3)
		sr.liveMu.Lock()
		if len(sr.live) == 0 {
			sr.renewing = false
			sr.liveMu.Unlock()
			return
		}
		rs := make([]*replaystore.Request, 0, len(sr.live))
		for sc := range sr.live {
			rs = append(rs, &sc.req)
		}
		sr.liveMu.Unlock()
		_, _ = sr.do(func(ctx context.Context) (replaystore.Result, error) {
			return replaystore.Result{}, sr.store.Renew(ctx, rs)
		})
	}
}

// storeReply queues the sealed reply to a request this worker claimed
// for the writer, which stores the replies queued together in one round
// trip (the reply is already on its way to the client: copies at other
// workers wait on the lease meanwhile). A full queue writes inline.
func (sr *sharedReplay) storeReply(sc *storeCall, sealed []byte) {
	select {
	case sr.replyQueue <- pendingReply{sc, sealed}:
		if sr.writing.CompareAndSwap(false, true) {
			go sr.writeReplies()
		}
	default:
		sr.writeBatch([]pendingReply{{sc, sealed}})
	}
}

type pendingReply struct {
	sc     *storeCall
	sealed []byte
}

// writeReplies drains the queue in batches and ends when it is empty.
func (sr *sharedReplay) writeReplies() {
	batch := make([]pendingReply, 0, maxReplyBatch)
	for {
		batch = batch[:0]
	fill:
		for len(batch) < maxReplyBatch {
			select {
			case p := <-sr.replyQueue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			sr.writeBatch(batch)
			continue
		}
		sr.writing.Store(false)
		// A reply queued after the drain and before the flag cleared
		// started no writer: take it on.
		if len(sr.replyQueue) == 0 || !sr.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

func (sr *sharedReplay) writeBatch(batch []pendingReply) {
	_, _ = sr.do(func(ctx context.Context) (replaystore.Result, error) {
		if b, ok := sr.store.(replaystore.ReplyBatcher); ok && len(batch) > 1 {
			rs, sealed := make([]*replaystore.Request, len(batch)), make([][]byte, len(batch))
			for i, p := range batch {
				rs[i], sealed[i] = &p.sc.req, p.sealed
			}
			return replaystore.Result{}, b.Replies(ctx, rs, sealed)
		}
		for _, p := range batch {
			if err := sr.store.Reply(ctx, &p.sc.req, p.sealed); err != nil {
				return replaystore.Result{}, err
			}
		}
		return replaystore.Result{}, nil
	})
	sr.counts.replies.Add(uint64(len(batch)))
}

// refusal makes the refusal of sc's request for code.
func (s *curveServer) refusal(sc *storeCall, code byte) []byte {
	return s.state.Load().Refusal(sc.tk, sc.header, code)
}

// settle records the store's answer in the state machine.
func (s *curveServer) settle(sc *storeCall, how servercore.Settlement) {
	s.state.Load().Settle(sc.tk, how)
}

// maxResends is the fleet's bound on resends of one stored reply.
func (s *curveServer) maxResends() int {
	if l := s.lim.Load(); l != nil {
		return l.MaxResends
	}
	return servercore.DefaultLimits().MaxResends
}

// outcome is what a store answer means for one copy of a request: the
// bytes to send (nil: nothing), the reason it counts under, and how the
// state machine settles it.
type outcome struct {
	respond []byte
	reason  Reason
	settle  servercore.Settlement
	wait    bool // another worker's claim is live
}

// decide maps a store answer (or error) to an outcome.
func (s *curveServer) decide(sr *sharedReplay, sc *storeCall, res replaystore.Result, err error) outcome {
	if err != nil {
		return outcome{respond: s.refusal(sc, wire.RefuseStoreUnavailable), reason: ReasonStoreUnavailable, settle: servercore.Unclaimed}
	}
	switch res.State {
	case replaystore.Answered:
		sr.counts.hits.Add(1)
		if replaystore.IsRefusal(res.Reply) && res.Reply[2] == wire.RefuseNotAuthorized {
			// the application refused it (a per-request authorizer): every copy gets that refusal
			return outcome{respond: res.Reply, reason: ReasonNotAuthorized, settle: servercore.Elsewhere}
		}
		return outcome{respond: res.Reply, reason: ReasonRetry, settle: servercore.Elsewhere}
	case replaystore.Replayed:
		return outcome{respond: s.refusal(sc, wire.RefuseReplayed), reason: ReasonReplayed, settle: servercore.ReplayedElsewhere}
	case replaystore.Pending:
		return outcome{reason: ReasonRetry, settle: servercore.Elsewhere, wait: true}
	case replaystore.Refused:
		return outcome{respond: s.refusal(sc, wire.RefuseUnknownEpoch), reason: ReasonUnknownEpoch, settle: servercore.RefusedEpoch}
	case replaystore.Quiescent:
		sr.counts.quiescent.Add(1)
	default: // InDoubt, Conflict
		sr.counts.inDoubt.Add(1)
	}
	return outcome{respond: s.refusal(sc, wire.RefuseInDoubt), reason: ReasonInDoubt, settle: servercore.InDoubt}
}

// waitFor polls the store, backing off, until the claim of sc ends or
// the wait bound passes: the lease left, as long as the owner renews it,
// and at most maxWaitLeases leases in all.
func (s *curveServer) waitFor(sr *sharedReplay, sc *storeCall, left time.Duration, quit <-chan struct{}) (replaystore.Result, error) {
	sr.counts.waits.Add(1)
	start := time.Now()
	limit := start.Add(maxWaitLeases * sr.lease)
	until := start.Add(min(left, sr.lease) + 10*time.Millisecond)
	pause := time.Millisecond
	for {
		t := time.NewTimer(pause)
		select {
		case <-quit:
			t.Stop()
			return replaystore.Result{State: replaystore.Pending}, nil
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
		res, err := sr.lookup(sc, s.maxResends())
		if err == nil && res.State == replaystore.Pending {
			until = time.Now().Add(min(res.LeaseLeft, sr.lease) + 10*time.Millisecond) // renewed by a live owner
			if until.After(limit) {
				until = limit
			}
		}
		if err != nil || res.State != replaystore.Pending || time.Now().After(until) {
			return res, err
		}
	}
}
