package secsock

// The hybrid mode (SPEC.md §16) end to end: the quantum attacker (every
// X25519 secret, not the seed) opens nothing sealed in the mode and
// everything sealed without it; the converse (the ML-KEM secrets alone)
// opens nothing; tickets across workers; no silent downgrade. The
// attackers derive keys from the SPEC text with the standard library and
// x/crypto, not through internal/wire.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/secretbox"

	"github.com/secsock/secsock/internal/wire"
)

// hybridThief opens recorded traffic with what it holds: the server's
// secret key (or not), the epoch X25519 secrets, and, when it stole the
// seed, each epoch's ML-KEM decapsulation key and ticket key.
type hybridThief struct {
	thief
	kem map[[8]byte]hybridLoot // by epoch id
	// eph, when set, is the client's short-term secret c': the thief
	// derives dh1 and dhE from it instead of from s and esk (the same
	// values, SPEC.md §4.2, §14.3), and needs no server secret, only the
	// server's public key pub.
	eph *[32]byte
	pub PublicKey
}

// serverPub is the server's public key as the thief knows it.
func (th *hybridThief) serverPub() PublicKey {
	if th.eph != nil {
		return th.pub
	}
	return th.server.Public()
}

// hybridLoot is one epoch's ML-KEM and ticket keys, derived from a stolen
// seed as SPEC.md §16.1 says.
type hybridLoot struct {
	index uint32
	dk    *mlkem.DecapsulationKey768
	tk    []byte
}

func (th *hybridThief) stealSeed(seed0 [32]byte, upTo uint32) {
	th.kem = map[[8]byte]hybridLoot{}
	seed := seed0[:]
	for i := uint32(0); i <= upTo; i++ {
		var esk [32]byte
		copy(esk[:], hm(seed, []byte("secsock v2 epoch key")))
		pub, _ := curve25519.X25519(esk[:], curve25519.Basepoint)
		id := sha256Sum(pub)
		dz := append(hm(seed, []byte("secsock v2 epoch kem"), []byte{1}), hm(seed, []byte("secsock v2 epoch kem"), []byte{2})...)
		dk, err := mlkem.NewDecapsulationKey768(dz)
		if err != nil {
			panic(err)
		}
		var k [8]byte
		copy(k[:], id[:8])
		th.kem[k] = hybridLoot{index: i, dk: dk, tk: hm(seed, []byte("secsock v2 epoch ticket"))}
		seed = hm(seed, []byte("secsock v2 epoch ratchet"))
	}
}

// keys returns the thief's Kq, Kr and REPLY_EXT key for a recorded
// request: the epoch chain of the epoch thief, then the hybrid element
// (SPEC.md §16.3, §16.4) when it has the seed. A quantum attacker without
// the seed derives the classical chain only.
func (th *hybridThief) keys(req []byte) (kq, kr, krx [32]byte, ok bool) {
	if th.eph != nil {
		kq, kr, krx, ok = th.classicalFromEph(req)
	} else {
		kq, kr, krx, ok = th.requestKeys(req)
	}
	x := int(binary.BigEndian.Uint16(req[52:54]))
	ext := req[54 : 54+x]
	if !ok || len(ext) < 11+3 || (ext[11] != 1 && ext[11] != 2) || th.kem == nil {
		return kq, kr, krx, ok // no hybrid element, or no seed to use it with
	}
	var id [8]byte
	copy(id[:], ext[3:11])
	loot, found := th.kem[id]
	if !found {
		return kq, kr, krx, false
	}
	prkE := th.epochPRK(req)
	n := int(binary.BigEndian.Uint16(ext[12:14]))
	elem := ext[11 : 14+n]
	var prk []byte
	if ext[11] == 1 {
		ss, err := loot.dk.Decapsulate(elem[3:])
		if err != nil {
			return kq, kr, krx, false
		}
		prk = hm(prkE, []byte("secsock v2 ext"), []byte{1}, ss, loot.dk.EncapsulationKey().Bytes(), elem)
	} else {
		q, ok := openTicket(loot, elem[3:], req, th.serverPub())
		if !ok {
			return kq, kr, krx, false
		}
		prk = hm(prkE, []byte("secsock v2 ext"), []byte{2}, q, elem)
	}
	suite := req[2]
	copy(kq[:], hm(prk, []byte("secsock v2 c2s"), []byte{suite, 1}))
	copy(kr[:], hm(prk, []byte("secsock v2 s2c"), []byte{suite, 1}))
	copy(krx[:], hm(prk, []byte("secsock v2 s2c ext"), []byte{suite, 1}))
	return kq, kr, krx, true
}

