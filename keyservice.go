package secsock

// The key service of sealed PUB/SUB (SPEC.md §18.4): one publisher's
// sender keys (one per generation) and tag keys, their rotation by time,
// by message count and on revocation, and the REQ/REP endpoint that hands
// them to authorized subscribers only.

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.nanomsg.org/mangos/v3"

	"github.com/secsock/secsock/internal/wire"
)

// KeyServiceConfig configures NewKeyService. Access is per publisher: an
// authorized subscriber gets the keys of every topic of the publisher.
type KeyServiceConfig struct {
	// Publisher is the publisher whose keys the service holds (required).
	Publisher PublisherKey
	// Subscribers are the long-term curve keys authorized to fetch the
	// keys. Default: none.
	Subscribers []PublicKey
	// RotateEvery is the longest a sender key seals. Default: 1 hour.
	RotateEvery time.Duration
	// RotateAfter is the most messages one sender key seals, counted over
	// every Publisher sharing the service. Default: 1<<20.
	RotateAfter uint64
	// TagKeyEvery is the longest a tag key is used. Default: 24 hours.
	TagKeyEvery time.Duration
	// Grace is how long a superseded key stays in bundles (subscribers
	// open messages still in flight with it), and how long before its use
	// a new tag key is announced, so it must exceed the subscribers'
	// Refresh. Default: 2 minutes.
	Grace time.Duration
	// Rand is the source of keys and ids. Default: crypto/rand.
	Rand io.Reader
	// Clock is the time source. Default: time.Now.
	Clock func() time.Time
}

// KeyService holds one publisher's keys. Its methods are safe for
// concurrent use.
type KeyService struct {
	mu       sync.Mutex
	cfg      KeyServiceConfig
	subs     map[PublicKey]bool
	sec      **heldKeys // behind two pointers: no fmt verb prints the keys
	sealed   uint64     // messages sealed under the current sender key
	created  time.Time  // of the current sender key
	tagAt    time.Time  // activation of the newest tag key
	nextID   uint64
	nextInst uint64 // instance ids handed to Publishers (F2 of the review: never two alike)
}

// heldKeys are a key service's sender and tag keys, oldest first: the
// last sender key is current; the last tag key may be announced ahead.
type heldKeys struct{ senders, tags []wire.BundleKey }

// NewKeyService returns a key service with a first sender key and tag key.
func NewKeyService(cfg KeyServiceConfig) (*KeyService, error) {
	if err := wire.CheckPublisherKey(cfg.Publisher[:]); err != nil {
		return nil, fmt.Errorf("secsock: key service: publisher key: %w", ErrBadKey)
	}
	if cfg.RotateEvery <= 0 {
		cfg.RotateEvery = time.Hour
	}
	if cfg.RotateAfter == 0 {
		cfg.RotateAfter = 1 << 20
	}
	if cfg.TagKeyEvery <= 0 {
		cfg.TagKeyEvery = 24 * time.Hour
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 2 * time.Minute
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	hk := new(heldKeys)
	k := &KeyService{cfg: cfg, subs: map[PublicKey]bool{}, sec: &hk}
	for _, s := range cfg.Subscribers {
		k.subs[s] = true
	}
	var id [8]byte
	if _, err := io.ReadFull(cfg.Rand, id[:]); err != nil {
		return nil, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	k.nextID = binary.BigEndian.Uint64(id[:]) >> 1 // random start: a restarted service reuses no id
	if _, err := io.ReadFull(cfg.Rand, id[:]); err != nil {
		return nil, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	k.nextInst = binary.BigEndian.Uint64(id[:])
	now := cfg.Clock()
	if err := k.newSender(now); err != nil {
		return nil, err
	}
	if err := k.newTag(now, now); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *KeyService) newKey(active time.Time) (wire.BundleKey, error) {
	b := wire.BundleKey{ID: k.nextID, ActiveFrom: uint64(active.UnixMilli())}
	k.nextID++
	if _, err := io.ReadFull(k.cfg.Rand, b.Key[:]); err != nil {
		return b, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	return b, nil
}

// newSender makes a new current sender key; the previous one retires
// after the grace period.
func (k *KeyService) newSender(now time.Time) error {
	b, err := k.newKey(now)
	if err != nil {
		return err
	}
	if n := len((*k.sec).senders); n > 0 {
		(*k.sec).senders[n-1].RetireAt = uint64(now.Add(k.cfg.Grace).UnixMilli())
	}
	(*k.sec).senders = append((*k.sec).senders, b)
	k.sealed, k.created = 0, now
	return nil
}

// newTag announces a tag key that becomes active at active; the one in
// use then retires a grace period later. A tag key announced but not yet
// active is replaced (after a revocation its holder must not keep it).
func (k *KeyService) newTag(now, active time.Time) error {
	if n := len((*k.sec).tags); n > 0 && (*k.sec).tags[n-1].ActiveFrom > uint64(now.UnixMilli()) {
		(*k.sec).tags = (*k.sec).tags[:n-1]
	}
	b, err := k.newKey(active)
	if err != nil {
		return err
	}
	if n := len((*k.sec).tags); n > 0 {
		(*k.sec).tags[n-1].RetireAt = uint64(active.Add(k.cfg.Grace).UnixMilli())
	}
	(*k.sec).tags = append((*k.sec).tags, b)
	k.tagAt = active
	return nil
}

// prune drops keys past their retirement, and the oldest retired ones
// beyond wire.MaxBundleKeys (which shortens their grace).
func (k *KeyService) prune(now time.Time) {
	ms := uint64(now.UnixMilli())
	keep := func(l []wire.BundleKey) []wire.BundleKey {
		out := l[:0]
		for _, b := range l {
			if b.RetireAt == 0 || b.RetireAt >= ms {
				out = append(out, b)
			}
		}
		if len(out) > wire.MaxBundleKeys {
			out = out[len(out)-wire.MaxBundleKeys:]
		}
		return out
	}
	h := *k.sec
	h.senders, h.tags = keep(h.senders), keep(h.tags)
}

// sealing returns the sender key and tag key for one message at now,
// rotating first when the sender key is past RotateEvery or RotateAfter
// or the tag key past TagKeyEvery.
func (k *KeyService) sealing(now time.Time) (sender, tag wire.BundleKey, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sealed >= k.cfg.RotateAfter || !now.Before(k.created.Add(k.cfg.RotateEvery)) {
		if err := k.newSender(now); err != nil {
			return sender, tag, err
		}
	}
	if !now.Before(k.tagAt.Add(k.cfg.TagKeyEvery - k.cfg.Grace)) {
		if err := k.newTag(now, now.Add(k.cfg.Grace)); err != nil {
			return sender, tag, err
		}
	}
	k.prune(now)
	k.sealed++
	ms := uint64(now.UnixMilli())
	for i := len((*k.sec).tags) - 1; i >= 0; i-- {
		if (*k.sec).tags[i].ActiveFrom <= ms {
			tag = (*k.sec).tags[i]
			break
		}
	}
	return (*k.sec).senders[len((*k.sec).senders)-1], tag, nil
}

// newInstance returns an instance id no other Publisher of this service
// has: the service counts them, so instances sharing its sender keys
// never share an instance key, whatever their randomness (SPEC.md §18.2).
func (k *KeyService) newInstance() [wire.PubInstance]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	var id [wire.PubInstance]byte
	binary.BigEndian.PutUint64(id[:], k.nextInst)
	k.nextInst++
	return id
}

// Authorized reports whether subscriber c may fetch keys. Serve installs
// it as the REP socket's OptionAuthorizer.
func (k *KeyService) Authorized(c PublicKey) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.subs[c]
}

// Authorize adds subscriber c.
func (k *KeyService) Authorize(c PublicKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.subs[c] = true
}

// Revoke removes subscriber c and rotates at once: the next message is
// sealed under a sender key c cannot fetch, and a new tag key (which c
// cannot fetch either) is announced to take over after the grace
// period. Messages sealed before Revoke stay readable to c.
func (k *KeyService) Revoke(c PublicKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.subs, c)
	now := k.cfg.Clock()
	if err := k.newSender(now); err != nil {
		return err
	}
	return k.newTag(now, now.Add(k.cfg.Grace))
}

// Rotate starts a new sender key now.
func (k *KeyService) Rotate() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.newSender(k.cfg.Clock())
}

