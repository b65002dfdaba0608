package secsock

// The test vectors of testdata/vectors (SPEC.md §12) replayed through the
// root package's adapters: the REP side's openRequest/sealReply and the
// REQ side's openReply, so that their mapping to Reason and to the
// exported errors is checked against the same files as the crypto core
// (internal/server replays them without the adapters) and the C
// implementation.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"

	"github.com/secsock/secsock/internal/vectorfile"
	"github.com/secsock/secsock/internal/wire"
)

// readFields returns the header block of the vector file at path.
func readFields(t *testing.T, path string) vectorfile.Fields {
	t.Helper()
	return readBlocks(t, path)[0]
}

// readBlocks returns the blocks of the vector file at path: the header
// block first, then one block per step.
func readBlocks(t *testing.T, path string) []vectorfile.Fields {
	t.Helper()
	head, steps, err := vectorfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return append([]vectorfile.Fields{head}, steps...)
}

func TestNaClBoxKnownAnswer(t *testing.T) {
	m := readFields(t, "testdata/nacl_box_kat.txt")
	var sk, pk, small, key [32]byte
	var nonce [24]byte
	copy(sk[:], m.Hex(t, "alice_secret"))
	copy(pk[:], m.Hex(t, "bob_public"))
	copy(small[:], m.Hex(t, "small_order_public"))
	copy(nonce[:], m.Hex(t, "nonce"))
	want := m.Hex(t, "box")
	if got := box.Seal(nil, m.Hex(t, "message"), &nonce, &pk, &sk); !bytes.Equal(got, want) {
		t.Fatalf("box.Seal disagrees with libsodium")
	}
	box.Precompute(&key, &pk, &sk)
	if got := secretbox.Seal(nil, m.Hex(t, "message"), &nonce, &key); !bytes.Equal(got, want) {
		t.Fatalf("secretbox under crypto_box_beforenm disagrees with libsodium crypto_box_afternm")
	}
	if _, err := wire.X25519(&sk, &small); !errors.Is(err, wire.ErrWeakKey) {
		t.Fatalf("small-order key: got %v, want a weak-key error (libsodium refuses it)", err)
	}
}

// TestWycheproofX25519 checks every Wycheproof X25519 case: valid shared
// secrets are reproduced, and every input with an all-zero shared secret
// is refused both as a configured key and in a key agreement.
func TestWycheproofX25519(t *testing.T) {
	raw, err := os.ReadFile("testdata/wycheproof/x25519_test.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TestGroups []struct {
			Tests []struct {
				TcID                    int
				Public, Private, Shared string
			}
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	zero := 0
	for _, g := range doc.TestGroups {
		for _, tc := range g.Tests {
			t.Run(strconv.Itoa(tc.TcID), func(t *testing.T) {
				pub, _ := hex.DecodeString(tc.Public)
				priv, _ := hex.DecodeString(tc.Private)
				shared, _ := hex.DecodeString(tc.Shared)
				var p, s [32]byte
				copy(p[:], pub)
				copy(s[:], priv)
				dh, err := wire.X25519(&s, &p)
				if bytes.Equal(shared, make([]byte, 32)) {
					zero++
					if !errors.Is(err, wire.ErrWeakKey) || !errors.Is(checkPublicKey(PublicKey(p)), ErrWeakKey) {
						t.Fatalf("all-zero shared secret not refused: %v", err)
					}
					return
				}
				want, _ := curve25519.X25519(priv, pub)
				if err != nil || !bytes.Equal(dh[:], shared) || !bytes.Equal(want, shared) {
					t.Fatal("shared secret differs")
				}
			})
		}
	}
	if zero != 31 {
		t.Fatalf("saw %d all-zero cases, want 31", zero)
	}
}

// vectorClientErrors names the errors as expect_client does.
var vectorClientErrors = map[error]string{
	ErrNotAuthorized: "not-authorized", ErrStale: "stale", ErrReplayed: "replayed", ErrInDoubt: "in-doubt",
	ErrUnsupportedFeature: "unsupported-feature", ErrRefused: "refused", ErrServerKeyMismatch: "server-key-mismatch",
	ErrUnsupported: "unsupported-version", ErrBusy: "busy", ErrAuthFailed: "auth-failed", ErrMalformed: "malformed",
	ErrUnknownKind: "unknown-kind", ErrNotSecsock: "not-secsock", ErrUnknownEpoch: "unknown-epoch",
	ErrStoreUnavailable: "store-unavailable", ErrTooLarge: "too-large",
}

func vectorClientOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	for e, n := range vectorClientErrors {
		if errors.Is(err, e) {
			return "error:" + n
		}
	}
	return "error:" + err.Error()
}

