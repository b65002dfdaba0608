package server

// Hybrid mode on the server (SPEC.md §16): the KEM ciphertext or ticket
// of a request chained into its keys, tickets issued in REPLY_EXT, the
// encapsulation key announced on WANT_KEM, and the per-peer cache that
// makes a ticket request cost what an epoch request costs.

import (
	"bytes"
	"crypto/rand"
	"io"
	"slices"

	"github.com/secsock/secsock/internal/wire"
)

// peerHybrid is a peer's keys for one hybrid element (a ciphertext or a
// ticket) under one epoch: the cache key of SPEC.md §10 for types 1 and 2.
type peerHybrid struct {
	id   [wire.EpochIDSize]byte
	elem []byte // the element's bytes, as received
	prk  wire.Secret
	keys [3]*wire.Keys
}

// hybridKeys returns p's keys for the hybrid element elem of epoch id and
// suite, if p has derived them; the server's lock is held.
func (p *peer) hybridKeys(id []byte, elem []byte, suite byte) *wire.Keys {
	for i := range p.hybrids {
		h := &p.hybrids[i]
		if string(h.id[:]) == string(id) && bytes.Equal(h.elem, elem) {
			if h.keys[suite] == nil {
				h.keys[suite] = p.derive(&h.prk, suite)
			}
			return h.keys[suite]
		}
	}
	return nil
}

// maxPeerHybrids bounds the hybrid elements one peer keeps: a client
// holds one per epoch (a ciphertext, then a ticket), two epochs at a time.
const maxPeerHybrids = 4

// addHybrid records p's keys for a hybrid element; the lock is held. The
// oldest goes when more than maxPeerHybrids would be kept.
func (p *peer) addHybrid(id [wire.EpochIDSize]byte, elem []byte, prk *wire.Secret, suite byte, k *wire.Keys) {
	if p.hybridKeys(id[:], elem, suite) != nil {
		return
	}
	if len(p.hybrids) >= maxPeerHybrids {
		clear(p.hybrids[0].prk[:])
		p.hybrids = slices.Delete(p.hybrids, 0, 1)
	}
	h := peerHybrid{id: id, elem: bytes.Clone(elem), prk: *prk}
	h.keys[suite] = k
	p.hybrids = append(p.hybrids, h)
}

// epochSecret returns p's epoch secret for epoch id, if p agreed with it;
// the lock is held.
func (p *peer) epochSecret(id []byte) (*wire.Secret, bool) {
	for i := range p.epochs {
		if string(p.epochs[i].id[:]) == string(id) {
			prk := p.epochs[i].prk
			return &prk, true
		}
	}
	return nil, false
}

// retainHybrids forgets p's hybrid keys of epochs that keep refuses.
func (p *peer) retainHybrids(keep func(id [wire.EpochIDSize]byte) bool) {
	kept := p.hybrids[:0]
	for i := range p.hybrids {
		if keep(p.hybrids[i].id) {
			kept = append(kept, p.hybrids[i])
		} else {
			clear(p.hybrids[i].prk[:])
		}
	}
	clear(p.hybrids[len(kept):])
	p.hybrids = kept
}

// hybridServed reports whether pol serves r's hybrid elements: a request
// without them, or a server with the mode on and r's epoch key known.
func (r *request) hybridServed() bool {
	if !r.Hybrid() {
		return true
	}
	return r.pol.Hybrid != HybridOff && r.pol.Epochs != nil && (r.epoch == nil || r.epoch.Hybrid != nil)
}

// hybridElement returns r's ciphertext or ticket element, nil for none.
func (r *request) hybridElement() []byte {
	if r.KEM != nil {
		return r.KEM
	}
	return r.Ticket
}

// hybridCost is what r's hybrid part charges to the budget: one
// decapsulation for a ciphertext (SPEC.md §16.5); tickets cost none.
func (r *request) hybridCost() int {
	if r.KEM != nil {
		return 1
	}
	return 0
}

// decapsulate computes r.ss for a ciphertext: once per request, whatever
// the number of server keys tried.
func (r *request) decapsulate() *Decision {
	if r.KEM == nil {
		return nil
	}
	if r.epoch == nil || r.epoch.Hybrid == nil {
		return drop(ReasonUnsupported) // supported() refused it before; never reached
	}
	ss, err := r.epoch.Hybrid.Decapsulate(r.KEMValue())
	if err != nil {
		return drop(ReasonMalformed)
	}
	r.ss, r.hasSS = ss, true
	return nil
}

// hybridSecret chains r's hybrid element into the epoch secret prkE for
// server key S. ok is false for a ticket that does not open for this
// session (SPEC.md §16.4).
func (r *request) hybridSecret(prkE *wire.Secret, server *[wire.KeySize]byte) (prk wire.Secret, ok bool) {
	switch {
	case r.KEM != nil:
		return wire.HybridSecret(prkE, &r.ss, r.epoch.Hybrid.Public, r.KEM), true
	case r.Ticket != nil:
		q, err := r.epoch.Hybrid.OpenTicket(r.TicketValue(), &r.Eph, server, &r.epoch.ID, r.Suite)
		if err != nil {
			return prk, false
		}
		defer clear(q[:])
		return wire.TicketSecret(prkE, &q, r.Ticket), true
	}
	return *prkE, true
}

// replyElements are the REPLY_EXT elements of r's answer, in type order:
// EPOCH_KEYS on WANT_EPOCH, KEM_KEY on WANT_KEM, and a ticket for a
// request that carried a ciphertext (its random part read from rnd). Nil:
// answer with a plain REPLY.
func (r *request) replyElements(rnd io.Reader) ([]byte, error) {
	pol := r.pol
	var el []byte
	if r.WantEpoch && pol.Epochs != nil {
		el = append(el, pol.Epochs.Announce...)
	}
	if pol.Hybrid == HybridOff || pol.Epochs == nil {
		return el, nil
	}
	if r.WantKEM {
		// The key of the request's epoch to a client that lacks it (no
		// hybrid element), of the next epoch to one that has it.
		want := pol.Epochs.Current
		switch {
		case r.epoch != nil && r.hybridElement() != nil:
			want = r.epoch.Index + 1
		case r.epoch != nil:
			want = r.epoch.Index
		}
		if h := pol.Epochs.kemKey(want); h != nil {
			el = wire.AppendElement(el, wire.ElemKEMCiphertext, wire.KEMKeyValue(h.Index, h.Public))
		}
	}
	if r.hasSS {
		if rnd == nil {
			rnd = rand.Reader
		}
		var tr [wire.TicketRandSize]byte
		if _, err := io.ReadFull(rnd, tr[:]); err != nil {
			return nil, err
		}
		t := r.epoch.Hybrid.SealTicket(&tr, &r.ss, &r.Eph, &r.p.serverPK, &r.epoch.ID, r.Suite)
		el = wire.AppendElement(el, wire.ElemKEMTicket, t)
	}
	return el, nil
}

// hybridRequired reports whether pol refuses r for lacking the mode: a
// request (not a ping) without a ciphertext or a ticket.
func (r *request) hybridRequired() bool {
	return r.pol.Hybrid == HybridRequire && !wire.IsPing(r.Kind) && r.KEM == nil && r.Ticket == nil
}

// keyFetch reports whether r is an anonymous ping asking for the hybrid
// keys: answered even where anonymous clients are not served (it delivers
// nothing and learns only public keys), so that a vouched client never
// sends its identity box outside the mode (SPEC.md §16.5).
func (r *request) keyFetch() bool {
	return r.pol.Hybrid != HybridOff && r.Kind == wire.KindPing && r.WantKEM && r.hybridElement() == nil
}
