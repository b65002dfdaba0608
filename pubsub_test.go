package secsock

// Sealed PUB/SUB (SPEC.md §18): each test plays the attacker of one
// property and would fail without the defence named in its comment.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/sub"
	"go.nanomsg.org/mangos/v3/protocol/xpub"
	"go.nanomsg.org/mangos/v3/protocol/xsub"

	"github.com/secsock/secsock/internal/wire"
)

// add moves the clock (epoch_test.go's fakeClock) by d; PUB/SUB tests
// give it to the key service, publishers and subscribers (the REQ/REP
// key fetch keeps the real clock).
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// psWorld is one publisher with its key service and its subscribers.
type psWorld struct {
	t       *testing.T
	clock   *fakeClock
	sign    SigningKey
	keys    *KeyService
	svcKey  SecretKey
	svcAddr string
	pub     *Publisher
	pubAddr string
	clear   bool
}

func newPSWorld(t *testing.T, clear bool, subs []PublicKey, tune func(*KeyServiceConfig)) *psWorld {
	t.Helper()
	w := &psWorld{t: t, clock: &fakeClock{t: time.Now()}, svcKey: mustKey(t), clear: clear}
	var err error
	if w.sign, err = GenerateSigningKey(); err != nil {
		t.Fatal(err)
	}
	cfg := KeyServiceConfig{Publisher: w.sign.Public(), Subscribers: subs, Clock: w.clock.now}
	if tune != nil {
		tune(&cfg)
	}
	if w.keys, err = NewKeyService(cfg); err != nil {
		t.Fatal(err)
	}
	rep := newRep(t, w.svcKey)
	w.svcAddr = inprocAddr(t)
	if err := rep.Listen(w.svcAddr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.keys.Serve(rep) }()
	t.Cleanup(func() {
		rep.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	w.pub = w.newPublisher()
	w.pubAddr = inprocAddr(t)
	if err := w.pub.Listen(w.pubAddr); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *psWorld) newPublisher() *Publisher {
	p, err := NewPublisher(PublisherConfig{Signing: w.sign, Keys: w.keys, ClearTopics: w.clear})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { p.Close() })
	return p
}

// keySource is a REQ socket of subscriber key sk to the key service.
func (w *psWorld) keySource(sk SecretKey) *Socket {
	req := newReq(w.t, w.svcKey.Public(), OptionSecretKey, sk)
	if err := req.Dial(w.svcAddr); err != nil {
		w.t.Fatal(err)
	}
	return req
}

// newSub returns a subscriber with key sk, not yet dialed.
func (w *psWorld) newSub(sk SecretKey) *Subscriber {
	s, err := NewSubscriber(SubscriberConfig{
		Publishers:  map[PublisherKey]*Socket{w.sign.Public(): w.keySource(sk)},
		ClearTopics: w.clear, Clock: w.clock.now, Refresh: time.Hour,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { s.Close() })
	mustSet(w.t, s.Socket(), mangos.OptionRecvDeadline, 200*time.Millisecond)
	return s
}

// connect dials s to the publisher and publishes on topic until s gets
// one (connections are asynchronous; the lost ones are counter gaps).
func (w *psWorld) connect(s *Subscriber, topic string) {
	w.t.Helper()
	if err := s.Dial(w.pubAddr); err != nil {
		w.t.Fatal(err)
	}
	w.await(s, w.pub, topic)
}

func (w *psWorld) await(s *Subscriber, p *Publisher, topic string) {
	w.t.Helper()
	for i := 0; i < 100; i++ {
		if err := p.Publish(topic, []byte("sync")); err != nil {
			w.t.Fatal(err)
		}
		if m, err := s.Recv(); err == nil && m.Topic == topic {
			return
		}
	}
	w.t.Fatalf("no message on %q reached the subscriber (stats %+v)", topic, s.Stats())
}

func mustRecv(t *testing.T, s *Subscriber) *SubMessage {
	t.Helper()
	m, err := s.Recv()
	if err != nil {
		t.Fatalf("Recv: %v (stats %+v)", err, s.Stats())
	}
	return m
}

func mustSeal(t *testing.T, p *Publisher, topic, body string) []byte {
	t.Helper()
	b, err := p.Seal(topic, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPubSubRoundTrip(t *testing.T) {
	for _, clear := range []bool{false, true} {
		t.Run(fmt.Sprintf("clear=%v", clear), func(t *testing.T) {
			sk := mustKey(t)
			w := newPSWorld(t, clear, []PublicKey{sk.Public()}, nil)
			s := w.newSub(sk)
			if err := s.Subscribe("weather"); err != nil {
				t.Fatal(err)
			}
			w.connect(s, "weather")
			if err := w.pub.Publish("sport", []byte("not for us")); err != nil {
				t.Fatal(err)
			}
			if err := w.pub.Publish("weather", []byte("rain")); err != nil {
				t.Fatal(err)
			}
			m := mustRecv(t, s)
			if m.Topic != "weather" || string(m.Body) != "rain" || m.Publisher != w.sign.Public() {
				t.Fatalf("got %q %q from %v", m.Topic, m.Body, m.Publisher)
			}
			if st := s.Stats(); st.TopicMismatch+st.BadSignature+st.CannotOpen+st.Malformed != 0 {
				t.Fatalf("drops in a clean run: %+v", st)
			}
		})
	}
}

// The wire carries neither the topic (blinded) nor the body in clear.
func TestPubSubConfidential(t *testing.T) {
	w := newPSWorld(t, false, nil, nil)
	b := mustSeal(t, w.pub, "secret-topic", "secret-body")
	if bytes.Contains(b, []byte("secret")) {
		t.Fatalf("plaintext on the wire: %x", b)
	}
	if got, want := len(b)-len("secret-body"), wire.PubOverhead(true, len("secret-topic")); got != want {
		t.Fatalf("overhead %d, PubOverhead %d", got, want)
	}
}

// Revocation: the key endpoint refuses the revoked key, by the protocol
// for a new session and by KEY_DENIED on a session opened before, and
// the revoked subscriber cannot read what is published after.
func TestPubSubRevocation(t *testing.T) {
	good, bad := mustKey(t), mustKey(t)
	w := newPSWorld(t, false, []PublicKey{good.Public(), bad.Public()}, nil)
	sg, sb := w.newSub(good), w.newSub(bad)
	for _, s := range []*Subscriber{sg, sb} {
		if err := s.Subscribe("news"); err != nil {
			t.Fatal(err)
		}
		w.connect(s, "news")
	}
	before := mustSeal(t, w.pub, "news", "before")
	if err := w.keys.Revoke(bad.Public()); err != nil {
		t.Fatal(err)
	}
	after := mustSeal(t, w.pub, "news", "after")

	if m := sb.Open(before); m == nil || string(m.Body) != "before" {
		t.Fatalf("messages before the revocation stay readable: %+v", sb.Stats())
	}
	if m := sb.Open(after); m != nil {
		t.Fatalf("revoked subscriber read %q", m.Body)
	}
	if sb.Stats().NoKey != 1 {
		t.Fatalf("want the post-rotation message dropped for want of its key: %+v", sb.Stats())
	}
	// The session opened before the revocation gets KEY_DENIED.
	pk := (*sb.pubs[w.sign.Public()])
	pk.lastFetch = time.Time{}
	if err := sb.fetch(w.sign.Public(), pk); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("fetch on the old session: %v, want ErrNotAuthorized", err)
	}
	// A new session is refused by the REP socket's policy.
	fresh := w.keySource(bad)
	if err := fresh.Authenticate(); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("new session of a revoked key: %v, want ErrNotAuthorized", err)
	}
	// The remaining subscriber follows the rotation at once.
	if m := sg.Open(after); m == nil || string(m.Body) != "after" {
		t.Fatalf("authorized subscriber lost the post-rotation message: %+v", sg.Stats())
	}
}

// A publisher that is not trusted, and a trusted publisher's key on a
// message signed by another, are both dropped.
func TestPubSubForgedPublisher(t *testing.T) {
	sk := mustKey(t)
	w := newPSWorld(t, false, []PublicKey{sk.Public()}, nil)
	s := w.newSub(sk)
	if err := s.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	other := newPSWorld(t, false, []PublicKey{sk.Public()}, nil)
	if m := s.Open(mustSeal(t, other.pub, "t", "x")); m != nil || s.Stats().UnknownPublisher != 1 {
		t.Fatalf("untrusted publisher accepted: %+v", s.Stats())
	}
	// other's message relabelled with w's key: the signature fails.
	b := mustSeal(t, other.pub, "t", "x")
	m, _ := wire.ParsePub(b)
	pk := w.sign.Public()
	copy(m.Publisher, pk[:])
	if got := s.Open(b); got != nil || s.Stats().BadSignature != 1 {
		t.Fatalf("relabelled message accepted: %+v", s.Stats())
	}
}

// A subscriber holds the sender key and tag key, so it can make a message
// that the AEAD accepts; the signature stops it from passing as the
// publisher to another subscriber.
func TestPubSubSubscriberForgesPublisher(t *testing.T) {
	mallory, victim := mustKey(t), mustKey(t)
	w := newPSWorld(t, false, []PublicKey{mallory.Public(), victim.Public()}, nil)
	sv := w.newSub(victim)
	if err := sv.Subscribe("orders"); err != nil {
		t.Fatal(err)
	}
	// Mallory fetches the keys as any subscriber does.
	sm := w.newSub(mallory)
	if err := sm.Subscribe("orders"); err != nil {
		t.Fatal(err)
	}
	pk := (*sm.pubs[w.sign.Public()])
	var sender, tag wire.BundleKey
	for _, k := range pk.senders {
		sender = k
	}
	for _, k := range pk.tags {
		tag = k
	}
	ownSign, _ := GenerateSigningKey()
	pub := w.sign.Public()
	f := wire.PubFields{Blinded: true, Tag: wire.TopicTag(&tag.Key, []byte("orders")), TagKey: tag.ID,
		Publisher: pub[:], Gen: sender.ID, Counter: 1, Timestamp: uint64(w.clock.now().UnixMilli())}
	ik := wire.InstanceKey(&sender.Key, pub[:], sender.ID, &f.Instance)
	forged, err := wire.AppendPub(nil, &f, &ik, ownSign.private(), []byte("orders"), []byte("sell everything"))
	if err != nil {
		t.Fatal(err)
	}
	// The AEAD alone would accept it: the forgery is otherwise perfect.
	m, _ := wire.ParsePub(forged)
	if _, body, err := m.Open(&ik); err != nil || string(body) != "sell everything" {
		t.Fatalf("forgery not AEAD-valid (test broken): %v", err)
	}
	if got := sv.Open(forged); got != nil || sv.Stats().BadSignature != 1 {
		t.Fatalf("subscriber's forgery accepted: %+v", sv.Stats())
	}
}

// A message of one topic presented as another: re-tagged (blinded) or
// with the clear topic rewritten, the AEAD fails (the header is its
// additional data); a signed message
// whose tag is not its topic's (a confused publisher) fails the tag
// check; a topic not subscribed is not delivered even if it arrives.
func TestPubSubCrossTopic(t *testing.T) {
	sk := mustKey(t)
	for _, clear := range []bool{false, true} {
		t.Run(fmt.Sprintf("clear=%v", clear), func(t *testing.T) {
			w := newPSWorld(t, clear, []PublicKey{sk.Public()}, nil)
			s := w.newSub(sk)
			if err := s.Subscribe("bbb"); err != nil {
				t.Fatal(err)
			}
			b := mustSeal(t, w.pub, "aaa", "for a")
			if clear {
				copy(b[2:5], "bbb")
			} else {
				_, tag, _ := w.keys.sealing(w.clock.now())
				tb := wire.TopicTag(&tag.Key, []byte("bbb"))
				copy(b[2:18], tb[:])
			}
			// The AEAD refuses it when the keys are held, else the signature.
			if m := s.Open(b); m != nil || s.Stats().CannotOpen+s.Stats().BadSignature != 1 {
				t.Fatalf("cross-topic message accepted: %+v", s.Stats())
			}
			if clear {
				return
			}
			// Signed with the real key, tag of "bbb", topic "aaa" inside.
			sender, tag, _ := w.keys.sealing(w.clock.now())
			pub := w.sign.Public()
			f := wire.PubFields{Blinded: true, Tag: wire.TopicTag(&tag.Key, []byte("bbb")), TagKey: tag.ID,
				Publisher: pub[:], Gen: sender.ID, Counter: 7, Timestamp: uint64(w.clock.now().UnixMilli())}
			ik := wire.InstanceKey(&sender.Key, pub[:], sender.ID, &f.Instance)
			bad, _ := wire.AppendPub(nil, &f, &ik, w.sign.private(), []byte("aaa"), []byte("x"))
			if m := s.Open(bad); m != nil || s.Stats().TopicMismatch != 1 {
				t.Fatalf("tag of another topic accepted: %+v", s.Stats())
			}
			if m := s.Open(mustSeal(t, w.pub, "aaa", "x")); m != nil || s.Stats().TopicMismatch != 2 {
				t.Fatalf("unsubscribed topic delivered: %+v", s.Stats())
			}
		})
	}
}

// Replays: a duplicate is dropped; a late joiner drops what was
// published before it joined; everything past the freshness window is
// dropped.
func TestPubSubReplay(t *testing.T) {
	sk := mustKey(t)
	w := newPSWorld(t, false, []PublicKey{sk.Public()}, nil)
	s1 := w.newSub(sk)
	if err := s1.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	old := mustSeal(t, w.pub, "t", "old")
	if s1.Open(old) == nil {
		t.Fatalf("first copy dropped: %+v", s1.Stats())
	}
	if s1.Open(old) != nil || s1.Stats().Duplicate != 1 {
		t.Fatalf("duplicate accepted: %+v", s1.Stats())
	}
	w.clock.add(11 * time.Second) // past MaxClockSkew (10 s), within Freshness (2 min)
	late := w.newSub(sk)
	if err := late.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	if late.Open(old) != nil || late.Stats().Stale != 1 {
		t.Fatalf("late joiner accepted an old message: %+v", late.Stats())
	}
	if late.Open(mustSeal(t, w.pub, "t", "new")) == nil {
		t.Fatalf("late joiner dropped a new message: %+v", late.Stats())
	}
	fresh := mustSeal(t, w.pub, "t", "x")
	w.clock.add(2*time.Minute + time.Millisecond)
	if s1.Open(fresh) != nil || s1.Stats().Stale != 1 {
		t.Fatalf("message past the freshness window accepted: %+v", s1.Stats())
	}
	future := mustSeal(t, w.pub, "t", "x")
	w.clock.add(-11 * time.Second)
	if s1.Open(future) != nil || s1.Stats().Stale != 2 {
		t.Fatalf("message from the future accepted: %+v", s1.Stats())
	}
}

// Instances of one publisher share its keys but count on their own:
// the same counter from two instances is two messages, and their AEAD
// keys differ (no nonce reuse).
func TestPubSubPerInstanceCounters(t *testing.T) {
	sk := mustKey(t)
	w := newPSWorld(t, false, []PublicKey{sk.Public()}, nil)
	p2 := w.newPublisher()
	s := w.newSub(sk)
	if err := s.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	a, b := mustSeal(t, w.pub, "t", "same"), mustSeal(t, p2, "t", "same")
	ma, mb := s.Open(a), s.Open(b)
	if ma == nil || mb == nil || ma.Counter != mb.Counter || ma.Instance == mb.Instance {
		t.Fatalf("instances: %+v %+v (stats %+v)", ma, mb, s.Stats())
	}
	pa, _ := wire.ParsePub(a)
	pb, _ := wire.ParsePub(b)
	if bytes.Equal(a[len(a)-64-20:len(a)-64], b[len(b)-64-20:len(b)-64]) || pa.Instance == pb.Instance {
		t.Fatal("two instances produced the same ciphertext for the same counter")
	}
	// Gaps are normal.
	for i := 0; i < 5; i++ {
		mustSeal(t, w.pub, "t", "lost")
	}
	if s.Open(mustSeal(t, w.pub, "t", "after gap")) == nil {
		t.Fatalf("message after a gap dropped: %+v", s.Stats())
	}
}

// Rotation by message count and by time; a superseded key opens messages
// during the grace period and not after.
func TestPubSubRotation(t *testing.T) {
	sk := mustKey(t)
	w := newPSWorld(t, false, []PublicKey{sk.Public()}, func(c *KeyServiceConfig) {
		c.RotateAfter, c.RotateEvery, c.Grace = 3, time.Hour, 30*time.Second
	})
	s := w.newSub(sk)
	if err := s.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	gen := func(b []byte) uint64 { m, _ := wire.ParsePub(b); return m.Gen }
	var msgs [][]byte
	for i := 0; i < 4; i++ {
		msgs = append(msgs, mustSeal(t, w.pub, "t", "x"))
	}
	if gen(msgs[0]) != gen(msgs[2]) || gen(msgs[3]) == gen(msgs[2]) {
		t.Fatalf("count rotation: generations %d %d %d", gen(msgs[0]), gen(msgs[2]), gen(msgs[3]))
	}
	w.clock.add(time.Hour)
	byTime := mustSeal(t, w.pub, "t", "x")
	if gen(byTime) == gen(msgs[3]) {
		t.Fatal("no rotation after RotateEvery")
	}
	w.clock.add(-time.Hour) // deliver in order of sealing time (freshness)
	for _, b := range msgs {
		if s.Open(b) == nil {
			t.Fatalf("rotated message dropped: %+v", s.Stats())
		}
	}
	// A message under a superseded key, received after its grace period
	// (but still fresh): dropped.
	w.clock.add(time.Hour)
	inGrace := mustSeal(t, w.pub, "t", "x")
	if err := w.keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	w.clock.add(20 * time.Second)
	if s.Open(inGrace) == nil {
		t.Fatalf("message in the grace period dropped: %+v", s.Stats())
	}
	stale := mustSeal(t, w.pub, "t", "z") // current key
	if err := w.keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	w.clock.add(31 * time.Second)
	(*s.pubs[w.sign.Public()]).lastFetch = time.Time{}
	before := s.Stats().NoKey
	if s.Open(stale) != nil || s.Stats().NoKey != before+1 {
		t.Fatalf("message under a key past its grace accepted: %+v", s.Stats())
	}
}

// Tag-key rotation: the subscriber subscribes to both tags while both
// are live, so a message under the new tag key passes the SUB filter
// (through real sockets); after the grace period the old tag is gone.
func TestPubSubTagKeyRotation(t *testing.T) {
	sk := mustKey(t)
	w := newPSWorld(t, false, []PublicKey{sk.Public()}, func(c *KeyServiceConfig) { c.Grace = time.Minute })
	s := w.newSub(sk)
	if err := s.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	w.connect(s, "t")
	if err := w.keys.RotateTagKey(); err != nil {
		t.Fatal(err)
	}
	refresh := func() {
		t.Helper()
		if err := s.fetch(w.sign.Public(), (*s.pubs[w.sign.Public()])); err != nil {
			t.Fatal(err)
		}
		if err := s.resubscribe(); err != nil {
			t.Fatal(err)
		}
	}
	refresh()
	if n := len(s.subbed); n != 2 {
		t.Fatalf("%d subscriptions during the tag rotation, want both tags", n)
	}
	oldTag := mustSeal(t, w.pub, "t", "x")[2:18]
	w.clock.add(time.Minute) // the new tag key is active
	b := mustSeal(t, w.pub, "t", "new tag")
	if bytes.Equal(b[2:18], oldTag) {
		t.Fatal("publisher kept the old tag key")
	}
	if err := w.pub.Socket().Send(b); err != nil {
		t.Fatal(err)
	}
	if m := mustRecv(t, s); string(m.Body) != "new tag" {
		t.Fatalf("got %q", m.Body)
	}
	w.clock.add(time.Minute + time.Second)
	refresh()
	if n := len(s.subbed); n != 1 {
		t.Fatalf("%d subscriptions after the grace period, want 1", n)
	}
}

// Raw xpub/xsub devices forward sealed messages untouched, over two hops.
func TestPubSubThroughDevices(t *testing.T) {
	sk := mustKey(t)
	w := newPSWorld(t, false, []PublicKey{sk.Public()}, nil)
	prev := w.pubAddr
	for hop := 0; hop < 2; hop++ {
		in, err := xsub.NewSocket()
		if err != nil {
			t.Fatal(err)
		}
		out, err := xpub.NewSocket()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(); out.Close() })
		addr := inprocAddr(t)
		if err := out.Listen(addr); err != nil {
			t.Fatal(err)
		}
		if err := in.Dial(prev); err != nil {
			t.Fatal(err)
		}
		go mangos.Device(in, out)
		prev = addr
	}
	s := w.newSub(sk)
	if err := s.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	if err := s.Dial(prev); err != nil {
		t.Fatal(err)
	}
	w.await(s, w.pub, "t")
	if err := w.pub.Publish("t", []byte("through two devices")); err != nil {
		t.Fatal(err)
	}
	if m := mustRecv(t, s); string(m.Body) != "through two devices" {
		t.Fatalf("got %q", m.Body)
	}
}

