package secsock

// Attack and load test (project issue 5, ported to protocol v2 for issue
// 9): legitimate clients run request/reply on many contexts through a
// recording tap and a device to REP workers, while an attacker on the same
// device floods it with hostile traffic. Loopback only (tcp on 127.0.0.1
// port 0, inproc), bounded in count and time. Attack messages are built
// with internal/wire; the reason the server must count for each is
// predicted from SPEC.md §6 (atkSpecReason), not from the server code.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secsock/secsock/internal/equivalent"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/xrep"
	"go.nanomsg.org/mangos/v3/protocol/xreq"
	_ "go.nanomsg.org/mangos/v3/transport/inproc"
	_ "go.nanomsg.org/mangos/v3/transport/tcp"
	"golang.org/x/crypto/curve25519"

	servercore "github.com/secsock/secsock/internal/server"
	"github.com/secsock/secsock/internal/wire"
)

// atkSeeded is a deterministic key for a label.
func atkSeeded(label string) SecretKey {
	h := sha256.Sum256([]byte("secsock attack test key " + label))
	k, err := NewSecretKey(h[:])
	if err != nil {
		panic(err)
	}
	return k
}

// atkRand is a deterministic randomness source for a label.
func atkRand(label string) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte("secsock attack test rand " + label)))
}

// atkSession is a client short-term key agreed with a server key, built
// from internal/wire the way SPEC.md §4.2 says: what an attacker (or a
// client crafting requests by hand) holds.
type atkSession struct {
	eph    [wire.KeySize]byte
	server [wire.KeySize]byte
	prk0   wire.Secret
	keys   map[byte]*wire.Keys
}

func newAtkSession(t testing.TB, r *rand.ChaCha8, server PublicKey) *atkSession {
	t.Helper()
	secret, eph := atkShortTerm(t, r)
	return atkSessionFrom(t, &secret, eph, server)
}

// atkShortTerm makes a short-term key pair from r.
func atkShortTerm(t testing.TB, r io.Reader) (secret, public [wire.KeySize]byte) {
	t.Helper()
	if _, err := io.ReadFull(r, secret[:]); err != nil {
		t.Fatal(err)
	}
	public, err := wire.Public(&secret)
	if err != nil {
		t.Fatal(err)
	}
	return secret, public
}

func atkSessionFrom(t testing.TB, secret *[wire.KeySize]byte, eph [wire.KeySize]byte, server PublicKey) *atkSession {
	t.Helper()
	srv := [wire.KeySize]byte(server)
	dh, err := curve25519.X25519(secret[:], srv[:]) // not counted in wire.ScalarMults
	if err != nil {
		t.Fatal(err)
	}
	s := &atkSession{eph: eph, server: srv, prk0: wire.RequestSecret((*[32]byte)(dh), &eph, &srv), keys: map[byte]*wire.Keys{}}
	return s
}

func (s *atkSession) suiteKeys(suite byte) *wire.Keys {
	if s.keys[suite] == nil {
		s.keys[suite] = wire.SessionKeys(&s.prk0, suite)
	}
	return s.keys[suite]
}

// atkIdentity is the identity box contents of a client with long-term key
// c for short-term key eph and server S, with expiry e (SPEC.md §4.3).
// claim, when non-nil, is the C written into the box and vouched for
// (another encoding of the owner's key, say); the vouch key is then
// Extract(dh2 ‖ claim ‖ S), as its owner can compute.
func atkIdentity(t testing.TB, c SecretKey, claim *[wire.KeySize]byte, eph, server [wire.KeySize]byte, e uint64) *wire.Identity {
	t.Helper()
	dh, err := curve25519.X25519(c.bytes()[:], server[:])
	if err != nil {
		t.Fatal(err)
	}
	me := [wire.KeySize]byte(c.Public())
	if claim != nil {
		me = *claim
	}
	prkV := wire.VouchSecret((*[32]byte)(dh), &me, &server)
	return &wire.Identity{Client: me, Vouch: wire.Vouch(&prkV, &eph, &me, &server, e), Expiry: e}
}

// seal makes a request on s; id nil for anonymous kinds.
func (s *atkSession) seal(kind, suite byte, n, ts uint64, id *wire.Identity, body []byte) []byte {
	f := wire.RequestFields{Kind: kind, Suite: suite, Eph: s.eph, Counter: n, Timestamp: ts}
	return wire.AppendRequest(nil, &f, s.suiteKeys(suite), id, body)
}

// atkSmallOrder reports whether X25519 with k gives the all-zero output
// (SPEC.md §2), without counting in wire.ScalarMults.
func atkSmallOrder(k []byte) bool {
	scalar := [32]byte{1: 1, 31: 0x40}
	_, err := curve25519.X25519(scalar[:], k)
	return err != nil
}

// atkCanonical is the canonical check of SPEC.md §4.1: the little-endian
// integer is below 2^255 - 19.
func atkCanonical(k []byte) bool {
	if k[31]&0x80 != 0 {
		return false
	}
	if k[31] != 0x7f || k[0] < 0xed {
		return true
	}
	for i := 1; i < 31; i++ {
		if k[i] != 0xff {
			return true
		}
	}
	return false
}

