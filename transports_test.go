package secsock

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/xrep"
	"go.nanomsg.org/mangos/v3/protocol/xreq"
	_ "go.nanomsg.org/mangos/v3/transport/inproc"
	_ "go.nanomsg.org/mangos/v3/transport/ipc"
	_ "go.nanomsg.org/mangos/v3/transport/tcp"
	_ "go.nanomsg.org/mangos/v3/transport/tlstcp"
	_ "go.nanomsg.org/mangos/v3/transport/ws"
)

var testTLS struct {
	once           sync.Once
	server, client *tls.Config
}

// tlsConfigs returns an in-memory self-signed certificate for 127.0.0.1.
func tlsConfigs(t testing.TB) (server, client *tls.Config) {
	testTLS.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "secsock test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		cert, _ := x509.ParseCertificate(der)
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		testTLS.server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS13}
		testTLS.client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	})
	return testTLS.server, testTLS.client
}

var transports = []string{"inproc", "ipc", "tcp", "tls+tcp", "ws"}

// listenOn makes s listen on a fresh loopback address of the transport
// and returns a function that makes a socket dial it.
func listenOn(t testing.TB, s mangos.Socket, transport string) func(d mangos.Socket) {
	t.Helper()
	var addr string
	var lopts, dopts map[string]any
	switch transport {
	case "inproc":
		addr = inprocAddr(t)
	case "ipc":
		addr = "ipc://" + filepath.Join(t.TempDir(), "s.ipc")
	case "tcp":
		addr = "tcp://127.0.0.1:0"
	case "tls+tcp":
		sc, cc := tlsConfigs(t)
		addr = "tls+tcp://127.0.0.1:0"
		lopts, dopts = map[string]any{mangos.OptionTLSConfig: sc}, map[string]any{mangos.OptionTLSConfig: cc}
	case "ws":
		addr = "ws://127.0.0.1:0/secsock"
	default:
		t.Fatalf("unknown transport %s", transport)
	}
	l, err := s.NewListener(addr, lopts)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	addr = l.Address()
	return func(d mangos.Socket) {
		t.Helper()
		if err := d.DialOptions(addr, dopts); err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
	}
}

func newRep(t testing.TB, key SecretKey, opts ...any) *Socket {
	t.Helper()
	s, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustSet(t, s, OptionMechanism, MechanismCurve, OptionSecretKey, key,
		mangos.OptionRecvDeadline, 10*time.Second, mangos.OptionSendDeadline, 10*time.Second)
	mustSet(t, s, opts...)
	return s
}

func newReq(t testing.TB, server PublicKey, opts ...any) *Socket {
	t.Helper()
	s, err := NewReqSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustSet(t, s, OptionMechanism, MechanismCurve, OptionServerKey, server,
		mangos.OptionRecvDeadline, 10*time.Second, mangos.OptionSendDeadline, 10*time.Second)
	mustSet(t, s, opts...)
	return s
}

