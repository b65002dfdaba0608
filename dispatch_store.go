package secsock

// REP dispatch with a shared replay store (SPEC.md §17): a request that
// passed every check is claimed (one round trip on the reader) before it
// is queued for the application; a copy of a request claimed by another
// worker waits for that claim on a goroutine of its own, never on a
// reader.

import (
	"time"

	"go.nanomsg.org/mangos/v3"

	servercore "github.com/secsock/secsock/internal/server"
	"github.com/secsock/secsock/internal/wire"
	"github.com/secsock/secsock/replaystore"
)

// shared asks the store about in (a request to claim, or a duplicate to
// look up) and answers it, reporting handled; otherwise deliver in as
// usual, with its claim (claimed) or without (the store failed, in
// per-instance mode). in is a copy: the reader's stays on its stack.
func (d *dispatcher) shared(e *engine, c *ictx, m *mangos.Message, in inbound) (handled, claimed bool) {
	cs := e.server.(*curveServer)
	sr := cs.shared.Load()
	sc := in.store
	var res replaystore.Result
	var err error
	if in.reason == ReasonUnknownEpoch {
		d.refuseShared(e, cs, sr, c, m, &in)
		return true, false
	}
	if in.deliver {
		res, err = sr.claim(sc, cs.maxResends())
		switch {
		case err == nil && res.State == replaystore.Claimed:
			sr.counts.claims.Add(1)
			sr.hold(sc)
			return false, true
		case err != nil && sr.perInstance:
			sr.counts.fallbacks.Add(1)
			return false, false // delivered without the store: nothing to write back
		}
	} else if !sr.spareToken() { // copies that cost round trips are bounded
		res = replaystore.Result{State: replaystore.InDoubt}
	} else {
		res, err = sr.lookup(sc, cs.maxResends())
		if err != nil && sr.perInstance {
			res, err = replaystore.Result{State: replaystore.InDoubt}, nil
		}
	}
	o := cs.decide(sr, sc, res, err)
	if o.wait {
		d.waitElsewhere(e, cs, sr, c, m, &in, res.LeaseLeft)
		return true, false
	}
	cs.settle(sc, o.settle)
	routes := []*ictx{c}
	if in.deliver {
		routes = append(routes, d.takeWaiting(in.ticket.key)...)
	}
	m.Free()
	d.answerRoutes(e, cs, sr, sc, o, routes, &in)
	return true, false
}

// waitElsewhere waits, on its own goroutine, for another worker's live
// claim of in to end. A delivered request (its slot pending here) gets a
// pending record, so that local duplicates keep their routes for the
// outcome as they do for a request the application holds.
func (d *dispatcher) waitElsewhere(e *engine, cs *curveServer, sr *sharedReplay, c *ictx, m *mangos.Message, in *inbound, left time.Duration) {
	m.Free()
	sc := in.store
	var r *delivered
	if in.deliver {
		r = &delivered{d: d, ctx: c, srv: e.server, tk: in.ticket}
		id := ticketID(in.ticket)
		d.mu.Lock()
		d.pending[id] = r
		var extra []*ictx
		if w := d.waiting[id]; w != nil {
			delete(d.waiting, id)
			d.nWaiting -= len(w)
			n := min(len(w), maxDupRoutes)
			r.dups, extra = append(r.dups, w[:n]...), w[n:]
		}
		d.mu.Unlock()
		for _, x := range extra {
			d.put(x)
		}
	}
	routes := func() []*ictx {
		if r == nil {
			return []*ictx{c}
		}
		dups := r.finish()
		return append([]*ictx{r.ctx}, dups...)
	}
	select {
	case sr.waiters <- struct{}{}:
	default: // too many waiting: drop as a retry; a later copy asks again
		cs.settle(sc, servercore.Elsewhere)
		for _, rc := range routes() {
			d.put(rc)
		}
		d.s.reject(e, Event{Reason: ReasonRetry, Peer: in.client, ServerKey: in.server})
		return
	}
	go func() {
		defer func() { <-sr.waiters }()
		res, err := cs.waitFor(sr, sc, left, d.quit)
		o := cs.decide(sr, sc, res, err)
		if err != nil || o.wait {
			// Claimed by another worker: never claimable here again. Still
			// pending past the bound, or the store failed: drop or refuse
			// this copy; a later one asks the store again.
			o.settle = servercore.Elsewhere
			if o.wait {
				o = outcome{reason: ReasonRetry, settle: servercore.Elsewhere}
			}
		}
		cs.settle(sc, o.settle)
		d.answerRoutes(e, cs, sr, sc, o, routes(), in)
	}()
}

// refuseShared records an UNKNOWN_EPOCH refusal of in in the store, on
// a goroutine of its own, before sending it (SPEC.md §17.2): the client
// will fall back to a new request, so no instance may run this one. If
// the store holds a claim of it instead, the copy is answered as a
// duplicate; past the rate of recorded refusals, or with the store
// failing, it is refused IN_DOUBT or STORE_UNAVAILABLE (no fallback).
func (d *dispatcher) refuseShared(e *engine, cs *curveServer, sr *sharedReplay, c *ictx, m *mangos.Message, in *inbound) {
	m.Free()
	sc := in.store
	inDoubt := outcome{respond: cs.refusal(sc, wire.RefuseInDoubt), reason: ReasonInDoubt}
	if !sr.spareToken() {
		d.answerRoutes(e, cs, sr, sc, inDoubt, []*ictx{c}, in)
		return
	}
	select {
	case sr.waiters <- struct{}{}:
	default:
		d.answerRoutes(e, cs, sr, sc, inDoubt, []*ictx{c}, in)
		return
	}
	go func() {
		defer func() { <-sr.waiters }()
		res, err := sr.refuse(sc, cs.maxResends())
		if err == nil && res.State == replaystore.Pending {
			res, err = cs.waitFor(sr, sc, res.LeaseLeft, d.quit)
		}
		o := cs.decide(sr, sc, res, err)
		if err != nil && sr.perInstance {
			o = outcome{respond: cs.refusal(sc, wire.RefuseUnknownEpoch), reason: ReasonUnknownEpoch}
		}
		if o.wait {
			o = outcome{reason: ReasonRetry}
		}
		d.answerRoutes(e, cs, sr, sc, o, []*ictx{c}, in)
	}()
}

// answerRoutes sends o to each route (the first copy's, then those of
// duplicates): refusals are the same bytes for every copy, a stored reply
// takes one resend from the store per further copy.
func (d *dispatcher) answerRoutes(e *engine, cs *curveServer, sr *sharedReplay, sc *storeCall, o outcome, routes []*ictx, in *inbound) {
	for i, rc := range routes {
		resp := o.respond
		if i > 0 && o.reason == ReasonRetry && resp != nil {
			res, err := sr.lookup(sc, cs.maxResends())
			if res.State != replaystore.Answered {
				res = replaystore.Result{State: replaystore.Replayed}
			}
			resp = cs.decide(sr, sc, res, err).respond
		}
		d.s.reject(e, Event{Reason: o.reason, Peer: in.client, ServerKey: in.server})
		if resp == nil {
			d.put(rc)
			continue
		}
		msg := mangos.NewMessage(len(resp))
		msg.Body = append(msg.Body, resp...)
		d.send(rc, msg, true)
	}
}

// takeWaiting returns the routes of duplicates that waited for id's
// registration (which now will not come).
func (d *dispatcher) takeWaiting(id servercore.ID) []*ictx {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.waiting[id]
	if w != nil {
		delete(d.waiting, id)
		d.nWaiting -= len(w)
	}
	return w
}