// atkEquivalents returns the 16 byte strings that X25519 treats as pub
// (internal/equivalent), pub itself first.
func atkEquivalents(t testing.TB, pub [32]byte) [][32]byte {
	t.Helper()
	out, err := equivalent.Encodings(pub)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// atkSpecReason is the reason a v2 server must count for b when b is not
// sealed by a key holder, read from SPEC.md §6 steps 1, 2, 4 and 5 alone:
// the parse classes, an unknown suite or flags (refused), a small-order
// C' (weak key), or else a box that does not open (forged).
func atkSpecReason(b []byte) Reason {
	if len(b) < 2 {
		return ReasonMalformed
	}
	if b[0] != 0x02 {
		if len(b) >= 70 && b[0] >= 0x01 && b[0] <= 0x07 && b[1] >= 0x01 && b[1] <= 0x06 {
			return ReasonUnknownVersion // a request of another version (§9)
		}
		return ReasonNotSecsock
	}
	kind := b[1]
	if kind < 0x01 || kind > 0x04 {
		return ReasonUnknownKind
	}
	if len(b) < 54 {
		return ReasonMalformed
	}
	suite, flags := b[2], b[3]
	eph := b[4:36]
	n := binary.BigEndian.Uint64(b[36:44])
	x := int(binary.BigEndian.Uint16(b[52:54]))
	vouched, ping := kind == 0x02 || kind == 0x04, kind == 0x03 || kind == 0x04
	min := 54 + x + 16
	if vouched {
		min += 88
	}
	switch {
	case !atkCanonical(eph), n < 1 || n >= 1<<32, flags == 0 && x != 0, len(b) < min, ping && len(b) != min:
		return ReasonMalformed
	}
	types, ok := atkElements(flags, b[54:54+x])
	if !ok {
		return ReasonMalformed
	}
	if atkSmallOrder(eph) {
		return ReasonWeakKey
	}
	switch {
	case (suite != 0x01 && suite != 0x02) || types&^(1<<0|1<<5) != 0:
		return ReasonUnsupported
	case types&1 != 0: // an EPOCH element: these workers have no epoch seed (§14.3)
		return ReasonUnknownEpoch
	}
	return ReasonForged
}

// atkElements reads the extension field as SPEC §10 frames it (type ‖
// u16 len ‖ value, types increasing, flags bit i exactly when type i is
// present), with §14's value sizes: EPOCH (0) 8 bytes, WANT_EPOCH (5) 0.
func atkElements(flags byte, ext []byte) (types byte, ok bool) {
	prev := -1
	for len(ext) > 0 {
		if len(ext) < 3 {
			return 0, false
		}
		t, n := int(ext[0]), int(binary.BigEndian.Uint16(ext[1:3]))
		if t <= prev || t > 7 || len(ext) < 3+n || (t == 0 && n != 8) || (t == 5 && n != 0) {
			return 0, false
		}
		prev, types, ext = t, types|1<<t, ext[3+n:]
	}
	return types, types == flags
}

// atkListen listens on addr (tcp port 0 allowed) and returns the address
// actually bound.
func atkListen(t testing.TB, s mangos.Socket, addr string) string {
	t.Helper()
	l, err := s.NewListener(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	return l.Address()
}

// atkDevice is a raw xrep (front) / xreq (back) device, as a deployment
// would run between clients and REP workers. It holds no keys.
type atkDevice struct {
	front, back         mangos.Socket
	frontAddr, backAddr string
}

func newAtkDevice(t testing.TB, frontAddr, backAddr string) *atkDevice {
	t.Helper()
	front, back := newRaw(t, xrep.NewSocket), newRaw(t, xreq.NewSocket)
	// No OptionBestEffort here: mangos xrep's best effort send picks at
	// random between a free queue slot and dropping (a select with both
	// ready), so it loses about half of all replies. Without it a peer
	// that never reads its replies can stall this device's reply
	// direction (a mangos property); the attackers below drain theirs.
	d := &atkDevice{front: front, back: back}
	d.frontAddr = atkListen(t, front, frontAddr)
	d.backAddr = atkListen(t, back, backAddr)
	if err := mangos.Device(front, back); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { front.Close(); back.Close() })
	return d
}

// nonceLedger records every sealed body that crosses a tap and checks
// the v2 nonce and determinism rules (SPEC.md §7.2): no (C', N) is used
// for two different requests (bytes 4..44); no reply nonce (C', N_req, R)
// seals two different replies, C' and N_req taken from the request the
// reply answers (matched by SP header); and every refusal of one request
// for one reason is the same 19 bytes.
type nonceLedger struct {
	mu         sync.Mutex
	requests   map[string][32]byte
	replies    map[string][32]byte
	pending    map[string]string // SP header -> C' ‖ N of the request
	captured   [][]byte          // some requests, for the attacker
	capReplies [][]byte          // some replies, for the attacker
	nReq, nRep int
	refusals   int
	violations []string
}

func newNonceLedger() *nonceLedger {
	return &nonceLedger{requests: map[string][32]byte{}, replies: map[string][32]byte{}, pending: map[string]string{}}
}

const ledgerKeep = 512 // captured messages kept for replay

func (l *nonceLedger) request(hdr string, b []byte) {
	if len(b) < wire.HeaderSize || b[0] != wire.Version || !wire.IsRequestKind(b[1]) {
		return
	}
	h := sha256.Sum256(b)
	k := string(b[4:44])
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nReq++
	if old, ok := l.requests[k]; ok && old != h {
		l.violations = append(l.violations, fmt.Sprintf("request nonce (C', N=%d) reused for different bytes", binary.BigEndian.Uint64(b[36:44])))
	}
	l.requests[k] = h
	l.pending[hdr] = k
	if len(l.captured) < ledgerKeep {
		l.captured = append(l.captured, bytes.Clone(b))
	} else {
		l.captured[l.nReq%ledgerKeep] = bytes.Clone(b)
	}
}

func (l *nonceLedger) reply(hdr string, b []byte) {
	if len(b) < 3 || b[0] != wire.Version {
		return
	}
	var nonce string
	switch {
	case b[1] == wire.KindReply && len(b) >= wire.ReplyOverhead:
		nonce = "reply " + string(b[2:wire.ReplyHeader]) // suite ‖ R
	case b[1] == wire.KindRefusal && len(b) == wire.RefusalSize:
		nonce = "refusal " + string(b[2:3]) // deterministic: one byte string per reason
	default:
		return
	}
	h := sha256.Sum256(b)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nRep++
	if b[1] == wire.KindRefusal {
		l.refusals++
	}
	req, ok := l.pending[hdr]
	if !ok {
		l.violations = append(l.violations, "reply to an unknown request")
		return
	}
	k := req + nonce
	if old, ok := l.replies[k]; ok && old != h {
		l.violations = append(l.violations, fmt.Sprintf("%s to one request with different bytes", nonce[:7]))
	}
	l.replies[k] = h
	if len(l.capReplies) < ledgerKeep {
		l.capReplies = append(l.capReplies, bytes.Clone(b))
	} else {
		l.capReplies[l.nRep%ledgerKeep] = bytes.Clone(b)
	}
}

func (l *nonceLedger) check(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.violations {
		t.Error(v)
	}
	if l.nReq == 0 {
		t.Error("nonce ledger saw no requests")
	}
}

func (l *nonceLedger) sample(rng *rand.Rand, replies bool) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	src := l.captured
	if replies {
		src = l.capReplies
	}
	if len(src) == 0 {
		return nil
	}
	return src[rng.IntN(len(src))]
}

