package secsock

// Vectors of sealed PUB/SUB (SPEC.md §18.7), testdata/vectors/pubsub:
// each file fixes a publisher's keys and a subscriber's state, and each
// step a message (its exact bytes, built from the step's fields) and the
// subscriber's verdict. SECSOCK_WRITE_VECTORS=1 rewrites the files from
// pubsubCases; otherwise the files are read and checked.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secsock/secsock/internal/subreplay"
	"github.com/secsock/secsock/internal/vectorfile"
	"github.com/secsock/secsock/internal/wire"
)

const pubsubVectorDir = "testdata/vectors/pubsub"

// psStep is one message of a case.
type psStep struct {
	now, counter, ts uint64
	instance         byte   // instance id is 8 copies of this byte
	topic, tagTopic  string // tagTopic: the topic whose tag the header carries (default topic)
	body             string
	signer           byte   // nonzero: sign with the seed of 32 copies of this byte instead
	gen              uint64 // nonzero: the generation id named (default sender_id)
	publisher        byte   // nonzero: the publisher key field is the key of this seed
	flip             int    // >0: flip the low bit of byte flip-1 after signing; <0: of byte len+flip
	expect           string
}

type psCase struct {
	name, comment string
	clear         bool
	join          uint64
	subscribed    []string
	steps         []psStep
}

const psT0 = 1767268800000 // 2026-01-01T12:00:00Z

func pubsubCases() []psCase {
	t := uint64(psT0)
	m := func(counter uint64, topic, body, expect string) psStep {
		return psStep{now: t + 5, counter: counter, ts: t, instance: 1, topic: topic, body: body, expect: expect}
	}
	with := func(s psStep, f func(*psStep)) psStep { f(&s); return s }
	return []psCase{
		{name: "blind-deliver", comment: "a blinded message is delivered once; its copy is a duplicate", subscribed: []string{"weather"}, join: t,
			steps: []psStep{m(1, "weather", "72 61 69 6e", "deliver"), m(1, "weather", "72 61 69 6e", "duplicate")}},
		{name: "clear-deliver", comment: "clear topics, a prefix subscription: a topic under it; an empty body; a topic outside it", clear: true, join: t,
			subscribed: []string{"sensors/"},
			steps:      []psStep{m(1, "sensors/temp", "31 39 2e 35", "deliver"), m(2, "sensors/temp", "", "deliver"), m(3, "sensor", "00", "topic-mismatch")}},
		{name: "flipped-bits", comment: "one bit flipped in the signature (bad signature); in the tag, the counter, the ciphertext (the AEAD refuses them before the signature is checked)", subscribed: []string{"t"}, join: t,
			steps: []psStep{with(m(1, "t", "00", "bad-signature"), func(s *psStep) { s.flip = -1 }),
				with(m(2, "t", "00", "cannot-open"), func(s *psStep) { s.flip = 3 }),
				with(m(3, "t", "00", "cannot-open"), func(s *psStep) { s.flip = 2 + 16 + 8 + 32 + 8 + 8 + 8 }),
				with(m(4, "t", "00", "cannot-open"), func(s *psStep) { s.flip = wire.PubBlindHeader + 2 }),
				m(5, "t", "00", "deliver")}},
		{name: "subscriber-forgery", comment: "AEAD-valid under the real sender key, signed by a subscriber's own key", subscribed: []string{"orders"}, join: t,
			steps: []psStep{with(m(1, "orders", "73 65 6c 6c", "bad-signature"), func(s *psStep) { s.signer = 0x66 })}},
		{name: "unknown-publisher", comment: "a well-formed message of an untrusted publisher", subscribed: []string{"t"}, join: t,
			steps: []psStep{with(m(1, "t", "00", "unknown-publisher"), func(s *psStep) { s.signer, s.publisher = 0x77, 0x77 })}},
		{name: "unknown-generation", comment: "signed by the publisher, under a generation the subscriber does not hold", subscribed: []string{"t"}, join: t,
			steps: []psStep{with(m(1, "t", "00", "no-key"), func(s *psStep) { s.gen = 99 })}},
		{name: "topic-mismatch", comment: "signed by the publisher: the tag of one topic over another; a topic not subscribed", subscribed: []string{"b"}, join: t,
			steps: []psStep{with(m(1, "a", "00", "topic-mismatch"), func(s *psStep) { s.tagTopic = "b" }), m(2, "a", "00", "topic-mismatch"), m(3, "b", "00", "deliver")}},
		{name: "freshness", comment: "W = 120000, Z = 10000: older than W, ahead by more than Z, published more than Z before the join", subscribed: []string{"t"}, join: t,
			steps: []psStep{
				with(m(1, "t", "00", "stale"), func(s *psStep) { s.now = t + 120001 }),
				with(m(2, "t", "00", "deliver"), func(s *psStep) { s.now = t + 120000 }),
				with(m(3, "t", "00", "stale"), func(s *psStep) { s.ts, s.now = t+10001, t }),
				with(m(4, "t", "00", "deliver"), func(s *psStep) { s.ts, s.now = t+10000, t }),
				with(m(5, "t", "00", "stale"), func(s *psStep) { s.ts = t - 10001 }),
				with(m(6, "t", "00", "deliver"), func(s *psStep) { s.ts = t - 10000 })}},
		{name: "instances-and-window", comment: "per-instance counters; gaps; the replay window of 1024", subscribed: []string{"t"}, join: t,
			steps: []psStep{m(5, "t", "00", "deliver"), with(m(5, "t", "00", "deliver"), func(s *psStep) { s.instance = 2 }),
				m(3, "t", "00", "deliver"), m(2000, "t", "00", "deliver"), m(976, "t", "00", "stale"), m(977, "t", "00", "deliver"),
				m(977, "t", "00", "duplicate")}},
	}
}

