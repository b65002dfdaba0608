package secsock

// The SUB side of sealed PUB/SUB (SPEC.md §18): subscriptions are
// blinded tags (or clear topic prefixes) that the mangos SUB socket
// filters on; every message that passes the filter is checked in the
// order of SPEC §18.5 (trusted publisher, freshness and replay, the
// signature, the sender key, the AEAD, the topic's tag) and dropped,
// counted, when a check fails. Keys come from each publisher's key
// service over a sealed REQ socket.

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/sub"

	"github.com/secsock/secsock/internal/subreplay"
	"github.com/secsock/secsock/internal/wire"
)

// SubscriberConfig configures NewSubscriber.
type SubscriberConfig struct {
	// Publishers maps each trusted publisher to a REQ socket (mechanism
	// curve, with this subscriber's OptionSecretKey and the key service's
	// OptionServerKey, dialed) to its key service (required, non-empty).
	// Messages of any other publisher are dropped. A socket without a send
	// or receive deadline gets one of 10 seconds.
	Publishers map[PublisherKey]*Socket
	// ClearTopics expects clear topic prefixes instead of blinded tags;
	// it must match the publishers'. Default: false (blinded).
	ClearTopics bool
	// Freshness is how old a message may be when received. Default: 2 minutes.
	Freshness time.Duration
	// MaxClockSkew is how far ahead of this clock a message may be, and
	// how long before the subscriber's start a message may have been
	// published. Default: 10 seconds.
	MaxClockSkew time.Duration
	// Refresh is how often the key bundles are fetched again (new tag keys
	// are subscribed then; it must be below the services' Grace).
	// Default: 30 seconds.
	Refresh time.Duration
	// Clock is the time source. Default: time.Now.
	Clock func() time.Time
}

// SubStats counts a subscriber's messages (all uint64).
type SubStats struct {
	Delivered        uint64 // passed every check
	UnknownPublisher uint64 // publisher key not trusted
	Malformed        uint64 // layout or kind wrong
	Stale            uint64 // outside the freshness window, before the start, or below the replay window
	Duplicate        uint64 // (publisher, instance, counter) already delivered
	BadSignature     uint64 // forged or altered
	NoKey            uint64 // sender or tag key unknown or retired after a fetch
	CannotOpen       uint64 // AEAD failed
	TopicMismatch    uint64 // topic does not match its tag, or not subscribed
	KeyFetches       uint64 // key bundles fetched
}

// SubMessage is one delivered message.
type SubMessage struct {
	Topic     string
	Body      []byte
	Publisher PublisherKey
	Instance  [wire.PubInstance]byte
	Counter   uint64
	Time      time.Time // the publisher's timestamp
}

// Subscriber is a sealed SUB socket. Its methods are safe for concurrent
// use; Recv may be called by one goroutine at a time.
type Subscriber struct {
	sock   mangos.Socket
	cfg    SubscriberConfig
	replay *subreplay.State
	pubs   map[PublisherKey]**pubKeys // two pointers: no fmt verb prints the keys
	done   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool

	mu      sync.Mutex
	topics  map[string]bool // blinded: exact topics; clear: prefixes
	exact   map[string]bool // clear: exact topics
	subbed  map[string]bool // prefixes set on the SUB socket
	counts  [10]atomic.Uint64
	fetchMu sync.Mutex
}

// pubKeys is what one subscriber holds of one publisher's keys.
type pubKeys struct {
	src       *Socket
	mu        sync.Mutex
	senders   map[uint64]wire.BundleKey
	tags      map[uint64]wire.BundleKey
	lastFetch time.Time
	fetched   bool
	// unresolved holds the (sender, tag) id pairs a message-triggered
	// fetch did not resolve, with when to forget them (ms): replays of
	// such messages trigger no further fetch (F3 of the review).
	unresolved map[[2]uint64]uint64
}

// maxUnresolved bounds pubKeys.unresolved; when it is full, message-
// triggered fetches are limited to one per minRefetch.
const maxUnresolved = 256

const (
	cDelivered = iota
	cUnknownPublisher
	cMalformed
	cStale
	cDuplicate
	cBadSignature
	cNoKey
	cCannotOpen
	cTopicMismatch
	cKeyFetches
)

