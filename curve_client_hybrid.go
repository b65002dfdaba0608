package secsock

// The REQ side of the hybrid mode (SPEC.md §16.6): the server's ML-KEM
// keys by epoch, one encapsulation per short-term key and epoch, tickets
// instead of ciphertexts afterwards, and never a request outside the mode.

import (
	"crypto/mlkem"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"

	"github.com/secsock/secsock/internal/wire"
)

// hybridRecvMargin is what the hybrid mode adds to a wrapped socket's
// receive margin (maxSealOverhead): on a REP socket, a first request's
// ciphertext element and WANT_KEM; on a REQ socket, a reply's KEM_KEY and
// ticket elements. A body at the limit is then never cut by mangos.
const hybridRecvMargin = wire.KEMElementSize + 3 + wire.KEMKeyValueSize + 3 + wire.TicketElementSize

// kemKey is an encapsulation key the server announced for one epoch.
type kemKey struct {
	index uint32
	id    [wire.EpochIDSize]byte // the epoch key it goes with
	ek    *mlkem.EncapsulationKey768
	bytes []byte
}

// kemKeys are a client's announced ML-KEM keys, replaced whole.
type kemKeys struct {
	mu   sync.Mutex // serializes replacements
	keys atomic.Pointer[[]kemKey]
}

// maxKEMKeys is how many epochs' keys a client keeps: the current and
// the next, and one more across a boundary.
const maxKEMKeys = 3

// get returns the key of epoch index announced with the epoch key id.
func (k *kemKeys) get(index uint32, id [wire.EpochIDSize]byte) *kemKey {
	if l := k.keys.Load(); l != nil {
		for i := range *l {
			if (*l)[i].index == index && (*l)[i].id == id {
				return &(*l)[i]
			}
		}
	}
	return nil
}

// put keeps key, dropping the oldest beyond maxKEMKeys.
func (k *kemKeys) put(key kemKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var l []kemKey
	if old := k.keys.Load(); old != nil {
		for _, o := range *old {
			if o.index != key.index {
				l = append(l, o)
			}
		}
	}
	l = append(l, key)
	for len(l) > maxKEMKeys {
		oldest := 0
		for i := range l {
			if l[i].index < l[oldest].index {
				oldest = i
			}
		}
		l = append(l[:oldest], l[oldest+1:]...)
	}
	k.keys.Store(&l)
}

func (k *kemKeys) reset() { k.keys.Store(nil) }

// sessionHybrid is one short-term key's hybrid state in one epoch: its
// ciphertext (made once), then the ticket a reply brought.
type sessionHybrid struct {
	index      uint32
	kemElem    []byte
	kemKeys    *wire.Keys
	q          [wire.KEMSharedSize]byte // the resumption secret a ticket holds (§16.4)
	prkE       wire.Secret              // the epoch secret the ticket chains into
	ticketElem []byte
	ticketKeys *wire.Keys
}

// hybridEpoch returns the epoch index and key for a request at now, from
// the server's announcement; ok is false when none covers now. late says
// that now is in the last quarter of the announced current epoch, when
// the client fetches the next epoch's ML-KEM key ahead of time.
func hybridEpoch(a *wire.Announcement, now time.Time) (index uint32, pub [wire.KeySize]byte, late bool, ok bool) {
	if a == nil {
		return 0, pub, false, false
	}
	t := uint64(now.UnixMilli())
	var k uint64
	if t >= a.Start {
		k = (t - a.Start) / a.Length
	}
	switch k {
	case 0:
		return a.Index, a.Current, t >= a.Start+a.Length/4*3, true
	case 1:
		return a.Index + 1, a.Next, false, true
	}
	return 0, pub, false, false
}

// needKeyFetch reports whether a hybrid client lacks the keys to seal at
// now: the epoch key or the epoch's ML-KEM key.
func (c *curveClient) needKeyFetch(now time.Time) bool {
	if !c.cfg.hybrid {
		return false
	}
	idx, pub, _, ok := hybridEpoch(c.ann.Load(), now)
	return !ok || c.kem.get(idx, c.epochID(&pub)) == nil
}

// epochIDMemo is the id of one epoch public key, kept so that steady
// state computes no SHA-256 per message.
type epochIDMemo struct {
	pub [wire.KeySize]byte
	id  [wire.EpochIDSize]byte
}