// psKeys are the fixed keys of every case.
func psKeys() (sign SigningKey, sender, tag wire.BundleKey) {
	sign, _ = NewSigningKey(bytes.Repeat([]byte{0x11}, 32))
	sender = wire.BundleKey{ID: 7, ActiveFrom: psT0 - 1000}
	copy(sender.Key[:], bytes.Repeat([]byte{0x22}, 32))
	tag = wire.BundleKey{ID: 3, ActiveFrom: psT0 - 1000}
	copy(tag.Key[:], bytes.Repeat([]byte{0x33}, 32))
	return
}

func psBuild(t *testing.T, clear bool, st psStep) []byte {
	t.Helper()
	sign, sender, tag := psKeys()
	signer := sign
	if st.signer != 0 {
		signer, _ = NewSigningKey(bytes.Repeat([]byte{st.signer}, 32))
	}
	pub := sign.Public()
	if st.publisher != 0 {
		o, _ := NewSigningKey(bytes.Repeat([]byte{st.publisher}, 32))
		pub = o.Public()
	}
	f := wire.PubFields{Blinded: !clear, Publisher: pub[:], Gen: sender.ID, Counter: st.counter, Timestamp: st.ts}
	if st.gen != 0 {
		f.Gen = st.gen
	}
	f.Instance = [8]byte(bytes.Repeat([]byte{st.instance}, 8))
	tt := st.topic
	if st.tagTopic != "" {
		tt = st.tagTopic
	}
	if !clear {
		f.Tag, f.TagKey = wire.TopicTag(&tag.Key, []byte(tt)), tag.ID
	}
	body, _ := hex.DecodeString(strings.ReplaceAll(st.body, " ", ""))
	ik := wire.InstanceKey(&sender.Key, pub[:], f.Gen, &f.Instance)
	b, err := wire.AppendPub(nil, &f, &ik, signer.private(), []byte(st.topic), body)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case st.flip > 0:
		b[st.flip-1] ^= 1
	case st.flip < 0:
		b[len(b)+st.flip] ^= 1
	}
	return b
}