// minRefetch bounds key fetches triggered by messages (signed by a
// trusted publisher) naming an unknown key once maxUnresolved pairs are
// remembered: at most one per publisher per interval.
const minRefetch = time.Second

// NewSubscriber returns a subscriber on a new mangos SUB socket. It
// fetches nothing yet: Subscribe does.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if len(cfg.Publishers) == 0 {
		return nil, fmt.Errorf("secsock: subscriber: no trusted publisher: %w", ErrNoKey)
	}
	if cfg.Freshness <= 0 {
		cfg.Freshness = 2 * time.Minute
	}
	if cfg.MaxClockSkew <= 0 {
		cfg.MaxClockSkew = 10 * time.Second
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Subscriber{cfg: cfg, pubs: map[PublisherKey]**pubKeys{}, done: make(chan struct{}),
		topics: map[string]bool{}, exact: map[string]bool{}, subbed: map[string]bool{}}
	for k, src := range cfg.Publishers {
		if err := wire.CheckPublisherKey(k[:]); err != nil {
			return nil, fmt.Errorf("secsock: subscriber: publisher key %v: %w", k, ErrBadKey)
		}
		if src == nil {
			return nil, fmt.Errorf("secsock: subscriber: no key service socket for publisher %v: %w", k, ErrNoKey)
		}
		if err := checkKeySource(src); err != nil {
			return nil, err
		}
		if err := boundFetch(src); err != nil {
			return nil, err
		}
		pk := &pubKeys{src: src, senders: map[uint64]wire.BundleKey{}, tags: map[uint64]wire.BundleKey{}}
		s.pubs[k] = &pk
	}
	s.replay = subreplay.New(uint64(cfg.Clock().UnixMilli()), uint64(cfg.Freshness.Milliseconds()), uint64(cfg.MaxClockSkew.Milliseconds()))
	sk, err := sub.NewSocket()
	if err != nil {
		return nil, err
	}
	s.sock = sk
	s.wg.Add(1)
	go s.refresher()
	return s, nil
}

// fetchDeadline is the send and receive deadline NewSubscriber gives a key
// service socket that has none: a fetch runs inside Recv and the
// refresher, and must not block them forever when the service is down.
const fetchDeadline = 10 * time.Second

// checkKeySource refuses a key service socket that is not sealed to a
// server key with this subscriber's own key (F5 of the review): with
// mechanism none anyone on the path could answer with bundles of its
// choosing, and an anonymous request is always denied.
func checkKeySource(src *Socket) error {
	if m, err := src.GetOption(OptionMechanism); err != nil || m != any(MechanismCurve) {
		return fmt.Errorf("secsock: subscriber: key service socket must have mechanism %q: %w", MechanismCurve, mangos.ErrBadValue)
	}
	if v, err := src.GetOption(OptionServerKey); err != nil || v.(PublicKey).IsZero() {
		return fmt.Errorf("secsock: subscriber: key service socket has no OptionServerKey: %w", ErrNoKey)
	}
	if _, err := src.GetOption(OptionPublicKey); err != nil {
		return fmt.Errorf("secsock: subscriber: key service socket has no OptionSecretKey (the service denies anonymous requests): %w", ErrNoKey)
	}
	return nil
}

func boundFetch(src *Socket) error {
	for _, o := range []string{mangos.OptionSendDeadline, mangos.OptionRecvDeadline} {
		if v, err := src.GetOption(o); err == nil {
			if d, ok := v.(time.Duration); ok && d > 0 {
				continue
			}
		}
		if err := src.SetOption(o, fetchDeadline); err != nil {
			return fmt.Errorf("secsock: subscriber: key service socket: %w", err)
		}
	}
	return nil
}

// Socket returns the mangos SUB socket, for Listen, Dial and options
// (mangos.OptionRecvDeadline applies to Recv). Subscribing on it
// directly bypasses the tags.
func (s *Subscriber) Socket() mangos.Socket { return s.sock }

// Listen listens on addr.
func (s *Subscriber) Listen(addr string) error { return s.sock.Listen(addr) }