func newRaw(t testing.TB, open func() (mangos.Socket, error)) mangos.Socket {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// roundTrips sends n requests of size bytes on req and checks each echo.
func roundTrips(t testing.TB, req mangos.Context, n, size int) {
	t.Helper()
	for i := 0; i < n; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, size)
		if err := req.Send(msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		got, err := req.Recv()
		if err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if want := append([]byte("echo:"), msg...); !bytes.Equal(got, want) {
			t.Fatalf("reply %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
}

// TestTransports runs sealed REQ/REP over every transport, including
// secsock on top of transport TLS, with both cipher suites and an empty,
// a small and a large body.
func TestTransports(t *testing.T) {
	for _, tr := range transports {
		for _, cipher := range []string{CipherBox, CipherAESGCM} {
			t.Run(tr+"/"+cipher, func(t *testing.T) {
				sk, ck := mustKey(t), mustKey(t)
				rep := newRep(t, sk, OptionAuthorizedKeys, []PublicKey{ck.Public()}, mangos.OptionMaxRecvSize, 2<<20)
				dial := listenOn(t, rep, tr)
				req := newReq(t, sk.Public(), OptionSecretKey, ck, OptionCipher, cipher, mangos.OptionMaxRecvSize, 2<<20)
				dial(req)
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
}

// tap is a device made of raw sockets that records every body it
// forwards, so tests can check what an intermediary sees, and can alter
// replies on their way back.
type tap struct {
	mu          sync.Mutex
	requests    [][]byte
	replies     [][]byte
	alterReply  func(m *mangos.Message) // may be nil
	front, back mangos.Socket
}

func newTap(t testing.TB, frontTransport, backTransport string) (tp *tap, dialFront func(mangos.Socket), listenBack func(mangos.Socket)) {
	t.Helper()
	tp = &tap{front: newRaw(t, xrep.NewSocket), back: newRaw(t, xreq.NewSocket)}
	dialFront = listenOn(t, tp.front, frontTransport)
	go tp.pump(tp.front, tp.back, true)
	go tp.pump(tp.back, tp.front, false)
	return tp, dialFront, func(worker mangos.Socket) {
		listenOn(t, worker, backTransport)(tp.back)
	}
}

func (tp *tap) pump(from, to mangos.Socket, requests bool) {
	for {
		m, err := from.RecvMsg()
		if err != nil {
			return
		}
		tp.mu.Lock()
		if requests {
			tp.requests = append(tp.requests, bytes.Clone(m.Body))
		} else {
			moveRequestID(m)
			tp.replies = append(tp.replies, bytes.Clone(m.Body))
			if tp.alterReply != nil {
				tp.alterReply(m)
			}
		}
		tp.mu.Unlock()
		if err := to.SendMsg(m); err != nil {
			m.Free()
		}
	}
}

// moveRequestID moves the request ID that a raw xreq socket leaves at the
// front of a reply's body back into the header, where xrep expects it:
// the same bytes on the wire, but Body is then exactly the sealed reply.
func moveRequestID(m *mangos.Message) {
	if len(m.Body) >= 4 {
		m.Header = append(m.Header, m.Body[:4]...)
		m.Body = m.Body[4:]
	}
}

func (tp *tap) counts() (int, int) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return len(tp.requests), len(tp.replies)
}

// TestDeviceSeesNoPlaintext routes sealed traffic through a tcp-to-ipc
// and a tcp-to-inproc device and checks that nothing the device forwards
// contains the plaintext, that each exchange is exactly one message each
// way (no handshake: 0-RTT), and that the application sees exactly the
// requests that were sent.
func TestDeviceSeesNoPlaintext(t *testing.T) {
	for _, back := range []string{"ipc", "inproc"} {
		t.Run("tcp-to-"+back, func(t *testing.T) {
			sk := mustKey(t)
			tp, dialFront, listenBack := newTap(t, "tcp", back)
			rep := newRep(t, sk)
			listenBack(rep)
			var seen [][]byte
			served := make(chan struct{})
			go func() {
				defer close(served)
				for i := 0; i < 5; i++ {
					b, err := rep.Recv()
					if err != nil {
						return
					}
					seen = append(seen, b)
					rep.Send(append([]byte("echo:"), b...))
				}
			}()
			clientKey := mustKey(t)
			req := newReq(t, sk.Public(), OptionSecretKey, clientKey)
			dialFront(req)
			const secret = "TOP-SECRET-PLAINTEXT"
			for i := 0; i < 5; i++ {
				msg := []byte(fmt.Sprintf("%s %d", secret, i))
				if err := req.Send(msg); err != nil {
					t.Fatal(err)
				}
				got, err := req.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, append([]byte("echo:"), msg...)) {
					t.Fatalf("reply %q", got)
				}
			}
			<-served
			if len(seen) != 5 {
				t.Fatalf("application saw %d requests, want 5", len(seen))
			}
			for i, b := range seen {
				if want := fmt.Sprintf("%s %d", secret, i); string(b) != want {
					t.Fatalf("request %d: app saw %q, want %q", i, b, want)
				}
			}
			nreq, nrep := tp.counts()
			if nreq != 5 || nrep != 5 {
				t.Fatalf("device forwarded %d requests and %d replies, want exactly 5 and 5 (0-RTT)", nreq, nrep)
			}
			for _, b := range append(tp.requests, tp.replies...) {
				if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte("echo:")) {
					t.Fatal("device saw plaintext")
				}
				if pub := clientKey.Public(); bytes.Contains(b, pub[:]) {
					t.Fatal("device saw the client's long-term public key: identity not hidden")
				}
			}
		})
	}
}