// A plain mangos SUB subscribed to the blinded prefix gets the messages
// (the filter is the body prefix) but cannot read them.
func TestPubSubSubscriptionPrefix(t *testing.T) {
	w := newPSWorld(t, false, nil, nil)
	_, tag, _ := w.keys.sealing(w.clock.now())
	tg := wire.TopicTag(&tag.Key, []byte("t"))
	prefix := wire.SubscriptionPrefix(true, &tg, nil, true)
	if prefix[0] != wire.Version || prefix[1] != wire.KindPubBlind || len(prefix) != 18 {
		t.Fatalf("prefix %x", prefix)
	}
	raw, err := sub.NewSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	mustSet(t, raw, mangos.OptionSubscribe, prefix, mangos.OptionRecvDeadline, 100*time.Millisecond)
	if err := raw.Dial(w.pubAddr); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		_ = w.pub.Publish("other", []byte("x"))
		_ = w.pub.Publish("t", []byte("x"))
		if b, err := raw.Recv(); err == nil {
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("filter passed %x", b[:18])
			}
			return
		}
	}
	t.Fatal("nothing passed the blinded prefix")
}

// Publisher keys: one accepted encoding per key; small-order,
// mixed-order and non-canonical points refused.
func TestPublisherKeyCanonical(t *testing.T) {
	sk, _ := GenerateSigningKey()
	good := sk.Public()
	if _, err := NewPublisherKey(good[:]); err != nil {
		t.Fatal(err)
	}
	identity := make([]byte, 32)
	identity[0] = 1
	nonCanonOne := bytes.Repeat([]byte{0xff}, 32) // y = 2^255-1 = p+18: non-canonical
	nonCanonOne[0], nonCanonOne[31] = 0xee, 0x7f  // y = p + 1: non-canonical encoding of y = 1
	order2 := make([]byte, 32)                    // y = -1: (0, -1) has order 2
	copy(order2, []byte{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	negZero := append([]byte(nil), identity...) // x = 0 with the sign bit set
	negZero[31] |= 0x80
	mixed := addOrder2(t, good[:])
	for name, b := range map[string][]byte{"identity": identity, "y=p+1": nonCanonOne, "order 2": order2,
		"-0": negZero, "mixed order": mixed, "short": good[:31]} {
		if _, err := NewPublisherKey(b); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: %v, want ErrBadKey", name, err)
		}
	}
	if _, err := NewSubscriber(SubscriberConfig{Publishers: map[PublisherKey]*Socket{PublisherKey(mixed): {}}}); !errors.Is(err, ErrBadKey) {
		t.Errorf("subscriber trusted a mixed-order key: %v", err)
	}
}

// Signing keys are never printed.
func TestSigningKeyNeverPrinted(t *testing.T) {
	sk, _ := GenerateSigningKey()
	seed, _ := decodeKeyText(sk.Reveal())
	var secret [KeySize]byte
	copy(secret[:], seed)
	f := newLeakFinder(secret)
	holder := struct{ k SigningKey }{sk}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "key", sk)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10v", "%-10v"} {
		for _, v := range []any{sk, &sk, holder, &holder} {
			if where := f.find(fmt.Sprintf(verb, v)); where != "" {
				t.Errorf("%s on %T leaks the seed (%s)", verb, v, where)
			}
		}
	}
	if where := f.find(logged.String()); where != "" {
		t.Errorf("slog leaks the seed (%s)", where)
	}
}

