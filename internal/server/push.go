package server

import (
	"errors"

	"github.com/secsock/secsock/internal/wire"
)

// The PULL side (SPEC.md §15): the checks of §6 on PUSH messages, with
// every answer replaced by a drop, since a PULL socket has no way back to
// the pusher. Replay state is the REP side's (peers, windows, tombstones);
// there is no reply cache, since nothing is ever answered.

// errOneWay: SealReply on a PULL instance.
var errOneWay = errors.New("server: a PULL instance seals no replies (SPEC.md §15)")

// openPush runs SPEC.md §15's checks on one received body. Every outcome
// but Deliver is a drop: Respond is always nil.
func (s *Server) openPush(dst, b []byte, now uint64, pol *Policy) Decision {
	parsed, err := wire.ParsePush(b)
	switch err {
	case nil:
	case wire.ErrVersion:
		if !wire.IsSecsock(b) {
			return *drop(ReasonNotSecsock) // a plain SP body (§15.2 step 1)
		}
		return *drop(ReasonUnknownVersion)
	case wire.ErrKind:
		return *drop(ReasonUnknownKind) // REQ requests, replies, anything else
	default:
		return *drop(ReasonMalformed)
	}
	r := &request{Request: parsed, now: now, pol: pol}
	// Checks that need no secret come before the budget: without a
	// refusal to make, they cost no scalar multiplication.
	if !r.Supported() || r.WantEpoch || r.Hybrid() {
		return *drop(ReasonUnsupported) // a pusher cannot be announced anything (nor given a ticket, SPEC.md §16)
	}
	if r.Epoch != nil && pol.Epochs.find(r.Epoch[3:]) == nil {
		return *drop(ReasonUnknownEpoch)
	}
	if d := s.lookup(r); d != nil {
		return silent(d)
	}
	body, d := s.requestKey(dst, r)
	if d != nil {
		return silent(d)
	}
	var dec Decision
	if wire.IsVouched(r.Kind) {
		if d := s.identify(r); d != nil {
			return silent(d)
		}
		dec.Client, dec.Vouched = r.client, true
	} else if pol.Restricted() && !pol.AllowAnonymous {
		return *drop(ReasonNotAuthorized)
	}
	dec.ServerKey = r.server
	return s.acceptPush(r, body, dec)
}

// silent turns a REP answer (hint or refusal) into a PULL drop with the
// same reason and the same facts about the sender.
func silent(d *Decision) Decision {
	out := *d
	out.Respond = nil
	return out
}

// acceptPush runs §15's steps 8 to 10: freshness, replay, accept. A
// duplicate is dropped, never answered: there is no reply cache.
func (s *Server) acceptPush(r *request, body []byte, dec Decision) Decision {
	t, now, pol := r.Timestamp, r.now, r.pol
	if t+pol.Window < now || t > now+pol.Skew {
		return *drop(ReasonStale)
	}
	dec.Epoch = r.epoch != nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers.inDoubt(&r.Eph, t, r.Counter) {
		return *drop(ReasonInDoubt)
	}
	p := r.p
	if r.new || s.peers.get(&r.Eph) != p {
		// New, or evicted while this message was opened (the lock was
		// released): accept it on a cached peer, or its N would reach
		// no tombstone and a replay would be accepted again.
		p = s.peers.add(p, now, s.keep(pol)) // or the copy that won a race
	}
	if !p.filter.Accept(r.Counter) {
		if p.filter.TooOld(r.Counter) {
			return *drop(ReasonInDoubt)
		}
		return *drop(ReasonReplayed)
	}
	p.maxT, p.maxN = max(p.maxT, t), max(p.maxN, r.Counter)
	s.peers.touch(p)
	dec.Ticket = Ticket{key: ID{eph: r.Eph, counter: r.Counter}, t: t}
	dec.Header = r.Header // for the shared replay store's claim
	dec.Deliver, dec.Body = true, body
	return dec
}