// startNonceTap runs a recording raw hop: clients dial the returned
// address, the tap forwards to target. The tap is the clients' first hop,
// so a reply's body on its xreq side starts with the 4-byte request ID.
func startNonceTap(t testing.TB, l *nonceLedger, listen, target string) string {
	t.Helper()
	front, back := newRaw(t, xrep.NewSocket), newRaw(t, xreq.NewSocket)
	addr := atkListen(t, front, listen)
	if err := back.Dial(target); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			m, err := front.RecvMsg()
			if err != nil {
				return
			}
			l.request(string(m.Header), m.Body)
			if back.SendMsg(m) != nil {
				m.Free()
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			m, err := back.RecvMsg()
			if err != nil {
				return
			}
			if len(m.Body) >= 4 {
				l.reply(string(m.Header)+string(m.Body[:4]), m.Body[4:])
			}
			if front.SendMsg(m) != nil {
				m.Free()
				return
			}
		}
	}()
	t.Cleanup(func() { front.Close(); back.Close(); wg.Wait() })
	return addr
}

// atkWorker is a REP worker: a secsock REP socket whose contexts each sit
// in a Recv loop, record the request they are given, and reply "re:" and
// the request.
type atkWorker struct {
	sock *Socket
	mu   sync.Mutex
	seen map[string]int
	bad  []string
	wg   sync.WaitGroup
}

func startAtkWorker(t testing.TB, dial string, contexts int, opts ...any) *atkWorker {
	t.Helper()
	s, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	w := &atkWorker{sock: s, seen: map[string]int{}}
	mustSet(t, s, append([]any{OptionMechanism, MechanismCurve, mangos.OptionSendDeadline, 2 * time.Second}, opts...)...)
	for i := 0; i < contexts; i++ {
		c, err := s.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for {
				b, err := c.Recv()
				if errors.Is(err, mangos.ErrClosed) {
					return
				}
				if err != nil {
					continue
				}
				w.mu.Lock()
				if !bytes.HasPrefix(b, []byte("legit ")) {
					w.bad = append(w.bad, fmt.Sprintf("application got a request no client sent: %q", b))
				}
				w.seen[string(b)]++
				w.mu.Unlock()
				c.Send(append([]byte("re:"), b...)) // errors: the client is gone or retries
			}
		}()
	}
	if err := s.Dial(dial); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.stop)
	return w
}

func (w *atkWorker) stop() { w.sock.Close(); w.wg.Wait() }

// legitRun is the legitimate side's record: every id sent and any error.
type legitRun struct {
	mu     sync.Mutex
	sent   map[string]bool
	errs   []string
	rounds atomic.Int64
}