// Dial dials addr.
func (s *Subscriber) Dial(addr string) error { return s.sock.Dial(addr) }

// Close stops the key refresher and closes the SUB socket (not the key
// service sockets, which the caller owns).
func (s *Subscriber) Close() error {
	if s.closed.Swap(true) {
		return mangos.ErrClosed
	}
	close(s.done)
	s.wg.Wait()
	return s.sock.Close()
}

// Stats returns the counters.
func (s *Subscriber) Stats() SubStats {
	c := func(i int) uint64 { return s.counts[i].Load() }
	return SubStats{c(cDelivered), c(cUnknownPublisher), c(cMalformed), c(cStale), c(cDuplicate),
		c(cBadSignature), c(cNoKey), c(cCannotOpen), c(cTopicMismatch), c(cKeyFetches)}
}

// Subscribe subscribes to the exact topic: in blinded mode the tags of
// topic under every live tag key of every trusted publisher (fetching
// their keys first), in clear mode the topic with its terminator.
func (s *Subscriber) Subscribe(topic string) error {
	if len(topic) == 0 || len(topic) > wire.MaxTopic {
		return fmt.Errorf("secsock: subscribe: topic must be 1 to %d bytes: %w", wire.MaxTopic, mangos.ErrBadValue)
	}
	if s.cfg.ClearTopics {
		s.mu.Lock()
		s.exact[topic] = true
		s.mu.Unlock()
		return s.resubscribe()
	}
	for k, pk := range s.pubs {
		if err := s.fetchIfNever(k, *pk); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.topics[topic] = true
	s.mu.Unlock()
	return s.resubscribe()
}

// SubscribePrefix subscribes, in clear mode only, to every topic that
// starts with prefix (hierarchical topics such as "sensors/").
func (s *Subscriber) SubscribePrefix(prefix string) error {
	if !s.cfg.ClearTopics {
		return fmt.Errorf("secsock: subscribe: blinded tags match exact topics only (SPEC.md §18.3): %w", mangos.ErrBadValue)
	}
	if len(prefix) > wire.MaxTopic {
		return fmt.Errorf("secsock: subscribe: prefix over %d bytes: %w", wire.MaxTopic, mangos.ErrBadValue)
	}
	s.mu.Lock()
	s.topics[prefix] = true
	s.mu.Unlock()
	return s.resubscribe()
}

// Unsubscribe undoes Subscribe or SubscribePrefix.
func (s *Subscriber) Unsubscribe(topic string) error {
	s.mu.Lock()
	delete(s.topics, topic)
	delete(s.exact, topic)
	s.mu.Unlock()
	return s.resubscribe()
}

// wanted returns the SUB prefixes the subscriptions need now.
func (s *Subscriber) wanted(now time.Time) map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	if s.cfg.ClearTopics {
		for t := range s.exact {
			out[string(wire.SubscriptionPrefix(false, nil, []byte(t), true))] = true
		}
		for t := range s.topics {
			out[string(wire.SubscriptionPrefix(false, nil, []byte(t), false))] = true
		}
		return out
	}
	ms := uint64(now.UnixMilli())
	for _, pp := range s.pubs {
		pk := *pp
		pk.mu.Lock()
		for _, tk := range pk.tags {
			if tk.RetireAt != 0 && tk.RetireAt < ms {
				continue
			}
			for t := range s.topics {
				tag := wire.TopicTag(&tk.Key, []byte(t))
				out[string(wire.SubscriptionPrefix(true, &tag, nil, true))] = true
			}
		}
		pk.mu.Unlock()
	}
	return out
}

// resubscribe makes the SUB socket's subscriptions those wanted: both
// tags of a topic while two tag keys are live (SPEC.md §18.3).
func (s *Subscriber) resubscribe() error {
	want := s.wanted(s.cfg.Clock())
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range want {
		if !s.subbed[p] {
			if err := s.sock.SetOption(mangos.OptionSubscribe, []byte(p)); err != nil {
				return err
			}
			s.subbed[p] = true
		}
	}
	for p := range s.subbed {
		if !want[p] {
			if err := s.sock.SetOption(mangos.OptionUnsubscribe, []byte(p)); err != nil {
				return err
			}
			delete(s.subbed, p)
		}
	}
	return nil
}