// vectorServerOutcome names an inbound decision as expect_server does.
func vectorServerOutcome(in inbound) string {
	switch {
	case in.deliver:
		return "deliver"
	case in.respond == nil && in.reason == ReasonUnsupported:
		return "drop:unsupported-feature"
	case in.respond == nil:
		return "drop:" + in.reason.String()
	case in.reason == ReasonRetry:
		return "resend"
	case in.respond[1] == wire.KindHint:
		return map[byte]string{wire.HintCannotOpen: "hint:cannot-open", wire.HintUnsupportedVersion: "hint:unsupported-version", wire.HintBusy: "hint:busy"}[in.respond[2]]
	case in.respond[1] == wire.KindRefusal:
		r := in.reason.String()
		if in.reason == ReasonUnsupported {
			r = "unsupported-feature"
		}
		return "refuse:" + r
	}
	return "reply"
}

func TestVectorsThroughAdapters(t *testing.T) {
	files, _ := filepath.Glob("testdata/vectors/*.vec")
	if len(files) < 70 {
		t.Fatalf("found %d vector files", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".vec"), func(t *testing.T) { replayThroughAdapters(t, f) })
	}
}

func replayThroughAdapters(t *testing.T, path string) {
	blocks := readBlocks(t, path)
	head, steps := blocks[0], blocks[1:]
	cfg := defaultConfig()
	var keys []SecretKey
	for _, h := range head["server_secret"] {
		b, _ := hex.DecodeString(h)
		k, err := NewSecretKey(b)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	cfg.secret, cfg.previous = keys[0], keys[1:]
	cfg.allowAnonymous = head["allow_anonymous"][0] == "true"
	cfg.peerCache = int(head.Uint(t, "peer_cache", 4096))
	cfg.replySlots = int(head.Uint(t, "reply_slots", 1024))
	cfg.budget = int(head.Uint(t, "budget", 0))
	cfg.oneWay = head.Str("pattern") == "pipeline"
	if len(head["authorized"]) > 0 || len(head["policy"]) > 0 {
		cfg.authorized = map[PublicKey]struct{}{}
		for _, h := range head["authorized"] {
			b, _ := hex.DecodeString(h)
			cfg.authorized[PublicKey(b)] = struct{}{}
		}
	}
	if seed := head.Hex(t, "epoch_seed"); seed != nil {
		e := &EpochSeed{origin: int64(head.Uint(t, "epoch_origin", 0)), length: int64(head.Uint(t, "epoch_length", 0)),
			index: uint32(head.Uint(t, "epoch_index", 0))}
		b := new([32]byte)
		copy(b[:], seed)
		e.seed = &b
		cfg.epochSeed = e
	}
	sealTo := keys[head.Uint(t, "seal_to", 0)].Public()
	if k := head.Hex(t, "client_server_key"); k != nil {
		sealTo = PublicKey(k)
	}
	var clock uint64
	rnd := &stepRandom{}
	cfg.now = func() time.Time { return time.UnixMilli(int64(clock)) }
	cfg.rand = rnd
	m, err := curveMechanism{}.newServer(&cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := m.(*curveServer)
	for _, st := range steps {
		clock = st.Uint(t, "now", 0)
		rnd.b = st.Hex(t, "reply_random")
		srv.configure(rnd, cfg.now, cfg.limits()) // a fresh buffered reader for this step's R
		req := st.Hex(t, "request")
		if cfg.oneWay {
			checkPusherSeals(t, head, st, sealTo, req)
		}
		in := srv.openRequest(nil, req)
		if got, want := vectorServerOutcome(in), st["expect_server"][0]; got != want {
			t.Fatalf("step %s: server: got %s, want %s", st["step"][0], got, want)
		}
		answer := in.respond
		if in.deliver && !cfg.oneWay {
			if answer, err = srv.sealReply(nil, in.ticket, st.Hex(t, "reply_body")); err != nil {
				t.Fatal(err)
			}
		}
		reply := st.Hex(t, "reply")
		if reply == nil {
			continue
		}
		if st["reply_mutated"][0] == "false" && !bytes.Equal(answer, reply) {
			t.Fatalf("step %s: answer differs from reply", st["step"][0])
		}
		sent := req
		if c := st.Hex(t, "client_request"); c != nil {
			sent = c
		}
		o := vectorOutstanding(t, st, sealTo, sent)
		_, err := (&curveClient{}).openReply(nil, o, reply)
		if got, want := vectorClientOutcome(err), st["expect_client"][0]; got != want {
			t.Fatalf("step %s: client: got %s, want %s", st["step"][0], got, want)
		}
	}
}

// checkPusherSeals checks that a PUSH socket's sealer, given the step's
// c', c, S, clock and body, makes the step's request (for the steps it can
// make as they are: a first message, no epoch key, its own vouch).
func checkPusherSeals(t *testing.T, head, st vectorfile.Fields, server PublicKey, req []byte) {
	t.Helper()
	ts := st.Uint(t, "timestamp", 0)
	e := st.Uint(t, "vouch_expiry", ts+3600000)
	if st.Str("mutated") != "false" || st.Uint(t, "counter", 0) != 1 || st.Has("epoch_key") || e <= ts {
		return
	}
	cfg := clientConfig{server: server, suite: byte(st.Uint(t, "suite", 1)), maxMessages: 1 << 20,
		maxAge: time.Duration(e-ts) * time.Millisecond, epochs: EpochsAuto, push: true,
		rand: bytes.NewReader(st.Hex(t, "eph_secret")), now: func() time.Time { return time.UnixMilli(int64(ts)) }}
	if c := head.Hex(t, "client_secret"); c != nil {
		k, err := NewSecretKey(c)
		if err != nil {
			t.Fatal(err)
		}
		cfg.longTerm = k
	}
	c, err := newCurveClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := c.sealRequest(nil, st.Hex(t, "request_body"), false)
	if err != nil || !bytes.Equal(got, req) {
		t.Fatalf("step %s: the pusher seals %x (%v), want %x", st["step"][0], got, err, req)
	}
}

// vectorOutstanding rebuilds what a client remembers about the request
// sent (SPEC.md §7).
func vectorOutstanding(t *testing.T, st vectorfile.Fields, server PublicKey, sent []byte) outstanding {
	var eph, srv [32]byte
	copy(eph[:], st.Hex(t, "eph_secret"))
	srv = server
	pub, err := wire.Public(&eph)
	if err != nil {
		t.Fatal(err)
	}
	dh, err := wire.X25519(&eph, &srv)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := wire.NewPrivateKey(&eph)
	if err != nil {
		t.Fatal(err)
	}
	s := &clientSession{eph: pub, prk0: wire.RequestSecret(&dh, &pub, &srv), secret: priv}
	s.keys = wire.SessionKeys(&s.prk0, byte(st.Uint(t, "suite", 1)))
	o := outstanding{sess: s, keys: s.keys, counter: st.Uint(t, "client_counter", st.Uint(t, "counter", 0))}
	if k := st.Hex(t, "epoch_key"); k != nil {
		e, err := s.agree((*[32]byte)(k), wire.SessionKeys)
		if err != nil {
			t.Fatal(err)
		}
		o.keys = e.keys
	}
	h := sent
	if len(sent) >= wire.HeaderSize {
		h = sent[:wire.HeaderSize+int(binary.BigEndian.Uint16(sent[52:54]))]
	}
	o.hlen = uint8(copy(o.header[:], h))
	return o
}

// stepRandom gives each step's R and then fails.
type stepRandom struct{ b []byte }

func (r *stepRandom) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, errors.New("vector randomness exhausted")
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