// runLegit runs n round trips on each of ctxs contexts of sock. Each
// request body carries a unique id; the reply must be "re:" + body.
func (r *legitRun) run(sock *Socket, client, ctxs, n int, pace time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	for x := 0; x < ctxs; x++ {
		c, err := sock.OpenContext()
		if err != nil {
			r.fail(err.Error())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for i := 0; i < n; i++ {
				body := []byte(fmt.Sprintf("legit %p-%d-%d-%d", sock, client, x, i))
				r.mu.Lock()
				r.sent[string(body)] = true
				r.mu.Unlock()
				if err := c.Send(body); err != nil {
					r.fail(fmt.Sprintf("send %s: %v", body, err))
					return
				}
				got, err := c.Recv()
				if err != nil {
					r.fail(fmt.Sprintf("recv %s: %v", body, err))
					return
				}
				if !bytes.Equal(got, append([]byte("re:"), body...)) {
					r.fail(fmt.Sprintf("wrong reply to %s: %q", body, got))
					return
				}
				r.rounds.Add(1)
				if pace > 0 {
					time.Sleep(pace)
				}
			}
		}()
	}
	return &wg
}

func (r *legitRun) fail(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 20 {
		r.errs = append(r.errs, s)
	}
}

func newLegitRun() *legitRun { return &legitRun{sent: map[string]bool{}} }

func atkClient(t testing.TB, dial string, opts ...any) *Socket {
	t.Helper()
	s, err := NewReqSocket()
	if err != nil {
		t.Fatal(err)
	}
	// Epoch keys off: the attacks mutate captured requests as requests
	// without extension elements (a WANT_EPOCH element would turn some
	// flag mutations back into the original bytes, a replay).
	mustSet(t, s, append([]any{OptionMechanism, MechanismCurve, OptionEpochs, EpochsOff,
		mangos.OptionSendDeadline, 10 * time.Second, mangos.OptionRecvDeadline, 20 * time.Second}, opts...)...)
	if err := s.Dial(dial); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Attack classes.
const (
	atkRandom = iota
	atkTruncated
	atkFlipped
	atkReplayRequest
	atkReplayReply
	atkReflected
	atkUnknownServerKey
	atkUnauthorized
	atkAnonymous
	atkImpersonate
	atkWeakEph
	atkWeakClient
	atkOversized
	atkPingWithBody
	atkUnknownVersion
	atkUnknownSuite
	atkNonCanonicalEph // v2: C' with bit 255 set, or u >= p
	atkEquivalentEph   // v2: C' replaced by another encoding of the same point
	atkZeroCounter     // v2: N = 0
	atkFlags           // v2: a reserved flag set
	atkExtNoFlags      // v2: an extension length without a flag
	numAtk
)

var atkNames = [numAtk]string{"random-bytes", "truncated", "bit-flipped", "replayed-request", "replayed-reply-as-request",
	"request-reflected-as-reply", "unknown-server-key", "unauthorized-client", "anonymous-client", "impersonation (bad vouch)",
	"weak-short-term-key", "weak-long-term-key", "oversized-body", "ping-with-body", "unknown-version", "unknown-suite",
	"non-canonical-short-term-key", "equivalent-short-term-key", "zero-counter", "reserved-flag", "extension-without-flag"}

// atkWeakPoint is a point of order 8 (Wycheproof / libsodium blocklist),
// canonical.
var atkWeakPoint = [wire.KeySize]byte{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
	0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00}

// attacker makes hostile bodies. It knows the server's public key, its
// own long-term key, the public keys of legitimate clients, and whatever
// the tap captured.
type attacker struct {
	t        testing.TB
	rng      *rand.Rand
	server   PublicKey
	own      SecretKey
	victim   PublicKey
	ledger   *nonceLedger
	sess     *atkSession // own short-term key with the server
	wrong    *atkSession // the same short-term secret with a key that is not the server's
	ownID    *wire.Identity
	impID    *wire.Identity // claims the victim, vouched with the attacker's key
	weakID   *wire.Identity
	counter  uint64
	equivTab map[[wire.KeySize]byte][][32]byte
}

func newAttacker(t testing.TB, seed uint64, server, victim PublicKey, l *nonceLedger) *attacker {
	a := &attacker{t: t, rng: rand.New(rand.NewPCG(seed, 7)), server: server, victim: victim, ledger: l,
		equivTab: map[[wire.KeySize]byte][][32]byte{}}
	a.own = atkSeeded(fmt.Sprint("attacker ", seed))
	r := atkRand(fmt.Sprint("attacker eph ", seed))
	secret, eph := atkShortTerm(t, r)
	a.sess = atkSessionFrom(t, &secret, eph, server)
	a.wrong = atkSessionFrom(t, &secret, eph, atkSeeded("not the server").Public())
	e := uint64(time.Now().Add(time.Hour).UnixMilli())
	a.ownID = atkIdentity(t, a.own, nil, eph, a.sess.server, e)
	a.impID = &wire.Identity{Client: [wire.KeySize]byte(victim), Vouch: a.ownID.Vouch, Expiry: e}
	a.weakID = &wire.Identity{Client: atkWeakPoint, Vouch: a.ownID.Vouch, Expiry: e}
	return a
}

func (a *attacker) randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(a.rng.Uint32())
	}
	return b
}