// epochID returns the id of pub (SPEC.md §14.1), from a two-entry memo:
// the current and the next epoch's key.
func (c *curveClient) epochID(pub *[wire.KeySize]byte) [wire.EpochIDSize]byte {
	for i := range c.ids {
		if m := c.ids[i].Load(); m != nil && m.pub == *pub {
			return m.id
		}
	}
	m := &epochIDMemo{pub: *pub, id: wire.EpochID(pub)}
	c.ids[c.idNext.Add(1)%uint32(len(c.ids))].Store(m)
	return m.id
}

// hybridFor returns the session's hybrid state in epoch idx, encapsulating
// to kk on first use (the one ML-KEM operation per short-term key and
// epoch).
func (s *clientSession) hybridFor(idx uint32, e *clientEpoch, kk *kemKey) *sessionHybrid {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.hybrids {
		if h.index == idx {
			return h
		}
	}
	ss, ct := kk.ek.Encapsulate()
	h := &sessionHybrid{index: idx, kemElem: wire.KEMElement(ct), prkE: e.prk}
	var shared [wire.KEMSharedSize]byte
	copy(shared[:], ss)
	clear(ss)
	prk := wire.HybridSecret(&h.prkE, &shared, kk.bytes, h.kemElem)
	clear(shared[:])
	h.q = wire.ResumptionSecret(&prk) // what the ticket will hold
	h.kemKeys = wire.SessionKeys(&prk, s.keys.Suite)
	clear(prk[:])
	if len(s.hybrids) >= maxKEMKeys {
		s.hybrids = s.hybrids[1:]
	}
	s.hybrids = append(s.hybrids, h)
	return h
}

// elements returns what a request of h carries and its keys: the ticket
// once one arrived, else the ciphertext.
func (s *clientSession) elements(h *sessionHybrid) (kem, ticket []byte, keys *wire.Keys) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.ticketElem != nil {
		return nil, h.ticketElem, h.ticketKeys
	}
	return h.kemElem, nil, h.kemKeys
}

// sealHybrid seals a request or ping in the hybrid mode (SPEC.md §16.6):
// with the epoch's ticket or ciphertext, or, for a ping while the keys
// are lacking, the anonymous key-fetch ping. Data is never sealed without
// the mode.
func (c *curveClient) sealHybrid(dst, body []byte, ping bool, s *clientSession, n uint64, now time.Time) ([]byte, outstanding, error) {
	a := c.ann.Load()
	idx, pub, late, ok := hybridEpoch(a, now)
	kk := c.kem.get(idx, c.epochID(&pub))
	f := wire.RequestFields{Kind: wire.KindRequest, Suite: c.cfg.suite, Eph: s.eph, Counter: n, Timestamp: uint64(now.UnixMilli())}
	o := outstanding{sess: s, keys: s.keys, counter: n, hybrid: true}
	if !ok || kk == nil {
		if !ping {
			return nil, outstanding{}, fmt.Errorf("secsock: no ML-KEM key for this epoch (OptionHybrid is on): %w", ErrHybridUnsupported)
		}
		f.Kind, f.WantKEM, f.WantEpoch = wire.KindPing, true, !ok
		if ok {
			e, err := s.agree(&pub, wire.SessionKeys)
			if err != nil {
				return nil, outstanding{}, err
			}
			f.Epoch, o.keys = e.element, e.keys
		}
		o.keyFetch, o.want = true, f.WantEpoch
		return c.appendHybrid(dst, &f, o, nil, nil)
	}
	e, err := s.agree(&pub, wire.SessionKeys)
	if err != nil {
		return nil, outstanding{}, err
	}
	h := s.hybridFor(idx, e, kk)
	f.KEM, f.Ticket, o.keys = s.elements(h)
	if ping {
		f.Kind = wire.KindPing
	}
	if s.id != nil {
		f.Kind++
	}
	f.Epoch, o.hsess, o.hkem = e.element, h, f.KEM != nil
	f.WantEpoch = idx != a.Index // in epoch c+1 of the announcement: learn E_{c+2}
	f.WantKEM = late && c.kem.get(idx+1, c.epochID(&a.Next)) == nil
	o.want = f.WantEpoch
	return c.appendHybrid(dst, &f, o, s.id, body)
}