// epochPRK is prkE of a request with an EPOCH element (SPEC.md §14.3),
// or prk0 of one without, from s and esk, or from c' when the thief holds
// it.
func (th *hybridThief) epochPRK(req []byte) []byte {
	eph, srv := req[4:36], th.serverPub()
	dh1, _ := curve25519.X25519(th.server.bytes()[:], eph)
	if th.eph != nil {
		dh1, _ = curve25519.X25519(th.eph[:], srv[:])
	}
	prk := hm([]byte("secsock v2 request"), dh1, eph, srv[:])
	if req[3]&1 == 0 {
		return prk // no EPOCH element: prk0
	}
	for pub, esk := range th.epochSecrets {
		if h := sha256Sum(pub[:]); bytes.Equal(h[:8], req[57:65]) {
			dhE, _ := curve25519.X25519(esk[:], eph)
			if th.eph != nil {
				dhE, _ = curve25519.X25519(th.eph[:], pub[:])
			}
			return hm(prk, []byte("secsock v2 ext"), []byte{0}, dhE, pub[:], req[54:65])
		}
	}
	return nil
}

// classicalFromEph is requestKeys with c': the classical chain only.
func (th *hybridThief) classicalFromEph(req []byte) (kq, kr, krx [32]byte, ok bool) {
	prk := th.epochPRK(req)
	if prk == nil {
		return kq, kr, krx, false
	}
	suite := req[2]
	copy(kq[:], hm(prk, []byte("secsock v2 c2s"), []byte{suite, 1}))
	copy(kr[:], hm(prk, []byte("secsock v2 s2c"), []byte{suite, 1}))
	copy(krx[:], hm(prk, []byte("secsock v2 s2c ext"), []byte{suite, 1}))
	return kq, kr, krx, true
}

// openTicket opens a ticket as SPEC.md §16.4 says.
func openTicket(loot hybridLoot, t, req []byte, srv PublicKey) ([]byte, bool) {
	if len(t) != 64 {
		return nil, false
	}
	kt := hm(loot.tk, []byte("secsock v2 ticket"), t[:16])
	b, _ := aes.NewCipher(kt)
	g, _ := cipher.NewGCM(b)
	ad := append(append(bytes.Clone(req[4:36]), srv[:]...), binary.BigEndian.AppendUint32(nil, loot.index)...)
	ad = append(append(ad, req[57:65]...), 1, req[2])
	q, err := g.Open(nil, make([]byte, 12), t[16:], ad)
	return q, err == nil
}