// equivalentsOf caches atkEquivalents of a captured C'.
func (a *attacker) equivalentsOf(eph []byte) [][32]byte {
	k := [wire.KeySize]byte(eph)
	if a.equivTab[k] == nil {
		a.equivTab[k] = atkEquivalents(a.t, k)
	}
	return a.equivTab[k]
}

// make returns a hostile body of class c, the reason the server must
// count for it, and false when it cannot be made yet (nothing captured).
// For replays the reason is ReasonNone: see the accounting in
// TestAttackUnderLoad.
func (a *attacker) make(c int) ([]byte, Reason, bool) {
	now := uint64(time.Now().UnixMilli())
	a.counter++
	msg := []byte("let me in")
	switch c {
	case atkRandom:
		b := a.randBytes(a.rng.IntN(300))
		if len(b) > 0 && a.rng.IntN(2) == 0 {
			b[0] = wire.Version // get past the version check more often
			if len(b) > 2 {
				b[1], b[2] = byte(1+a.rng.IntN(4)), byte(1+a.rng.IntN(2))
			}
			if len(b) >= wire.HeaderSize && a.rng.IntN(2) == 0 {
				b[3] = 0 // and past the field checks
				binary.BigEndian.PutUint64(b[36:], 1+uint64(a.rng.IntN(1000)))
				b[52], b[53] = 0, 0
			}
		}
		return b, atkSpecReason(b), true
	case atkTruncated, atkFlipped, atkReplayRequest, atkReflected, atkUnknownVersion, atkUnknownSuite,
		atkNonCanonicalEph, atkEquivalentEph, atkZeroCounter, atkFlags, atkExtNoFlags:
		cap := a.ledger.sample(a.rng, false)
		if cap == nil {
			return nil, 0, false
		}
		b := bytes.Clone(cap)
		switch c {
		case atkTruncated:
			b = b[:a.rng.IntN(len(b))]
		case atkFlipped:
			for n := 1 + a.rng.IntN(3); n > 0; n-- {
				b[a.rng.IntN(len(b))] ^= 1 << a.rng.IntN(8)
			}
			if bytes.Equal(b, cap) {
				b[len(b)-1] ^= 1
			}
		case atkReplayRequest:
			return b, ReasonNone, true
		case atkReflected:
			b[1] = wire.KindReply
		case atkUnknownVersion:
			b[0] = byte(3 + a.rng.IntN(254)) // 3..255, 0 and 1
		case atkUnknownSuite:
			b[2] = byte(3 + a.rng.IntN(254))
		case atkNonCanonicalEph:
			if a.rng.IntN(2) == 0 {
				b[35] |= 0x80
			} else {
				copy(b[4:36], bytes.Repeat([]byte{0xff}, 32))
				b[4], b[35] = 0xed+byte(a.rng.IntN(0x13)), 0x7f // p .. 2^255-1
			}
		case atkEquivalentEph:
			eq := a.equivalentsOf(b[4:36])
			k := eq[2*(1+a.rng.IntN(7))] // a canonical encoding other than the original
			copy(b[4:36], k[:])
		case atkZeroCounter:
			clear(b[36:44])
		case atkFlags:
			b[3] = 1 << a.rng.IntN(8)
		case atkExtNoFlags:
			binary.BigEndian.PutUint16(b[52:], uint16(1+a.rng.IntN(60)))
		}
		return b, atkSpecReason(b), true
	case atkReplayReply:
		b := a.ledger.sample(a.rng, true)
		if b == nil {
			return nil, 0, false
		}
		return bytes.Clone(b), atkSpecReason(b), true
	case atkUnknownServerKey:
		return a.wrong.seal(wire.KindRequest, wire.SuiteBox, a.counter, now, nil, msg), ReasonForged, true
	case atkUnauthorized: // a genuine vouch for a key the policy does not list
		return a.sess.seal(wire.KindRequestVouched, wire.SuiteBox, a.counter, now, a.ownID, msg), ReasonNotAuthorized, true
	case atkAnonymous:
		return a.sess.seal(wire.KindRequest, wire.SuiteBox, a.counter, now, nil, msg), ReasonNotAuthorized, true
	case atkImpersonate:
		return a.sess.seal(wire.KindRequestVouched, wire.SuiteBox, a.counter, now, a.impID, msg), ReasonBadVouch, true
	case atkWeakEph:
		b := a.sess.seal(wire.KindRequest, wire.SuiteBox, a.counter, now, nil, []byte("x"))
		if a.rng.IntN(2) == 0 {
			copy(b[4:36], atkWeakPoint[:])
		} else {
			clear(b[4:36])
		}
		return b, ReasonWeakKey, true
	case atkWeakClient:
		return a.sess.seal(wire.KindRequestVouched, wire.SuiteBox, a.counter, now, a.weakID, []byte("x")), ReasonWeakKey, true
	case atkOversized:
		// Large but under the transports' 1 MiB limit, so that it reaches
		// a worker and is counted; a forged box of 256 KiB under a fresh
		// random C'.
		b := append([]byte{wire.Version, wire.KindRequestVouched, wire.SuiteBox, 0}, a.randBytes(32)...)
		b[35] &= 0x3f
		b = binary.BigEndian.AppendUint64(b, 1)
		b = binary.BigEndian.AppendUint64(b, now)
		b = append(b, 0, 0)
		b = append(b, a.randBytes(256<<10)...)
		return b, atkSpecReason(b), true
	case atkPingWithBody:
		return a.sess.seal(wire.KindPing, wire.SuiteBox, a.counter, now, nil, []byte("body")), ReasonMalformed, true
	}
	panic("unknown class")
}