// Sender keys and tag keys are never printed: not by any verb on the key
// service, a publisher or a subscriber (pointers or values).
func TestPubSubKeysNeverPrinted(t *testing.T) {
	sk := mustKey(t)
	w := newPSWorld(t, false, []PublicKey{sk.Public()}, nil)
	s := w.newSub(sk)
	if err := s.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	b := w.keys.bundle()
	for _, k := range append(b.Senders, b.Tags...) {
		f := newLeakFinder(k.Key)
		var logged strings.Builder
		slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "svc", w.keys, "pub", w.pub, "sub", s)
		if where := f.find(logged.String()); where != "" {
			t.Errorf("slog leaks a key (%s)", where)
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			holder := struct {
				k *KeyService
				p *Publisher
				s *Subscriber
			}{w.keys, w.pub, s}
			for _, v := range []any{w.keys, w.pub, s, holder, &holder} {
				if where := f.find(fmt.Sprintf(verb, v)); where != "" {
					t.Errorf("%s on %T leaks a key (%s)", verb, v, where)
				}
			}
		}
	}
}

// A key service that does not answer bounds Subscribe (and so the fetches
// inside Recv) by the deadline NewSubscriber gives the REQ socket.
func TestPubSubFetchBounded(t *testing.T) {
	sign, _ := GenerateSigningKey()
	req, err := NewReqSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	mustSet(t, req, OptionMechanism, MechanismCurve, OptionServerKey, mustKey(t).Public(), OptionSecretKey, mustKey(t),
		mangos.OptionDialAsynch, true)
	if err := req.Dial(inprocAddr(t)); err != nil { // nobody listens
		t.Fatal(err)
	}
	s, err := NewSubscriber(SubscriberConfig{Publishers: map[PublisherKey]*Socket{sign.Public(): req}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, o := range []string{mangos.OptionSendDeadline, mangos.OptionRecvDeadline} {
		if v, _ := req.GetOption(o); v != fetchDeadline {
			t.Fatalf("%s = %v, want %v", o, v, fetchDeadline)
		}
	}
	mustSet(t, req, mangos.OptionSendDeadline, 50*time.Millisecond)
	if err := s.Subscribe("t"); err == nil {
		t.Fatal("Subscribe without a key service succeeded")
	}
}

// Review F1: a Revoke racing a key request never hands the revoked
// subscriber a key that the Revoke made.
func TestPubSubRevokeRacesKeyRequest(t *testing.T) {
	c := mustKey(t)
	sign, _ := GenerateSigningKey()
	req := wire.AppendKeyRequest(nil, func() []byte { p := sign.Public(); return p[:] }())
	for trial := 0; trial < 200; trial++ {
		ks, err := NewKeyService(KeyServiceConfig{Publisher: sign.Public(), Subscribers: []PublicKey{c.Public()}})
		if err != nil {
			t.Fatal(err)
		}
		ans := make(chan []byte)
		go func() { ans <- ks.answer(req, Peer{Key: c.Public()}) }()
		if err := ks.Revoke(c.Public()); err != nil {
			t.Fatal(err)
		}
		a := <-ans
		after := ks.bundle()
		newest := after.Senders[len(after.Senders)-1].ID
		if b, err := wire.ParseBundle(a, sign.Public().bytes()); err == nil {
			for _, k := range b.Senders {
				if k.ID == newest {
					t.Fatalf("trial %d: the revoked subscriber got the sender key made by its Revoke", trial)
				}
			}
		}
	}
}

// Review F2: Publishers sharing a key service never share an instance id
// (and so never an instance key and nonce).
func TestPubSubInstancesDistinct(t *testing.T) {
	w := newPSWorld(t, false, nil, nil)
	seen := map[[8]byte]bool{w.pub.instance: true}
	for i := 0; i < 100; i++ {
		p := w.newPublisher()
		if seen[p.instance] {
			t.Fatalf("instance id %x given twice", p.instance)
		}
		seen[p.instance] = true
	}
}

// Review F3: replaying verified messages whose keys the service does not
// have (a previous run's) triggers one fetch per key-id pair, not one per
// replay.
func TestPubSubNoFetchAmplification(t *testing.T) {
	sk := mustKey(t)
	w := newPSWorld(t, false, []PublicKey{sk.Public()}, nil)
	s := w.newSub(sk)
	if err := s.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	prev, err := NewKeyService(KeyServiceConfig{Publisher: w.sign.Public(), Clock: w.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	var old [][]byte
	for i := 0; i < 2; i++ {
		p, err := NewPublisher(PublisherConfig{Signing: w.sign, Keys: prev})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		old = append(old, mustSeal(t, p, "t", "old run"))
		if err := prev.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Stats().KeyFetches
	for i := 0; i < 200; i++ {
		if s.Open(old[i%2]) != nil {
			t.Fatal("a message of a previous run opened")
		}
	}
	if n := s.Stats().KeyFetches - before; n > 2 {
		t.Fatalf("%d key fetches for 200 replays of 2 messages", n)
	}
}

// Review F4: with the keys held, a forgery by someone without them is
// refused by the AEAD; the signature is not even checked.
func TestPubSubOutsiderForgeryCheap(t *testing.T) {
	sk := mustKey(t)
	w := newPSWorld(t, false, []PublicKey{sk.Public()}, nil)
	s := w.newSub(sk)
	if err := s.Subscribe("t"); err != nil {
		t.Fatal(err)
	}
	b := mustSeal(t, w.pub, "t", "genuine")
	b[len(b)-64-1] ^= 1 // last ciphertext byte; the signature is now wrong too
	if s.Open(b) != nil || s.Stats().CannotOpen != 1 || s.Stats().BadSignature != 0 {
		t.Fatalf("forgery not refused by the AEAD first: %+v", s.Stats())
	}
}

// Review F5: key service sockets that are not sealed to a server key with
// the subscriber's own key are refused.
func TestPubSubKeySourceChecked(t *testing.T) {
	sign, _ := GenerateSigningKey()
	mk := func(opts ...any) *Socket {
		s, err := NewReqSocket()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		mustSet(t, s, opts...)
		return s
	}
	srv := mustKey(t).Public()
	for name, src := range map[string]*Socket{
		"mechanism none": mk(),
		"no server key":  mk(OptionMechanism, MechanismCurve, OptionSecretKey, mustKey(t)),
		"anonymous":      mk(OptionMechanism, MechanismCurve, OptionServerKey, srv),
	} {
		if _, err := NewSubscriber(SubscriberConfig{Publishers: map[PublisherKey]*Socket{sign.Public(): src}}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Review F6: in clear mode, Open (messages read by other means) drops a
// topic that matches no subscription, exact or prefix.
func TestPubSubClearOpenChecksTopic(t *testing.T) {
	sk := mustKey(t)
	w := newPSWorld(t, true, []PublicKey{sk.Public()}, nil)
	s := w.newSub(sk)
	if err := s.Subscribe("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.SubscribePrefix("sensors/"); err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]bool{"a": true, "ab": false, "b": false, "sensors/temp": true, "sensor": false} {
		if got := s.Open(mustSeal(t, w.pub, topic, "x")) != nil; got != want {
			t.Errorf("topic %q delivered %v, want %v (stats %+v)", topic, got, want, s.Stats())
		}
	}
}