// open opens a recorded BOX request's identity box (vouched kinds) and
// body box, and its reply.
func (th *hybridThief) open(req, reply []byte) (identity, body, answer bool) {
	kq, kr, krx, ok := th.keys(req)
	if !ok {
		return false, false, false
	}
	x := int(binary.BigEndian.Uint16(req[52:54]))
	off := 54 + x
	nonce := func(part byte) *[24]byte {
		var n [24]byte
		n[0], n[1], n[2] = part, req[1], req[3]
		copy(n[8:], req[36:52])
		return &n
	}
	identity = true
	if req[1] == 2 || req[1] == 4 {
		_, identity = secretbox.Open(nil, req[off:off+88], nonce(2), &kq)
		off += 88
	}
	_, body = secretbox.Open(nil, req[off:], nonce(1), &kq)
	var n [24]byte
	copy(n[:16], reply[3:19])
	copy(n[16:], req[36:44])
	key := kr
	if reply[1] == 0x14 {
		key = krx
	}
	_, answer = secretbox.Open(nil, reply[19:], &n, &key)
	return identity, body, answer
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// hybridScenario records a vouched client's session through a tap: with
// the mode, the key-fetch ping, the first request (ciphertext), two with
// the ticket and Authenticate's vouched ping; without it, Authenticate's
// ping for the epoch keys and the same three requests.
func hybridScenario(t *testing.T, hybrid bool) (reqs, reps [][]byte, sk SecretKey, seed0 [32]byte) {
	reqs, reps, sk, seed0, _ = hybridScenarioEph(t, hybrid)
	return
}

// hybridScenarioEph is hybridScenario that also returns the client's
// short-term secret c' (its randomness is injected).
func hybridScenarioEph(t *testing.T, hybrid bool) (reqs, reps [][]byte, sk SecretKey, seed0, eph [32]byte) {
	t.Helper()
	origin := time.Now().Add(-time.Minute)
	seed, err := newEpochSeed(rand.Reader, origin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	seed0 = **seed.seed
	sk = mustKey(t)
	mode := HybridOff
	if hybrid {
		mode = HybridOn
	}
	tp, dialFront, listenBack := newTap(t, "inproc", "inproc")
	rep := newRep(t, sk, OptionEpochSeed, seed, OptionHybrid, mode)
	listenBack(rep)
	serveEcho(t, 0, rep)
	cl := newReq(t, sk.Public(), OptionSecretKey, mustKey(t), OptionHybrid, mode, OptionAuthenticateFirst, !hybrid)
	if _, err := rand.Read(eph[:]); err != nil {
		t.Fatal(err)
	}
	cl.mu.Lock()
	cl.cfg.rand = bytes.NewReader(eph[:]) // the one short-term key of the scenario
	cl.mu.Unlock()
	cl.eng.Store(nil)
	dialFront(cl)
	for _, body := range []string{"first secret", "second secret", "third secret"} {
		if got, err := roundTrip(cl, body); err != nil || string(got) != "echo:"+body {
			t.Fatalf("%s: %q %v", body, got, err)
		}
	}
	if err := cl.Authenticate(); err != nil {
		t.Fatal(err)
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(tp.requests) != 5 || len(tp.replies) != 5 {
		t.Fatalf("recorded %d requests, %d replies; want 5", len(tp.requests), len(tp.replies))
	}
	if pub, _ := curve25519.X25519(eph[:], curve25519.Basepoint); !bytes.Equal(pub, tp.requests[1][4:36]) {
		t.Fatal("the client did not use the injected short-term key")
	}
	return tp.requests, tp.replies, sk, seed0, eph
}

// TestHybridQuantumAttacker: an attacker holding every X25519 secret
// (the server's long-term key and the epoch secrets; and, played apart,
// the client's short-term secret c', which gives the same agreements) but
// not the seed opens nothing sealed in the hybrid mode: first request,
// ticket requests, replies, identity boxes. The same material opens all of the same
// traffic sealed without the mode, so the test can fail. With the seed
// too, the attacker's code opens the hybrid traffic: its derivation is
// the SPEC's.
func TestHybridQuantumAttacker(t *testing.T) {
	for _, hybrid := range []bool{true, false} {
		reqs, reps, sk, seed0, eph := hybridScenarioEph(t, hybrid)
		q := &hybridThief{thief: thief{server: sk, seed: seed0, maxEpoch: 2}}
		q.epochSecrets = q.epochKeys()
		// The same attacker holding the client's short-term secret instead.
		qc := &hybridThief{thief: thief{server: mustKey(t), seed: seed0, maxEpoch: 2}, eph: &eph, pub: sk.Public()}
		qc.epochSecrets = q.epochSecrets
		first := 0
		if hybrid {
			first = 1 // the key-fetch ping: anonymous, empty, public keys only
			if reqs[0][1] != wire.KindPing || reqs[0][3] != 1<<wire.ElemWantEpoch|1<<wire.ElemWantKEM {
				t.Fatalf("the first message is not the anonymous key-fetch ping: kind %#x flags %#x", reqs[0][1], reqs[0][3])
			}
			for i, want := range []byte{1 << wire.ElemKEMCiphertext, 1 << wire.ElemKEMTicket, 1 << wire.ElemKEMTicket, 1 << wire.ElemKEMTicket} {
				if reqs[i+1][3]&(1<<wire.ElemKEMCiphertext|1<<wire.ElemKEMTicket) != want {
					t.Fatalf("message %d: flags %#x", i+1, reqs[i+1][3])
				}
			}
		}
		for i := first; i < len(reqs); i++ {
			for who, th := range map[string]*hybridThief{"s and esk": q, "c'": qc} {
				id, body, answer := th.open(reqs[i], reps[i])
				if hybrid && (id || body || answer) {
					t.Errorf("hybrid message %d: the quantum attacker with %s opened identity %v, body %v, reply %v", i, who, id, body, answer)
				}
				if !hybrid && !(id && body && answer) {
					t.Errorf("control, without the mode, with %s: message %d: identity %v, body %v, reply %v", who, i, id, body, answer)
				}
			}
		}
		if !hybrid {
			continue
		}
		// Control: with the seed as well, the attacker's code opens it all.
		q.stealSeed(seed0, 2)
		qc.kem = q.kem
		for i := first; i < len(reqs); i++ {
			for who, th := range map[string]*hybridThief{"s and esk": q, "c'": qc} {
				if id, body, answer := th.open(reqs[i], reps[i]); !(id && body && answer) {
					t.Errorf("control, with the seed and %s: message %d: identity %v, body %v, reply %v", who, i, id, body, answer)
				}
			}
		}
		// The converse: the ML-KEM and ticket secrets (the whole seed)
		// without the X25519 ones open nothing.
		mlkemOnly := &hybridThief{thief: thief{server: mustKey(t), seed: seed0, maxEpoch: 2}, kem: q.kem}
		mlkemOnly.epochSecrets = mlkemOnly.epochKeys()
		for i := first; i < len(reqs); i++ {
			if id, body, answer := mlkemOnly.open(reqs[i], reps[i]); id || body || answer {
				t.Errorf("message %d: the ML-KEM secrets alone opened identity %v, body %v, reply %v", i, id, body, answer)
			}
		}
	}
}

// TestHybridAmortized: the ciphertext travels once per short-term key and
// epoch, later requests add 67 bytes to an epoch request, and steady state
// runs no ML-KEM operation.
func TestHybridAmortized(t *testing.T) {
	plain, _, _, _ := hybridScenario(t, false)
	before := wire.Decapsulations.Load()
	hy, _, _, _ := hybridScenario(t, true)
	if n := wire.Decapsulations.Load() - before; n != 1 {
		t.Fatalf("%d decapsulations for one session, want 1", n)
	}
	// Same bodies: requests 1..3 of both scenarios.
	if d := len(hy[1]) - len(plain[1]); d != wire.KEMElementSize {
		t.Errorf("first request: %d bytes more than without the mode, want %d", d, wire.KEMElementSize)
	}
	for i := 2; i <= 3; i++ {
		if d := len(hy[i]) - len(plain[i]); d != wire.TicketElementSize || d > 80 {
			t.Errorf("request %d: %d bytes more than without the mode, want %d (at most 80)", i, d, wire.TicketElementSize)
		}
	}
}

// TestHybridTicketOtherWorker: a ticket issued by one worker opens on
// another with the same seed, which runs no decapsulation for it.
func TestHybridTicketOtherWorker(t *testing.T) {
	seed, err := newEpochSeed(rand.Reader, time.Now().Add(-time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sk := mustKey(t)
	a := newRep(t, sk, OptionEpochSeed, seed, OptionHybrid, HybridOn)
	b := newRep(t, sk, OptionEpochSeed, seed, OptionHybrid, HybridOn)
	addrA, addrB := inprocAddr(t), inprocAddr(t)
	if err := a.Listen(addrA); err != nil {
		t.Fatal(err)
	}
	if err := b.Listen(addrB); err != nil {
		t.Fatal(err)
	}
	serveEcho(t, 0, a)
	serveEcho(t, 0, b)
	cl := newReq(t, sk.Public(), OptionHybrid, HybridOn)
	if err := cl.Dial(addrA); err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(cl, "to a"); err != nil || string(got) != "echo:to a" {
		t.Fatalf("%q %v", got, err)
	}
	a.Close()
	if err := cl.Dial(addrB); err != nil {
		t.Fatal(err)
	}
	before := wire.Decapsulations.Load()
	if got, err := roundTrip(cl, "to b"); err != nil || string(got) != "echo:to b" {
		t.Fatalf("%q %v", got, err)
	}
	if n := wire.Decapsulations.Load() - before; n != 0 {
		t.Errorf("worker b ran %d decapsulations for a ticket request", n)
	}
	if st := b.ServerStats(); st.Hybrid != 1 {
		t.Errorf("worker b served %d hybrid requests, want 1", st.Hybrid)
	}
}

// TestHybridNoDowngrade: a client with the mode against a server without
// it gets ErrHybridUnsupported and sends no data (the server delivers
// nothing); a server that requires the mode refuses a client without it.
func TestHybridNoDowngrade(t *testing.T) {
	seed, err := newEpochSeed(rand.Reader, time.Now().Add(-time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		server       []any
		client, want string
		err          error
	}{
		{"server without the mode", []any{OptionEpochSeed, seed}, HybridOn, "", ErrHybridUnsupported},
		{"server without a seed", nil, HybridOn, "", ErrHybridUnsupported},
		{"server requires it", []any{OptionEpochSeed, seed, OptionHybrid, HybridRequire}, HybridOff, "", ErrHybridRequired},
		{"both on", []any{OptionEpochSeed, seed, OptionHybrid, HybridRequire}, HybridOn, "echo:x", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sk := mustKey(t)
			rep := newRep(t, sk, tc.server...)
			addr := inprocAddr(t)
			if err := rep.Listen(addr); err != nil {
				t.Fatal(err)
			}
			sv := serveEcho(t, 0, rep)
			cl := newReq(t, sk.Public(), OptionHybrid, tc.client, OptionAuthenticateFirst, true)
			if err := cl.Dial(addr); err != nil {
				t.Fatal(err)
			}
			got, err := roundTrip(cl, "x")
			if !errors.Is(err, tc.err) || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if tc.err == ErrHybridUnsupported && sv.count("x") != 0 {
				t.Fatal("the server received the data")
			}
		})
	}
}

// TestHybridOptions: the mode needs epoch keys on REQ and a seed on REP,
// and PUSH/PULL have none.
func TestHybridOptions(t *testing.T) {
	sk := mustKey(t)
	cl := newReq(t, sk.Public(), OptionHybrid, HybridOn, OptionEpochs, EpochsOff)
	if err := cl.Send([]byte("x")); !errors.Is(err, mangos.ErrBadValue) {
		t.Errorf("REQ with the mode and EpochsOff: %v", err)
	}
	rep := newRep(t, sk, OptionHybrid, HybridOn)
	if err := rep.Listen(inprocAddr(t)); err == nil {
		if _, err := rep.Recv(); !errors.Is(err, mangos.ErrBadValue) {
			t.Errorf("REP with the mode and no seed: %v", err)
		}
	}
	if err := cl.SetOption(OptionHybrid, "maybe"); !errors.Is(err, mangos.ErrBadValue) {
		t.Errorf("a bad value: %v", err)
	}
	if v, err := cl.GetOption(OptionHybrid); err != nil || v != HybridOn {
		t.Errorf("GetOption: %v %v", v, err)
	}
}

// flagsOf returns a recorded request's flags byte.
func flagsOf(req []byte) byte { return req[3] }

const (
	kemFlag    = 1 << wire.ElemKEMCiphertext
	ticketFlag = 1 << wire.ElemKEMTicket
	wantKEM    = 1 << wire.ElemWantKEM
)

// TestHybridEpochs: one ciphertext per short-term key and epoch. The
// client fetches the next epoch's ML-KEM key in the last quarter of an
// epoch (no ping at the boundary), encapsulates again in the new epoch,
// pings again after sitting idle for epochs, and a ticket request replayed
// after its epoch is refused UNKNOWN_EPOCH.
func TestHybridEpochs(t *testing.T) {
	const L = 10 * time.Minute
	origin := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: origin.Add(time.Minute)}
	seed, err := newEpochSeed(rand.Reader, origin, L)
	if err != nil {
		t.Fatal(err)
	}
	sk := mustKey(t)
	tp, dialFront, listenBack := newTap(t, "inproc", "inproc")
	rep := newRep(t, sk, OptionEpochSeed, seed, OptionHybrid, HybridOn)
	useClock(rep, clock)
	addr := inprocAddr(t)
	if err := rep.Listen(addr); err != nil {
		t.Fatal(err)
	}
	listenBack(rep)
	serveEcho(t, 0, rep)
	cl := newReq(t, sk.Public(), OptionHybrid, HybridOn, OptionShortTermLifetime, 24*time.Hour)
	useClock(cl, clock)
	dialFront(cl)
	at := []time.Duration{1, 2, 8, 11, 12, 35}
	for _, m := range at {
		clock.set(origin.Add(m * time.Minute))
		if got, err := roundTrip(cl, "x"); err != nil || string(got) != "echo:x" {
			t.Fatalf("at %v min: %q %v", m, got, err)
		}
	}
	tp.mu.Lock()
	reqs := append([][]byte(nil), tp.requests...)
	tp.mu.Unlock()
	// ping, ct, ticket, ticket+WANT_KEM, ct (epoch 1), ticket, ping (epoch 3), ct.
	want := []byte{wantKEM, kemFlag, ticketFlag, ticketFlag | wantKEM, kemFlag, ticketFlag, wantKEM, kemFlag}
	if len(reqs) != len(want) {
		t.Fatalf("%d messages, want %d", len(reqs), len(want))
	}
	for i, r := range reqs {
		if got := flagsOf(r) & (kemFlag | ticketFlag | wantKEM); got != want[i] {
			t.Errorf("message %d: hybrid flags %#x, want %#x", i, got, want[i])
		}
	}
	if bytes.Equal(reqs[1][54+11:54+11+wire.KEMElementSize], reqs[4][54+11:54+11+wire.KEMElementSize]) {
		t.Error("the same ciphertext in two epochs")
	}
	// The ticket request of epoch 0, replayed in epoch 3.
	in := newInjector(t, addr)
	a := in.ask(t, reqs[2], 5*time.Second)
	if len(a) != wire.RefusalSize || a[1] != wire.KindRefusal || a[2] != wire.RefuseUnknownEpoch {
		t.Fatalf("a ticket replayed after its epoch: answer %x, want an UNKNOWN_EPOCH refusal", a)
	}
}

// TestHybridUnknownTicketResend: on a verified UNKNOWN_TICKET (a worker
// whose ticket key differs, made here by the test, which holds s) the
// client forgets the ticket and sends the body again with a fresh
// ciphertext, never without the mode.
func TestHybridUnknownTicketResend(t *testing.T) {
	seed, err := newEpochSeed(rand.Reader, time.Now().Add(-time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sk := mustKey(t)
	tp, dialFront, listenBack := newTap(t, "inproc", "inproc")
	rep := newRep(t, sk, OptionEpochSeed, seed, OptionHybrid, HybridOn)
	listenBack(rep)
	serveEcho(t, 0, rep)
	cl := newReq(t, sk.Public(), OptionHybrid, HybridOn)
	dialFront(cl)
	for _, b := range []string{"one", "two"} {
		if _, err := roundTrip(cl, b); err != nil {
			t.Fatal(err)
		}
	}
	refused := false
	tp.mu.Lock()
	tp.alterReply = func(m *mangos.Message) {
		req := tp.requests[len(tp.requests)-1]
		if refused || flagsOf(req)&ticketFlag == 0 {
			return
		}
		refused = true
		eph, srv := [32]byte(req[4:36]), [32]byte(sk.Public())
		dh, _ := wire.X25519(sk.bytes(), &eph)
		prk0 := wire.RequestSecret(&dh, &eph, &srv)
		h := req[:54+int(binary.BigEndian.Uint16(req[52:54]))]
		m.Body = wire.AppendRefusal(m.Body[:0], &prk0, h, wire.RefuseUnknownTicket)
	}
	tp.mu.Unlock()
	if got, err := roundTrip(cl, "three"); err != nil || string(got) != "echo:three" {
		t.Fatalf("after UNKNOWN_TICKET: %q %v", got, err)
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	last := tp.requests[len(tp.requests)-1]
	if !refused || flagsOf(last)&kemFlag == 0 {
		t.Fatalf("refused %v; the resend's flags %#x, want a fresh ciphertext", refused, flagsOf(last))
	}
	if bytes.Equal(last[65:65+wire.KEMElementSize], tp.requests[1][65:65+wire.KEMElementSize]) {
		t.Error("the resend carries the old ciphertext")
	}
}

// TestHybridConcurrentFirstRequests: requests sent before the ticket
// arrives carry the same ciphertext (one encapsulation per short-term key
// and epoch), and all are served.
func TestHybridConcurrentFirstRequests(t *testing.T) {
	seed, err := newEpochSeed(rand.Reader, time.Now().Add(-time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sk := mustKey(t)
	tp, dialFront, listenBack := newTap(t, "inproc", "inproc")
	rep := newRep(t, sk, OptionEpochSeed, seed, OptionHybrid, HybridOn)
	listenBack(rep)
	serveEcho(t, 20*time.Millisecond, repContexts(t, rep, 8)...)
	cl := newReq(t, sk.Public(), OptionHybrid, HybridOn)
	dialFront(cl)
	if err := cl.Authenticate(); err != nil { // key fetch, then a ping with the ciphertext
		t.Fatal(err)
	}
	tp.mu.Lock()
	n0 := len(tp.requests)
	tp.mu.Unlock()
	// A new session for the concurrent ones: rotate the short-term key.
	c := cl.engine().client.(*curveClient)
	c.cur.Store(nil)
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		ctx, err := cl.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, err := roundTrip(ctx, "c"); errs <- err }()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	reqs := tp.requests[n0:]
	var first []byte
	kems := 0
	for _, r := range reqs {
		if flagsOf(r)&kemFlag != 0 {
			kems++
			ct := r[65 : 65+wire.KEMElementSize]
			if first == nil {
				first = ct
			} else if !bytes.Equal(first, ct) {
				t.Fatal("two ciphertexts for one short-term key and epoch")
			}
		}
	}
	if kems == 0 {
		t.Fatal("no request carried the ciphertext")
	}
}

// TestHybridBodyAtTheLimit (review R4): with mangos.OptionMaxRecvSize on
// both sides, a body exactly at the limit travels in a hybrid first
// request (with its 1,091-byte ciphertext) and in its reply (with the
// ticket), and the key-fetch answer (1.2 KB of KEM_KEY) reaches a REQ
// whose limit is far smaller; one byte over is refused, authenticated.
func TestHybridBodyAtTheLimit(t *testing.T) {
	seed, err := newEpochSeed(rand.Reader, time.Now().Add(-time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{64, 4096} {
		sk := mustKey(t)
		rep := newRep(t, sk, mangos.OptionMaxRecvSize, limit, OptionEpochSeed, seed, OptionHybrid, HybridOn)
		addr := "tcp://127.0.0.1:0"
		l, err := rep.NewListener(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Listen(); err != nil {
			t.Fatal(err)
		}
		serveEcho(t, 0, rep)
		body := string(bytes.Repeat([]byte{'b'}, limit-len("echo:")))
		cl := newReq(t, sk.Public(), mangos.OptionMaxRecvSize, limit, OptionHybrid, HybridOn, OptionSecretKey, mustKey(t),
			mangos.OptionRecvDeadline, 5*time.Second)
		if err := cl.Dial(l.Address()); err != nil {
			t.Fatal(err)
		}
		if got, err := roundTrip(cl, body); err != nil || string(got) != "echo:"+body {
			t.Fatalf("limit %d: a body at the limit in a hybrid first request: %d bytes, %v", limit, len(got), err)
		}
		if got, err := roundTrip(cl, body); err != nil || string(got) != "echo:"+body {
			t.Fatalf("limit %d: a body at the limit with the ticket: %d bytes, %v", limit, len(got), err)
		}
		if _, err := roundTrip(cl, body+"123456"); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("limit %d: one byte over: %v", limit, err)
		}
	}
}

// TestHybridKeyFetchAtBoundary (review R2): a fresh client whose clock is
// in the next epoch (5 s ahead, within the skew) while the server's is 3 s
// before the boundary gets the current epoch's ML-KEM key from its first
// key-fetch ping; it pings again naming the next epoch and is served,
// instead of reporting a server that serves the mode as one without it.
func TestHybridKeyFetchAtBoundary(t *testing.T) {
	const L = 10 * time.Minute
	origin := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	boundary := origin.Add(L)
	seed, err := newEpochSeed(rand.Reader, origin, L)
	if err != nil {
		t.Fatal(err)
	}
	srvClock, clClock := &fakeClock{t: boundary.Add(-3 * time.Second)}, &fakeClock{t: boundary.Add(2 * time.Second)}
	sk := mustKey(t)
	tp, dialFront, listenBack := newTap(t, "inproc", "inproc")
	rep := newRep(t, sk, OptionEpochSeed, seed, OptionHybrid, HybridOn)
	useClock(rep, srvClock)
	listenBack(rep)
	serveEcho(t, 0, rep)
	cl := newReq(t, sk.Public(), OptionHybrid, HybridOn)
	useClock(cl, clClock)
	dialFront(cl)
	if got, err := roundTrip(cl, "hello"); err != nil || string(got) != "echo:hello" {
		t.Fatalf("%q %v", got, err)
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if n := len(tp.requests); n != 3 || flagsOf(tp.requests[1])&(1<<wire.ElemEpoch) == 0 {
		t.Fatalf("%d messages (want two key-fetch pings, the second naming the epoch, then the request)", n)
	}
}

// TestHybridKeyFetchWithPolicy: with a client policy, an authorized
// vouched client fetches the keys anonymously (answered statelessly, not
// counted as an accepted request) and is served; its identity box only
// ever travels in the mode.
func TestHybridKeyFetchWithPolicy(t *testing.T) {
	seed, err := newEpochSeed(rand.Reader, time.Now().Add(-time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sk, alice := mustKey(t), mustKey(t)
	tp, dialFront, listenBack := newTap(t, "inproc", "inproc")
	rep := newRep(t, sk, OptionEpochSeed, seed, OptionHybrid, HybridRequire, OptionAuthorizedKeys, []PublicKey{alice.Public()})
	listenBack(rep)
	serveEcho(t, 0, rep)
	cl := newReq(t, sk.Public(), OptionHybrid, HybridOn, OptionSecretKey, alice)
	dialFront(cl)
	if got, err := roundTrip(cl, "x"); err != nil || string(got) != "echo:x" {
		t.Fatalf("%q %v", got, err)
	}
	if st := rep.ServerStats(); st.Vouched != 1 || st.Anonymous != 0 || st.Hybrid != 1 {
		t.Fatalf("vouched %d, anonymous %d, hybrid %d; want 1, 0 (the key fetch is not an accepted request), 1", st.Vouched, st.Anonymous, st.Hybrid)
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for i, r := range tp.requests {
		if wire.IsVouched(r[1]) && flagsOf(r)&(kemFlag|ticketFlag) == 0 {
			t.Errorf("message %d: an identity box outside the mode", i)
		}
	}
}
