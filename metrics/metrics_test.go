package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.nanomsg.org/mangos/v3"
	_ "go.nanomsg.org/mangos/v3/transport/inproc"

	"github.com/secsock/secsock"
)

func mustSet(t *testing.T, s *secsock.Socket, kv ...any) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		if err := s.SetOption(kv[i].(string), kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCollector checks the names (promlint), that every reason but retry
// is listed, that retries and refusals are apart, that no label carries
// Z85 key text, and that a REQ socket has no server metrics.
func TestCollector(t *testing.T) {
	sk, alice, mallory := mustKey(t), mustKey(t), mustKey(t)
	rep, err := secsock.NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	mustSet(t, rep, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, sk,
		secsock.OptionAuthorizedKeys, []secsock.PublicKey{alice.Public()})
	if err := rep.Listen("inproc://metrics-test"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := 0; i < 100; i++ {
			b, err := rep.Recv()
			if err != nil {
				return
			}
			rep.Send(b)
		}
	}()
	newReq := func(k secsock.SecretKey) *secsock.Socket {
		req, err := secsock.NewReqSocket()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { req.Close() })
		mustSet(t, req, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionServerKey, sk.Public(),
			secsock.OptionSecretKey, k, mangos.OptionRecvDeadline, 10*time.Second)
		if err := req.Dial("inproc://metrics-test"); err != nil {
			t.Fatal(err)
		}
		return req
	}
	good := newReq(alice)
	if err := good.Authenticate(); err != nil {
		t.Fatal(err)
	}
	if err := newReq(mallory).Authenticate(); err == nil {
		t.Fatal("mallory served")
	}

	c := NewCollector()
	c.Add("rep", rep)
	c.Add("req", good)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	reasons := len(secsock.Reasons()) - 1 // retry apart
	if n := testutil.CollectAndCount(c, "secsock_messages_rejected_total"); n != 2*reasons {
		t.Errorf("%d rejected series, want %d (every reason but retry, two sockets)", n, 2*reasons)
	}
	if n := testutil.CollectAndCount(c, "secsock_peers"); n != 1 {
		t.Errorf("%d secsock_peers series, want 1 (the REP socket only)", n)
	}
	want := `
# HELP secsock_messages_rejected_total Messages rejected, by reason (retries are counted apart).
# TYPE secsock_messages_rejected_total counter
`
	var lines []string
	for _, r := range secsock.Reasons() {
		if r == secsock.ReasonRetry {
			continue
		}
		v := "0"
		if r == secsock.ReasonNotAuthorized {
			v = "1"
		}
		lines = append(lines, `secsock_messages_rejected_total{reason="`+r.String()+`",socket="rep"} `+v)
		lines = append(lines, `secsock_messages_rejected_total{reason="`+r.String()+`",socket="req"} 0`)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want+strings.Join(lines, "\n")+"\n"), "secsock_messages_rejected_total"); err != nil {
		t.Error(err)
	}
	fp := sk.Public().Fingerprint()
	keyWant := `
# HELP secsock_server_key_requests_total Requests accepted by the REP side under each server key (fingerprint), with its role.
# TYPE secsock_server_key_requests_total counter
secsock_server_key_requests_total{role="current",server_key="` + fp + `",socket="rep"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(keyWant), "secsock_server_key_requests_total"); err != nil {
		t.Error(err)
	}
	sealWant := `
# HELP secsock_requests_accepted_sealed_total Requests accepted by the REP side by how they were sealed: forward_secret (an epoch key) or long_term_only; hybrid counts those also sealed in the post-quantum hybrid mode (ML-KEM-768).
# TYPE secsock_requests_accepted_sealed_total counter
secsock_requests_accepted_sealed_total{sealing="forward_secret",socket="rep"} 0
secsock_requests_accepted_sealed_total{sealing="hybrid",socket="rep"} 0
secsock_requests_accepted_sealed_total{sealing="long_term_only",socket="rep"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(sealWant), "secsock_requests_accepted_sealed_total"); err != nil {
		t.Error(err)
	}
	// No label value is key text.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, k := range []secsock.SecretKey{sk, alice, mallory} {
					if strings.Contains(l.GetValue(), k.Public().String()) {
						t.Errorf("%s has key text in label %s", mf.GetName(), l.GetName())
					}
				}
			}
		}
	}
	c.Remove("req")
	if n := testutil.CollectAndCount(c, "secsock_messages_sealed_total"); n != 1 {
		t.Errorf("after Remove: %d series", n)
	}
}

func mustKey(t *testing.T) secsock.SecretKey {
	t.Helper()
	k, err := secsock.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
