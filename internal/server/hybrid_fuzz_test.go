package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/secsock/secsock/internal/vectorfile"
	"github.com/secsock/secsock/internal/wire"
)

// hybridFuzzRequests are the genuine requests of the hybrid vectors that a
// fresh hybrid server, with the vectors' seed, delivers or answers alone
// (first requests, pings, tickets issued by hand), by name.
func hybridFuzzRequests() map[string][]byte {
	out := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join(hybridVectorDir, "*.vec"))
	sort.Strings(files)
	for _, f := range files {
		head, steps, err := vectorfile.Read(f)
		if err != nil || head.Str("hybrid") != "on" || head.Has("authorized") {
			continue
		}
		for _, st := range steps {
			if st.Str("mutated") == "false" && (st.Str("expect_server") == "deliver" || st.Str("expect_server") == "reply") {
				out[fmt.Sprintf("%s-%s", filepath.Base(f[:len(f)-4]), st.Str("step"))] = st.Hex(nilTB{}, "request")
			}
		}
	}
	return out
}

// nilTB is a vectorfile.TB for generating seeds outside a test.
type nilTB struct{}

func (nilTB) Helper()               {}
func (nilTB) Fatalf(string, ...any) { panic("bad vector file") }
func hybridFuzzSeeds() map[string][]any {
	out := map[string][]any{}
	for name, b := range hybridFuzzRequests() {
		out["valid-"+name] = []any{b}
		for _, i := range []int{2, 3, 53, 60, 70, len(b) - 1} { // suite, flags, X, inside the elements, the boxes
			if i < len(b) {
				m := bytes.Clone(b)
				m[i] ^= 0x01
				out[fmt.Sprintf("%s-flip-%d", name, i)] = []any{m}
			}
		}
	}
	return out
}

// FuzzHybridOpen: a server in the hybrid mode never panics, and delivers
// (or answers as a ping) only the genuine requests: any other bytes, with
// the same seed and clock, open nothing. The clock is the request's T, so
// freshness never hides a forgery.
func FuzzHybridOpen(f *testing.F) {
	addSeeds(f)
	genuine := map[string]bool{}
	for _, b := range hybridFuzzRequests() {
		genuine[string(b)] = true
	}
	chain := newEpochChain(secret(hybridSeed), 0, vectorTime-60000, 0)
	type era struct {
		epoch uint64
		early bool // within the skew of the next epoch
	}
	epochs := map[era]*Epochs{} // three ML-KEM key generations each: made once
	f.Fuzz(func(t *testing.T, b []byte) {
		now := uint64(vectorTime)
		if len(b) >= wire.HeaderSize {
			if ts := binary.BigEndian.Uint64(b[44:52]); ts > vectorTime-60000 && ts < vectorTime+3600000 {
				now = ts
			}
		}
		e := era{epoch: (now - chain.origin) / chain.length}
		e.early = now >= chain.origin+(e.epoch+1)*chain.length-10000
		if epochs[e] == nil {
			epochs[e] = chain.hybridAt(now, 10000)
		}
		pol := &Policy{Keys: []KeyPair{{Secret: secret("server"), Public: public("server")}}, Window: 120000, Skew: 10000,
			Hybrid: HybridOn, Epochs: epochs[e]}
		srv := New(vectorLimits(0, 0))
		d := srv.Open(nil, b, now, pol, &seqReader{b: make([]byte, 64)})
		accepted := d.Deliver || (d.Reason == ReasonNone && d.Respond != nil)
		if accepted && !genuine[string(b)] {
			t.Fatalf("accepted bytes that no client sealed: %x", b)
		}
	})
}