// refresher fetches every bundle each Refresh and resubscribes.
func (s *Subscriber) refresher() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		for k, pk := range s.pubs {
			_ = s.fetch(k, *pk) // a failed fetch keeps the keys held; the next tick retries
		}
		_ = s.resubscribe()
	}
}

func (s *Subscriber) fetchIfNever(k PublisherKey, pk *pubKeys) error {
	pk.mu.Lock()
	done := pk.fetched
	pk.mu.Unlock()
	if done {
		return nil
	}
	return s.fetch(k, pk)
}

// fetch asks publisher k's key service for its bundle and replaces the
// keys held with it (minus those retired).
func (s *Subscriber) fetch(k PublisherKey, pk *pubKeys) error {
	if pk.src == nil { // only in the vector tests, which give keys directly
		return fmt.Errorf("secsock: no key service socket for publisher %v: %w", k, ErrNoKey)
	}
	s.fetchMu.Lock() // one REQ exchange at a time per socket
	defer s.fetchMu.Unlock()
	if err := pk.src.Send(wire.AppendKeyRequest(nil, k[:])); err != nil {
		return fmt.Errorf("secsock: fetching keys of publisher %v: %w", k, err)
	}
	ans, err := pk.src.Recv()
	if err != nil {
		return fmt.Errorf("secsock: fetching keys of publisher %v: %w", k, err)
	}
	s.counts[cKeyFetches].Add(1)
	if len(ans) == 2 && ans[0] == wire.Version && ans[1] == wire.KindKeyDenied {
		return fmt.Errorf("secsock: key service of publisher %v denied this subscriber: %w", k, ErrNotAuthorized)
	}
	b, err := wire.ParseBundle(ans, k[:])
	if err != nil {
		return fmt.Errorf("secsock: key bundle of publisher %v: %w", k, ErrMalformed)
	}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	pk.senders, pk.tags = map[uint64]wire.BundleKey{}, map[uint64]wire.BundleKey{}
	for _, x := range b.Senders {
		pk.senders[x.ID] = x
	}
	for _, x := range b.Tags {
		pk.tags[x.ID] = x
	}
	pk.fetched, pk.lastFetch = true, s.cfg.Clock()
	return nil
}

// keysHeld returns the sender key gen and tag key tagID of publisher pk
// that this subscriber holds, without fetching; retired says the sender
// key is held but past its RetireAt.
func keysHeld(pk *pubKeys, gen, tagID uint64, blinded bool, ms uint64) (sender, tag wire.BundleKey, found, retired bool) {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	sender, okS := pk.senders[gen]
	tag, okT := pk.tags[tagID]
	found = okS && (okT || !blinded)
	past := func(k wire.BundleKey) bool { return k.RetireAt != 0 && k.RetireAt < ms }
	return sender, tag, found, found && (past(sender) || blinded && past(tag))
}

// fetchFor fetches publisher k's bundle for a verified message naming key
// ids this subscriber does not hold, once per id pair (SPEC.md §18.4), and
// returns the keys if the bundle has them.
func (s *Subscriber) fetchFor(k PublisherKey, pk *pubKeys, gen, tagID uint64, blinded bool, now time.Time) (sender, tag wire.BundleKey, ok bool) {
	ms := uint64(now.UnixMilli())
	ids := [2]uint64{gen, tagID}
	pk.mu.Lock()
	for p, until := range pk.unresolved {
		if until <= ms {
			delete(pk.unresolved, p)
		}
	}
	_, known := pk.unresolved[ids]
	skip := known || (len(pk.unresolved) >= maxUnresolved && now.Sub(pk.lastFetch) < minRefetch)
	pk.mu.Unlock()
	if skip {
		return sender, tag, false
	}
	err := s.fetch(k, pk)
	sender, tag, found, retired := keysHeld(pk, gen, tagID, blinded, ms)
	if err != nil || !found {
		pk.mu.Lock()
		if pk.unresolved == nil {
			pk.unresolved = map[[2]uint64]uint64{}
		}
		if len(pk.unresolved) < maxUnresolved {
			pk.unresolved[ids] = ms + uint64((s.cfg.Freshness + s.cfg.MaxClockSkew).Milliseconds())
		}
		pk.mu.Unlock()
		return sender, tag, false
	}
	return sender, tag, !retired
}

