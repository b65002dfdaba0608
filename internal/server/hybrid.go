package server

// Hybrid mode on the server (SPEC.md §16): the KEM ciphertext or ticket
// of a request chained into its keys, tickets issued in REPLY_EXT, the
// encapsulation key announced on WANT_KEM, and the per-peer cache that
// makes a ticket request cost what an epoch request costs.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"slices"

	"github.com/secsock/secsock/internal/wire"
)

// peerHybrid is a peer's keys for one hybrid element (a ciphertext or a
// ticket) under one epoch, found by the cache key of SPEC.md §10 for types
// 1 and 2: the SHA-256 of a ciphertext element (its exact bytes, 32 bytes
// kept instead of 1,091), or a ticket element with its suite (a ticket
// opens for one suite only, cached or not).
type peerHybrid struct {
	id     [wire.EpochIDSize]byte
	ticket []byte                   // the ticket element; nil for a ciphertext
	suite  byte                     // a ticket's suite
	digest [32]byte                 // a ciphertext element's SHA-256
	prk    wire.Secret              // the hybrid secret
	q      [wire.KEMSharedSize]byte // a ciphertext's resumption secret, for the tickets of its siblings
	keys   [3]*wire.Keys
}

// kemDigest returns the SHA-256 of r's ciphertext element, computed once.
func (r *request) kemDigest() *[32]byte {
	if !r.hasDigest {
		r.digest, r.hasDigest = sha256.Sum256(r.KEM), true
	}
	return &r.digest
}

// matches reports whether h is the cache entry of r's hybrid element.
func (h *peerHybrid) matches(r *request) bool {
	if string(h.id[:]) != string(r.Epoch[3:]) {
		return false
	}
	if r.Ticket != nil {
		return h.ticket != nil && h.suite == r.Suite && bytes.Equal(h.ticket, r.Ticket)
	}
	return h.ticket == nil && h.digest == *r.kemDigest()
}

// hybridKeys returns p's keys for r's hybrid element and suite, if p has
// derived them, and for a ciphertext its resumption secret; the server's
// lock is held.
func (p *peer) hybridKeys(r *request) (*wire.Keys, *[wire.KEMSharedSize]byte) {
	for i := range p.hybrids {
		h := &p.hybrids[i]
		if h.matches(r) {
			if h.keys[r.Suite] == nil {
				h.keys[r.Suite] = p.derive(&h.prk, r.Suite)
			}
			return h.keys[r.Suite], &h.q
		}
	}
	return nil, nil
}

// maxPeerHybrids bounds the hybrid elements one peer keeps: a client
// holds one per epoch (a ciphertext, then a ticket), two epochs at a time.
const maxPeerHybrids = 4

// addHybrid records p's keys for r's hybrid element; the lock is held.
// The oldest goes when more than maxPeerHybrids would be kept.
func (p *peer) addHybrid(r *request, prk *wire.Secret, k *wire.Keys) {
	if cached, _ := p.hybridKeys(r); cached != nil {
		return
	}
	if len(p.hybrids) >= maxPeerHybrids {
		clear(p.hybrids[0].prk[:])
		clear(p.hybrids[0].q[:])
		p.hybrids = slices.Delete(p.hybrids, 0, 1)
	}
	h := peerHybrid{id: r.epoch.ID, prk: *prk, q: r.q}
	if r.Ticket != nil {
		h.ticket, h.suite = bytes.Clone(r.Ticket), r.Suite
	} else {
		h.digest = *r.kemDigest()
	}
	h.keys[r.Suite] = k
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
			clear(p.hybrids[i].q[:])
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
	r.ss = ss
	return nil
}

// hybridSecret chains r's hybrid element into the epoch secret prkE for
// server key S. ok is false for a ticket that does not open for this
// session (SPEC.md §16.4).
func (r *request) hybridSecret(prkE *wire.Secret, server *[wire.KeySize]byte) (prk wire.Secret, ok bool) {
	switch {
	case r.KEM != nil:
		prk = wire.HybridSecret(prkE, &r.ss, r.epoch.Hybrid.Public, r.KEM)
		r.q, r.hasQ = wire.ResumptionSecret(&prk), true
		return prk, true
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
			el = wire.AppendElement(el, wire.ElemKEMCiphertext, h.KEMKeyValue())
		}
	}
	if r.KEM != nil && r.hasQ { // every request with a ciphertext gets a ticket, siblings too (§16.3)
		if rnd == nil {
			rnd = rand.Reader
		}
		var tr [wire.TicketRandSize]byte
		if _, err := io.ReadFull(rnd, tr[:]); err != nil {
			return nil, err
		}
		t := r.epoch.Hybrid.SealTicket(&tr, &r.q, &r.Eph, &r.p.serverPK, &r.epoch.ID, r.Suite)
		el = wire.AppendElement(el, wire.ElemKEMTicket, t)
	}
	return el, nil
}

// hybridRequired reports whether pol refuses r for lacking the mode: any
// message without a ciphertext or a ticket but the anonymous key-fetch
// ping (SPEC.md §16.5), so that a client without the mode does not even
// pass Authenticate with its identity box under X25519 alone.
func (r *request) hybridRequired() bool {
	return r.pol.Hybrid == HybridRequire && r.KEM == nil && r.Ticket == nil && !r.keyFetch()
}

// keyFetch reports whether r is the anonymous key-fetch ping: a ping of
// kind 0x03 asking for the hybrid keys, without a ciphertext or ticket.
func (r *request) keyFetch() bool {
	return r.pol.Hybrid != HybridOff && r.Kind == wire.KindPing && r.WantKEM && r.hybridElement() == nil
}

// answerKeyFetch answers an anonymous key-fetch ping from a sender that is
// not served otherwise (a client policy without anonymous clients): with
// the public keys only, and statelessly: its C' is not cached and it takes
// no reply-cache slot, so each costs the budget its scalar multiplications
// and cannot push anyone's kept replies out (SPEC.md §16.5). A copy gets
// the same public keys again; nothing is delivered, so there is nothing
// to deduplicate.
func (s *Server) answerKeyFetch(r *request, rnd io.Reader) Decision {
	tk := Ticket{key: ID{eph: r.Eph, counter: r.Counter}, keys: r.keys}
	var err error
	if tk.announce, err = r.replyElements(rnd); err != nil {
		return *drop(ReasonMalformed)
	}
	pong, err := s.seal(nil, tk, nil, rnd)
	if err != nil {
		return *drop(ReasonMalformed)
	}
	return Decision{Respond: pong, ServerKey: r.server, Ticket: tk, KeyFetch: true}
}