// peakMem samples HeapInuse until stop is closed.
func peakMem(stop chan struct{}) func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { <-done; return peak.Load() }
}

// serverStateOf is the v2 server state machine of a curve REP socket
// (nil before its engine is built).
func serverStateOf(s *Socket) *servercore.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, _ := s.srv.(*curveServer)
	if cs == nil {
		return nil
	}
	return cs.state.Load()
}

// TestAttackUnderLoad: legitimate clients (authorized long-term keys, many
// contexts) through a recording tap and a device to three REP workers
// sharing one server key, while two attackers with raw xreq sockets on
// the device's front send every hostile class as fast as it takes them.
//
// Accounting. Every attack message is sent with a valid SP header, so the
// device forwards it and exactly one worker handles it; each handled
// message is either delivered (Opened) or counted once in Rejected
// (refusals, hints and drops alike). The workers' key-agreement budget is
// off (0), so that no message is hinted BUSY and every reason is exact
// (TestAttackBudget floods the budget). Legitimate clients retry after 2 s
// (mangos resends identical bytes); the tap counts every legitimate
// request including retries. Hence, summed over workers:
//
//	Opened + TotalRejected == legitimate requests seen by the tap + attack messages
//
// For every class but replays the reason is known in advance (sealed
// classes by construction, the rest by predictReason from SPEC.md §6), so
// Rejected[r] must equal the prediction for each r other than retry,
// replayed and in-doubt. A replayed request ends as retry (the same
// worker answers from its reply cache or ignores a duplicate in
// progress), replayed (its reply left the cache or was resent 4 times),
// in-doubt (older than the replay window of its C') or, at another
// worker, as a new delivery: the
// documented cross-instance replay within the freshness window (SPEC.md
// §11). Legitimate retries end the same ways. So retry + replayed +
// in-doubt + (Opened - legitimate round trips) == replays + retries, and
// the applications see each request at most once per worker, never one
// that no client sent.
func TestAttackUnderLoad(t *testing.T) {
	const workers, workerCtxs, clients, clientCtxs = 3, 4, 4, 8
	rounds, attackBudget, attackTime := 40, 6000, 12*time.Second
	if testing.Short() {
		rounds, attackBudget, attackTime = 10, 1500, 4*time.Second
	}
	stopMem := make(chan struct{})
	peak := peakMem(stopMem)

	server := atkSeeded("attack server")
	keys := make([]SecretKey, clients)
	authorized := make([]PublicKey, clients)
	for i := range keys {
		keys[i] = atkSeeded(fmt.Sprint("attack client ", i))
		authorized[i] = keys[i].public
	}
	const peerCap, replySlots, replyBytes = 64, 1024, 256 << 10
	dev := newAtkDevice(t, "tcp://127.0.0.1:0", inprocAddr(t))
	ws := make([]*atkWorker, workers)
	for i := range ws {
		ws[i] = startAtkWorker(t, dev.backAddr, workerCtxs, OptionSecretKey, server, OptionAuthorizedKeys, authorized,
			OptionPeerCacheSize, peerCap, OptionReplyCacheSize, replySlots, OptionReplyCacheBytes, replyBytes,
			OptionKeyAgreementBudget, 0)
	}
	ledger := newNonceLedger()
	tapAddr := startNonceTap(t, ledger, "tcp://127.0.0.1:0", dev.frontAddr)

	legit := newLegitRun()
	var legitWG []*sync.WaitGroup
	for i := 0; i < clients; i++ {
		c := atkClient(t, tapAddr, OptionServerKey, server.public, OptionSecretKey, keys[i], mangos.OptionRetryTime, 2*time.Second)
		legitWG = append(legitWG, legit.run(c, i, clientCtxs, rounds, time.Millisecond))
	}

	// Two attackers, each its own raw connection to the device's front.
	var sentBy [numAtk]atomic.Int64
	var predicted [numReasons]atomic.Int64
	var attackWG sync.WaitGroup
	deadline := time.Now().Add(attackTime)
	var legitDone atomic.Bool
	for ai := 0; ai < 2; ai++ {
		raw, err := xreq.NewSocket()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		mustSet(t, raw, mangos.OptionSendDeadline, 5*time.Second, mangos.OptionRecvDeadline, 100*time.Millisecond)
		if err := raw.Dial(dev.frontAddr); err != nil {
			t.Fatal(err)
		}
		a := newAttacker(t, uint64(ai+1), server.public, authorized[0], ledger)
		attackWG.Add(2)
		var sending atomic.Bool
		sending.Store(true)
		go func() { // drain whatever comes back; it opens for nobody
			defer attackWG.Done()
			for sending.Load() {
				raw.RecvMsg()
			}
		}()
		go func() {
			defer attackWG.Done()
			defer sending.Store(false)
			for n := 0; n < attackBudget/2 && time.Now().Before(deadline) && !(legitDone.Load() && n > attackBudget/8); n++ {
				c := n % numAtk
				b, r, ok := a.make(c)
				if !ok {
					c = atkRandom
					b, r, _ = a.make(c)
				}
				m := mangos.NewMessage(len(b))
				m.Header = binary.BigEndian.AppendUint32(m.Header, 0x80000000|uint32(n))
				m.Body = append(m.Body, b...)
				if err := raw.SendMsg(m); err != nil {
					t.Errorf("attacker send: %v", err)
					return
				}
				sentBy[c].Add(1)
				if c != atkReplayRequest {
					predicted[r].Add(1)
				}
			}
		}()
	}
	for _, wg := range legitWG {
		wg.Wait()
	}
	legitDone.Store(true)
	attackWG.Wait()

	var attackSent, replays int64
	for c := range sentBy {
		attackSent += sentBy[c].Load()
	}
	replays = sentBy[atkReplayRequest].Load()
	legitTotal := int64(clients * clientCtxs * rounds)
	ledger.mu.Lock()
	legitSent := int64(ledger.nReq) // legitimate requests including retries
	ledger.mu.Unlock()
	retries := legitSent - legitTotal

	// Wait (bounded) until the workers have handled everything sent.
	var total Stats
	sum := func() {
		total = Stats{Rejected: map[Reason]uint64{}}
		for _, w := range ws {
			st := w.sock.Stats()
			total.Opened += st.Opened
			total.Sealed += st.Sealed
			total.Answered += st.Answered
			for r, n := range st.Rejected {
				total.Rejected[r] += n
			}
		}
	}
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		sum()
		if int64(total.Opened+total.TotalRejected()) >= legitSent+attackSent || time.Now().After(end) {
			break
		}
	}
	close(stopMem)
	memPeak := peak()

	legit.mu.Lock()
	for _, e := range legit.errs {
		t.Errorf("legitimate client: %s", e)
	}
	legit.mu.Unlock()
	if got := legit.rounds.Load(); got != legitTotal {
		t.Errorf("legitimate round trips: %d of %d", got, legitTotal)
	}
	if got := int64(total.Opened + total.TotalRejected()); got != legitSent+attackSent {
		t.Errorf("workers handled %d messages, want %d legitimate (%d retries) + %d attack", got, legitSent, retries, attackSent)
	}
	// Messages from unknown short-term keys may be dropped unread when
	// the REP side's queue for them is full (ReasonBusy, issue 10): each
	// such drop is missing from the reason it was predicted under.
	var short int64
	for r := Reason(1); r < numReasons; r++ {
		if r == ReasonRetry || r == ReasonReplayed || r == ReasonInDoubt || r == ReasonBusy {
			continue
		}
		got, want := total.Rejected[r], uint64(predicted[r].Load())
		if got > want {
			t.Errorf("rejected as %s: %d, predicted %d", r, got, want)
		}
		short += int64(want - got)
	}
	extra := int64(total.Opened) - legitTotal
	dupReasons := total.Rejected[ReasonRetry] + total.Rejected[ReasonReplayed] + total.Rejected[ReasonInDoubt]
	got := int64(dupReasons) + extra
	if got > replays+retries {
		t.Errorf("duplicates: retry %d + replayed %d + in-doubt %d + delivered elsewhere %d = %d, sent %d replays + %d retries",
			total.Rejected[ReasonRetry], total.Rejected[ReasonReplayed], total.Rejected[ReasonInDoubt], extra, got, replays, retries)
	}
	// Busy: the BUSY hints predicted (the key-agreement budget) plus the
	// drops of the dispatcher's full queue for unknown keys.
	short += replays + retries - got
	if busy := int64(total.Rejected[ReasonBusy]) - predicted[ReasonBusy].Load(); short != busy {
		t.Errorf("%d messages missing from their predicted reasons, %d dropped as busy beyond the %d BUSY hints predicted",
			short, busy, predicted[ReasonBusy].Load())
	}

	// What the applications saw.
	perID := map[string]int{}
	for i, w := range ws {
		w.mu.Lock()
		for _, b := range w.bad {
			t.Errorf("worker %d: %s", i, b)
		}
		for id, n := range w.seen {
			if n != 1 {
				t.Errorf("worker %d saw %s %d times", i, id, n)
			}
			if !legit.sent[id] {
				t.Errorf("worker %d saw %s, which no client sent", i, id)
			}
			perID[id]++
		}
		w.mu.Unlock()
	}
	var dups int64
	for id := range legit.sent {
		switch n := perID[id]; {
		case n == 0:
			t.Errorf("%s never reached an application", id)
		case n > workers:
			t.Errorf("%s reached applications %d times", id, n)
		default:
			dups += int64(n - 1)
		}
	}
	if dups != extra {
		t.Errorf("applications saw %d cross-instance replays, workers opened %d extra", dups, extra)
	}
	ledger.check(t)

	// Caches stay within their caps.
	for i, w := range ws {
		st := serverStateOf(w.sock)
		if st == nil {
			t.Fatalf("worker %d has no curve server", i)
		}
		peers, tombs, rb := st.Size()
		if peers > peerCap {
			t.Errorf("worker %d: %d peers cached, cap %d", i, peers, peerCap)
		}
		if rb > replyBytes {
			t.Errorf("worker %d: reply cache holds %d bytes, cap %d", i, rb, replyBytes)
		}
		if peers+tombs > clients {
			t.Errorf("worker %d: %d peers and %d tombstones, but only %d legitimate clients can enter the cache", i, peers, tombs, clients)
		}
	}
	const memCap = 512 << 20
	if memPeak > memCap {
		t.Errorf("heap in use peaked at %d MiB, over %d MiB", memPeak>>20, memCap>>20)
	}

	var classes []string
	for c := range sentBy {
		classes = append(classes, fmt.Sprintf("%s=%d", atkNames[c], sentBy[c].Load()))
	}
	var reasons []string
	for r := Reason(1); r < numReasons; r++ {
		if n := total.Rejected[r]; n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
		}
	}
	t.Logf("legitimate round trips %d; attack messages %d (%s)", legit.rounds.Load(), attackSent, strings.Join(classes, " "))
	t.Logf("rejected %d (%s); answered by REP itself %d; cross-instance replays delivered %d", total.TotalRejected(), strings.Join(reasons, " "), total.Answered, extra)
	t.Logf("tap: %d requests (%d retries), %d replies and refusals, no nonce reused, refusals deterministic; HeapInuse peak %.1f MiB", legitSent, retries, ledger.nRep, float64(memPeak)/(1<<20))
}