// Recv returns the next message that passes every check. With
// mangos.OptionRecvDeadline on Socket() it returns mangos.ErrRecvTimeout
// when the deadline passes (counted again after each dropped message).
func (s *Subscriber) Recv() (*SubMessage, error) {
	for {
		b, err := s.sock.Recv()
		if err != nil {
			return nil, err
		}
		if m := s.open(b); m != nil {
			return m, nil
		}
	}
}

// Open checks and opens one sealed message as Recv does (for messages
// read by other means); nil when it is dropped (counted in Stats).
func (s *Subscriber) Open(b []byte) *SubMessage { return s.open(b) }

func (s *Subscriber) drop(c int) *SubMessage { s.counts[c].Add(1); return nil }

// open runs the checks of SPEC.md §18.5 in order, cheapest first.
func (s *Subscriber) open(b []byte) *SubMessage {
	now := s.cfg.Clock()
	ms := uint64(now.UnixMilli())
	m, err := wire.ParsePub(b)
	if err != nil || m.Blinded == s.cfg.ClearTopics {
		return s.drop(cMalformed)
	}
	pkey := PublisherKey(m.Publisher)
	pp := s.pubs[pkey]
	if pp == nil {
		return s.drop(cUnknownPublisher)
	}
	pk := *pp
	rk := subreplay.Key{Publisher: pkey, Instance: m.Instance}
	switch s.replay.Check(rk, m.Counter, m.Timestamp, ms) {
	case subreplay.Duplicate:
		return s.drop(cDuplicate)
	case subreplay.Stale, subreplay.Full:
		return s.drop(cStale)
	}
	// With the keys held, the AEAD goes first: an outsider's forgery costs
	// an HMAC and an AEAD, not a verification (F4 of the review); only a
	// verified message may make the subscriber fetch keys.
	sender, tag, found, retired := keysHeld(pk, m.Gen, m.TagKey, m.Blinded, ms)
	verified := false
	switch {
	case retired:
		return s.drop(cNoKey)
	case !found:
		if m.Verify() != nil {
			return s.drop(cBadSignature)
		}
		verified = true
		var ok bool
		if sender, tag, ok = s.fetchFor(pkey, pk, m.Gen, m.TagKey, m.Blinded, now); !ok {
			return s.drop(cNoKey)
		}
	}
	ik := wire.InstanceKey(&sender.Key, m.Publisher, m.Gen, &m.Instance)
	topic, body, err := m.Open(&ik)
	clear(ik[:])
	if errors.Is(err, wire.ErrOpen) {
		return s.drop(cCannotOpen)
	} else if err != nil {
		return s.drop(cMalformed)
	}
	if m.Blinded && m.CheckTag(&tag.Key, topic) != nil || !s.subscribed(string(topic)) {
		return s.drop(cTopicMismatch)
	}
	if !verified && m.Verify() != nil {
		return s.drop(cBadSignature)
	}
	switch s.replay.Commit(rk, m.Counter, m.Timestamp, ms) {
	case subreplay.Fresh:
	case subreplay.Duplicate:
		return s.drop(cDuplicate)
	default:
		return s.drop(cStale)
	}
	s.counts[cDelivered].Add(1)
	return &SubMessage{Topic: string(topic), Body: body, Publisher: pkey, Instance: m.Instance,
		Counter: m.Counter, Time: time.UnixMilli(int64(m.Timestamp))}
}

// subscribed reports whether topic is one of the subscriptions: exact
// topics, and in clear mode also prefixes (review F6: Open of a message
// read by other means gets the check the SUB filter would have made).
func (s *Subscriber) subscribed(topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.ClearTopics {
		return s.topics[topic]
	}
	if s.exact[topic] {
		return true
	}
	for p := range s.topics {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}