// RotateTagKey announces a new tag key that publishers use from one
// grace period on; subscribers resubscribe when they learn it.
func (k *KeyService) RotateTagKey() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.cfg.Clock()
	return k.newTag(now, now.Add(k.cfg.Grace))
}

// bundle returns the keys a subscriber gets now.
func (k *KeyService) bundle() wire.Bundle {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.bundleLocked()
}

// bundleFor returns the bundle for subscriber c if c is authorized, both
// under one lock: a Revoke cannot fall between the check and the copy
// (F1 of the review), so no answer to c holds a key made by its Revoke.
func (k *KeyService) bundleFor(c PublicKey) (wire.Bundle, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.subs[c] {
		return wire.Bundle{}, false
	}
	return k.bundleLocked(), true
}

func (k *KeyService) bundleLocked() wire.Bundle {
	k.prune(k.cfg.Clock())
	return wire.Bundle{
		Publisher: append([]byte(nil), k.cfg.Publisher[:]...),
		Senders:   append([]wire.BundleKey(nil), (*k.sec).senders...),
		Tags:      append([]wire.BundleKey(nil), (*k.sec).tags...),
	}
}

// Serve answers key requests on rep, a REP socket with mechanism curve,
// until rep is closed (it then returns nil). It sets rep's
// OptionAuthorizer to Authorized, so unauthorized subscribers are
// refused NOT_AUTHORIZED by the protocol, and it checks every request's
// proven client key again (a session opened before a Revoke gets
// KEY_DENIED, not keys). Anonymous requests are denied.
func (k *KeyService) Serve(rep *Socket) error {
	if err := rep.SetOption(OptionAuthorizer, Authorizer(k.Authorized)); err != nil {
		return err
	}
	for {
		body, peer, err := rep.RecvPeer()
		switch {
		case errors.Is(err, mangos.ErrClosed):
			return nil
		case errors.Is(err, mangos.ErrRecvTimeout):
			continue
		case err != nil:
			return fmt.Errorf("secsock: key service: %w", err)
		}
		if err := rep.Send(k.answer(body, peer)); err != nil && !errors.Is(err, mangos.ErrClosed) {
			return fmt.Errorf("secsock: key service: %w", err)
		}
	}
}

// answer is the body answering a key request from peer.
func (k *KeyService) answer(body []byte, peer Peer) []byte {
	pub, err := wire.ParseKeyRequest(body)
	if err != nil || PublisherKey(pub) != k.cfg.Publisher || peer.Key.IsZero() {
		return []byte{wire.Version, wire.KindKeyDenied}
	}
	b, ok := k.bundleFor(peer.Key)
	if !ok {
		return []byte{wire.Version, wire.KindKeyDenied}
	}
	return wire.AppendBundle(nil, &b)
}