func writePubsubVectors(t *testing.T) {
	sign, sender, tag := psKeys()
	for _, c := range pubsubCases() {
		var w strings.Builder
		pub := sign.Public()
		fmt.Fprintf(&w, "# %s\nname: %s\nmode: %s\n", c.comment, c.name, map[bool]string{false: "blinded", true: "clear"}[c.clear])
		fmt.Fprintf(&w, "signing_seed: %s\npublisher: %x\n", strings.Repeat("11", 32), pub[:])
		fmt.Fprintf(&w, "sender_id: %d\nsender_key: %x\ntag_id: %d\ntag_key: %x\n", sender.ID, sender.Key[:], tag.ID, tag.Key[:])
		fmt.Fprintf(&w, "freshness: 120000\nmax_skew: 10000\njoin: %d\n", c.join)
		for _, s := range c.subscribed {
			fmt.Fprintf(&w, "subscribed: %s\n", s)
		}
		for i, st := range c.steps {
			fmt.Fprintf(&w, "\nstep: %d\nnow: %d\ntopic: %s\nbody: %s\n", i+1, st.now, st.topic, strings.ReplaceAll(st.body, " ", ""))
			gen := sender.ID
			if st.gen != 0 {
				gen = st.gen
			}
			fmt.Fprintf(&w, "instance: %s\ncounter: %d\ntimestamp: %d\ngen: %d\n", strings.Repeat(fmt.Sprintf("%02x", st.instance), 8), st.counter, st.ts, gen)
			if st.tagTopic != "" {
				fmt.Fprintf(&w, "tag_topic: %s\n", st.tagTopic)
			}
			if st.signer != 0 {
				fmt.Fprintf(&w, "signer_seed: %s\n", strings.Repeat(fmt.Sprintf("%02x", st.signer), 32))
			}
			if st.publisher != 0 {
				fmt.Fprintf(&w, "# the publisher field is the key of seed %s\n", strings.Repeat(fmt.Sprintf("%02x", st.publisher), 32))
			}
			if st.flip != 0 {
				fmt.Fprintf(&w, "# flipped after signing: the low bit of byte %d (negative: from the end)\n", map[bool]int{true: st.flip - 1, false: st.flip}[st.flip > 0])
			}
			fmt.Fprintf(&w, "message: %x\nexpect: %s\n", psBuild(t, c.clear, st), st.expect)
		}
		if err := os.WriteFile(filepath.Join(pubsubVectorDir, c.name+".vec"), []byte(w.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPubSubVectors(t *testing.T) {
	if os.Getenv("SECSOCK_WRITE_VECTORS") == "1" {
		writePubsubVectors(t)
	}
	cases := pubsubCases()
	files, _ := filepath.Glob(filepath.Join(pubsubVectorDir, "*.vec"))
	if len(files) != len(cases) {
		t.Fatalf("%d files in %s, %d cases", len(files), pubsubVectorDir, len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			head, steps, err := vectorfile.Read(filepath.Join(pubsubVectorDir, c.name+".vec"))
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != len(c.steps) {
				t.Fatalf("%d steps, want %d", len(steps), len(c.steps))
			}
			s := psVectorSubscriber(t, head)
			for i, st := range steps {
				want := st.Hex(t, "message")
				if got := psBuild(t, c.clear, c.steps[i]); !bytes.Equal(got, want) {
					t.Fatalf("step %d: built\n%x\nfile\n%x", i+1, got, want)
				}
				now := st.Uint(t, "now", 0)
				s.cfg.Clock = func() time.Time { return time.UnixMilli(int64(now)) }
				if got := psVerdict(s, want); got != st.Str("expect") {
					t.Fatalf("step %d: %s, want %s", i+1, got, st.Str("expect"))
				}
			}
		})
	}
}

// psVectorSubscriber is a subscriber holding the header's keys directly.
func psVectorSubscriber(t *testing.T, head vectorfile.Fields) *Subscriber {
	seed := head.Hex(t, "signing_seed")
	sign, err := NewSigningKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	if pub := sign.Public(); !bytes.Equal(pub[:], head.Hex(t, "publisher")) {
		t.Fatal("publisher is not the seed's key")
	}
	pk := &pubKeys{senders: map[uint64]wire.BundleKey{}, tags: map[uint64]wire.BundleKey{}, fetched: true}
	sk := wire.BundleKey{ID: head.Uint(t, "sender_id", 0)}
	copy(sk.Key[:], head.Hex(t, "sender_key"))
	tk := wire.BundleKey{ID: head.Uint(t, "tag_id", 0)}
	copy(tk.Key[:], head.Hex(t, "tag_key"))
	pk.senders[sk.ID], pk.tags[tk.ID] = sk, tk
	s := &Subscriber{cfg: SubscriberConfig{ClearTopics: head.Str("mode") == "clear"},
		pubs: map[PublisherKey]**pubKeys{sign.Public(): &pk}, topics: map[string]bool{}}
	for _, tp := range head["subscribed"] {
		s.topics[tp] = true
	}
	s.replay = subreplay.New(head.Uint(t, "join", 0), head.Uint(t, "freshness", 0), head.Uint(t, "max_skew", 0))
	return s
}

// psVerdict opens b and names the counter that moved.
func psVerdict(s *Subscriber, b []byte) string {
	before := s.Stats()
	if s.Open(b) != nil {
		return "deliver"
	}
	after := s.Stats()
	for name, d := range map[string]uint64{
		"unknown-publisher": after.UnknownPublisher - before.UnknownPublisher, "malformed": after.Malformed - before.Malformed,
		"stale": after.Stale - before.Stale, "duplicate": after.Duplicate - before.Duplicate,
		"bad-signature": after.BadSignature - before.BadSignature, "no-key": after.NoKey - before.NoKey,
		"cannot-open": after.CannotOpen - before.CannotOpen, "topic-mismatch": after.TopicMismatch - before.TopicMismatch,
	} {
		if d == 1 {
			return name
		}
	}
	return "dropped:" + strconv.Quote(fmt.Sprintf("%+v", after))
}
