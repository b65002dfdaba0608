package secsock

// The PULL side of the pipeline pattern (SPEC.md §15): every received
// message goes through the server's checks, as a REP worker's requests
// do, and only those that pass reach the application. The rest are
// dropped, counted (Stats) and reported (OptionEventHook): a PULL socket
// has no way to tell the pusher.

import (
	"fmt"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/pull"

	"github.com/secsock/secsock/replaystore"
)

// NewPullSocket returns a new PULL socket with mechanism "none". With
// OptionMechanism "curve" and OptionSecretKey (the service's secret key,
// which every PULL worker of the service holds, like a REP worker) it
// opens and checks every message: the client policy (OptionAuthorizedKeys,
// OptionAuthorizer, OptionAllowAnonymous), freshness (OptionFreshness,
// OptionMaxClockSkew), replay (at most once per socket), the work budget
// and epoch keys (OptionEpochSeed) apply as on REP. Recv returns only
// messages that pass; the others are dropped and counted in Stats by
// Reason and reported to OptionEventHook, as Recv reads them (a PULL
// socket reads nothing until Recv is called, as on mangos). ServerStats
// reports its caches.
// With mangos.OptionRecvDeadline, Recv gives up once the deadline has
// passed when a dropped message arrives, and otherwise waits for the
// deadline counted from the last dropped message: at most twice the
// deadline in all.
//
// Freshness is checked when Recv reads a message: one that waited in
// queues (the pusher's, devices', this socket's) longer than
// OptionFreshness after it was sealed is dropped as ReasonStale, so a
// pipeline with backlogs needs OptionFreshness above its longest queueing
// time (SPEC.md §15.5).
func NewPullSocket() (*Socket, error) { return newSocket(pull.NewSocket) }

// recvOneWay returns the next message that passes the checks; opened says
// its body is a buffer of its own.
func (s *Socket) recvOneWay() (*mangos.Message, bool, Peer, error) {
	var end time.Time
	if dl := durationOption(s.sock, mangos.OptionRecvDeadline); dl > 0 {
		end = time.Now().Add(dl)
	}
	for {
		if s.closed.Load() {
			return nil, false, Peer{}, mangos.ErrClosed
		}
		m, err := s.sock.RecvMsg()
		if err != nil {
			return nil, false, Peer{}, err
		}
		e := s.engine() // the options in force when the message arrived
		switch {
		case e.err != nil:
			m.Free()
			return nil, false, Peer{}, e.err
		case e.passThrough():
			return m, false, Peer{Plain: true}, nil
		case e.server == nil:
			m.Free() // a PUSH socket receives nothing
			return nil, false, Peer{}, fmt.Errorf("secsock: a PUSH socket cannot receive: %w", mangos.ErrProtoOp)
		}
		in := e.server.openRequestFrom(newBody(len(m.Body)), m.Body, m.Pipe)
		if in.deliver && e.requestAuth != nil && !e.requestAuth(in.peer, in.body) {
			in.deliver, in.reason = false, ReasonNotAuthorized // nobody to tell: dropped
		}
		if in.deliver && in.store != nil {
			in.deliver, in.reason = pullClaim(e.server.(*curveServer).shared.Load(), in.store)
		}
		if in.deliver {
			if in.account != nil {
				in.account() // counted as accepted only when delivered
			}
			m.Body = in.body
			s.stats.opened.Add(1)
			return m, true, in.peer, nil
		}
		pipe := m.Pipe
		m.Free()
		s.reject(e, Event{Reason: in.reason, Peer: in.client, ServerKey: in.server, Pipe: pipe})
		if !end.IsZero() && !time.Now().Before(end) {
			return nil, false, Peer{}, mangos.ErrRecvTimeout
		}
	}
}

// pullClaim asks the shared replay store about a message that passed
// every check of this worker (SPEC.md §15.5): only the claim's winner
// delivers it, and it ends its claim at once ("answered, reply not
// kept"), so that copies at other workers are dropped as replayed
// without waiting for a lease. deliver is false with the reason to drop.
func pullClaim(sr *sharedReplay, sc *storeCall) (deliver bool, reason Reason) {
	res, err := sr.claim(sc, 0)
	switch {
	case err != nil && sr.perInstance:
		sr.counts.fallbacks.Add(1)
		return true, ReasonNone
	case err != nil:
		return false, ReasonStoreUnavailable
	case res.State == replaystore.Claimed:
		sr.counts.claims.Add(1)
		sr.storeReply(sc, nil)
		return true, ReasonNone
	case res.State == replaystore.Pending || res.State == replaystore.Answered || res.State == replaystore.Replayed:
		return false, ReasonReplayed // delivered (or being delivered) by another worker
	case res.State == replaystore.Quiescent:
		sr.counts.quiescent.Add(1)
	default: // InDoubt, Conflict
		sr.counts.inDoubt.Add(1)
	}
	return false, ReasonInDoubt
}