// appendHybrid seals f and keeps its header in o.
func (c *curveClient) appendHybrid(dst []byte, f *wire.RequestFields, o outstanding, id *wire.Identity, body []byte) ([]byte, outstanding, error) {
	start := len(dst)
	out := wire.AppendRequest(dst, f, o.keys, id, body)
	hl := wire.HeaderSize + int(binary.BigEndian.Uint16(out[start+52:]))
	if hl <= len(o.header) {
		o.hlen = uint8(copy(o.header[:], out[start:start+hl]))
	} else {
		o.bigHeader = append([]byte(nil), out[start:start+hl]...)
	}
	return out, o, nil
}

// learnHybrid keeps what a verified REPLY_EXT to o brought: a KEM_KEY,
// and the ticket for the session's epoch when o carried the ciphertext
// (the first ticket wins; SPEC.md §16.3).
func (c *curveClient) learnHybrid(o outstanding, m map[byte][]byte) {
	if v := m[wire.ElemKEMCiphertext]; v != nil {
		if idx, id, ek, err := wire.ParseKEMKey(v); err == nil {
			c.kem.put(kemKey{index: idx, id: id, ek: ek, bytes: ek.Bytes()})
		}
	}
	t := m[wire.ElemKEMTicket]
	if t == nil || len(t) != wire.TicketSize || !o.hkem || o.hsess == nil {
		return
	}
	s, h := o.sess, o.hsess
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.ticketElem != nil {
		return
	}
	elem := wire.TicketElement(t)
	prk := wire.TicketSecret(&h.prkE, &h.q, elem)
	h.ticketKeys = wire.SessionKeys(&prk, s.keys.Suite)
	clear(prk[:])
	h.ticketElem = elem
}

// forgetTicket drops the session's state of o's epoch after a verified
// UNKNOWN_TICKET: the next request encapsulates again (SPEC.md §16.4).
func (c *curveClient) forgetTicket(o outstanding) {
	s := o.sess
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range s.hybrids {
		if h == o.hsess {
			clear(h.q[:])
			clear(h.prkE[:])
			s.hybrids = append(s.hybrids[:i], s.hybrids[i+1:]...)
			return
		}
	}
}

// hybridRefusal maps a verified refusal of a hybrid request: the mode's
// own reasons, and the client state they end.
func (c *curveClient) hybridRefusal(o outstanding, reason byte) error {
	switch reason {
	case wire.RefuseUnknownTicket:
		c.forgetTicket(o)
	case wire.RefuseUnsupportedFeature:
		return fmt.Errorf("%w (%w)", ErrHybridUnsupported, ErrUnsupportedFeature)
	case wire.RefuseUnknownEpoch:
		c.kem.reset() // with the epoch keys (openReply): fetch both again
	}
	return refusalError(reason)
}

// checkHybrid refuses OptionHybrid where it cannot hold: on PUSH/PULL, on
// a REQ socket without epoch keys, on a REP socket without an epoch seed.
func (c *config) checkHybrid(server bool) error {
	if c.hybrid == HybridOff {
		return nil
	}
	bad := func(why string) error {
		return fmt.Errorf("secsock: option %s %q: %s: %w", OptionHybrid, c.hybrid, why, mangos.ErrBadValue)
	}
	switch {
	case c.oneWay:
		return bad("PUSH and PULL sockets have no hybrid mode")
	case !server && c.epochs == EpochsOff:
		return bad("needs epoch keys (OptionEpochs is " + EpochsOff + ")")
	case server && c.epochSeed == nil:
		return bad("needs OptionEpochSeed (the ML-KEM keys are epoch keys)")
	}
	return nil
}

// ensureHybridKeys runs the key-fetch ping when a hybrid client lacks the
// keys for now, and once more when the first answer brought the epoch
// keys but not the ML-KEM key of the epoch now falls in (a boundary
// between the ping and now, or a clock ahead of the server's: the second
// ping names that epoch). Still lacking them is ErrHybridUnsupported.
func (s *Socket) ensureHybridKeys(e *engine, c *curveClient) error {
	for try := 0; try < 2 && c.needKeyFetch(c.cfg.now()); try++ {
		if err := s.ping(e); err != nil {
			return err // authenticated (UNSUPPORTED_FEATURE: ErrHybridUnsupported), or the socket's own error
		}
	}
	if c.needKeyFetch(c.cfg.now()) {
		return fmt.Errorf("secsock: the server announced no ML-KEM key: %w", ErrHybridUnsupported)
	}
	return nil
}