// TestAttackReflectionToClient: a rogue "worker" on the device's back
// answers legitimate requests with the request itself, its kind relabelled
// as a reply or refusal (full length, or cut to a refusal's 19 bytes or a
// reply's minimum), hints of the wrong length, a v1-looking answer, or
// bytes that are no secsock message. The client never accepts any of
// them: each Recv fails at once with a typed, advisory error (SPEC.md §7:
// nothing the rogue can make without s verifies), never an authenticated
// refusal.
func TestAttackReflectionToClient(t *testing.T) {
	server := atkSeeded("reflect server")
	dev := newAtkDevice(t, inprocAddr(t), inprocAddr(t))
	rogue, err := xrep.NewSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rogue.Close() })
	if err := rogue.Dial(dev.backAddr); err != nil {
		t.Fatal(err)
	}
	mutations := []struct {
		f    func([]byte) []byte
		want error
	}{
		{func(b []byte) []byte { return b }, ErrNotSecsock}, // the request echoed: a plain peer (SPEC §7 step 1)
		{func(b []byte) []byte { b[1] = wire.KindReply; return b }, ErrAuthFailed},
		{func(b []byte) []byte { b[1] = wire.KindRefusal; return b }, ErrMalformed},
		{func(b []byte) []byte { b[1] = wire.KindRefusal; return b[:wire.RefusalSize] }, ErrAuthFailed},
		{func(b []byte) []byte { b[1] = wire.KindReply; return b[:wire.ReplyOverhead] }, ErrAuthFailed},
		{func(b []byte) []byte { return append(b[:1:1], wire.KindHint, wire.HintCannotOpen, 0) }, ErrMalformed},
		{func(b []byte) []byte { return b[:2:2] }, ErrNotSecsock},
		{func(b []byte) []byte { b[1] = 0x16; return b }, ErrUnknownKind},
		{func(b []byte) []byte { b[0] = 0x01; b[1] = wire.KindReply; return b }, ErrNotSecsock}, // another version: not a secsock v2 answer (SPEC §7 step 1)
		{func([]byte) []byte { return []byte("plain reply") }, ErrNotSecsock},
	}
	go func() {
		for i := 0; ; i++ {
			m, err := rogue.RecvMsg()
			if err != nil {
				return
			}
			// xrep keeps the backtrace in the header; the body is the
			// sealed request, sent back as the "reply".
			m.Body = mutations[i%len(mutations)].f(m.Body)
			if rogue.SendMsg(m) != nil {
				return
			}
		}
	}()
	for _, vouched := range []bool{false, true} {
		// Grace 0: each reflection is reported at once, without the
		// advisory resends that would meet the next mutations.
		opts := []any{OptionServerKey, server.public, mangos.OptionRetryTime, time.Duration(0), mangos.OptionRecvDeadline, 5 * time.Second,
			OptionAdvisoryGrace, time.Duration(0)}
		if vouched {
			opts = append(opts, OptionSecretKey, atkSeeded("reflect client"))
		}
		c := atkClient(t, dev.frontAddr, opts...)
		for i := 0; i < 3*len(mutations); i++ {
			if err := c.Send([]byte("secret request")); err != nil {
				t.Fatal(err)
			}
			got, err := c.Recv()
			if err == nil || errors.Is(err, mangos.ErrRecvTimeout) {
				t.Fatalf("reflection %d: client accepted %q (err %v)", i, got, err)
			}
			if !isAdvisory(err) {
				t.Fatalf("reflection %d: %v is not advisory: a rogue without keys made an authenticated answer", i, err)
			}
			if want := mutations[i%len(mutations)].want; !errors.Is(err, want) {
				t.Errorf("reflection %d (vouched %v): %v, want %v", i, vouched, err, want)
			}
		}
		st := c.Stats()
		if st.Opened != 0 || st.TotalRejected() != uint64(3*len(mutations)) {
			t.Fatalf("client stats %+v", st)
		}
	}
}
