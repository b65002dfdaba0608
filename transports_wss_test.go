package secsock

import (
	"testing"

	"go.nanomsg.org/mangos/v3"
	_ "go.nanomsg.org/mangos/v3/transport/wss"
)

// TestTransportWSS is TestTransports over wss:// (websocket over TLS, on
// loopback with the in-memory certificate of tlsConfigs), the one mangos
// transport that test does not list, with both cipher suites.
func TestTransportWSS(t *testing.T) {
	for _, cipher := range []string{CipherBox, CipherAESGCM} {
		t.Run(cipher, func(t *testing.T) {
			sc, cc := tlsConfigs(t)
			sk, ck := mustKey(t), mustKey(t)
			rep := newRep(t, sk, OptionAuthorizedKeys, []PublicKey{ck.Public()}, mangos.OptionMaxRecvSize, 2<<20)
			l, err := rep.NewListener("wss://127.0.0.1:0/secsock", map[string]any{mangos.OptionTLSConfig: sc})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Listen(); err != nil {
				t.Fatal(err)
			}
			req := newReq(t, sk.Public(), OptionSecretKey, ck, OptionCipher, cipher, mangos.OptionMaxRecvSize, 2<<20)
			if err := req.DialOptions(l.Address(), map[string]any{mangos.OptionTLSConfig: cc}); err != nil {
				t.Fatalf("dial %s: %v", l.Address(), err)
			}
			done := echo(rep, 3, "echo:")
			if err := req.Authenticate(); err != nil {
				t.Fatal(err)
			}
			for _, size := range []int{0, 100, 1 << 20} {
				roundTrips(t, req, 1, size)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
