package secsock

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	_ "go.nanomsg.org/mangos/v3/transport/inproc"
)

var addrSeq struct {
	sync.Mutex
	n int
}

func inprocAddr(t testing.TB) string {
	addrSeq.Lock()
	defer addrSeq.Unlock()
	addrSeq.n++
	return fmt.Sprintf("inproc://secsock-test-%s-%d", t.Name(), addrSeq.n)
}

func mustKey(t testing.TB) SecretKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSet(t testing.TB, s interface {
	SetOption(string, any) error
}, kv ...any) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		if err := s.SetOption(kv[i].(string), kv[i+1]); err != nil {
			t.Fatalf("SetOption(%s): %v", kv[i], err)
		}
	}
}

// pair makes a curve REP server listening on addr and a REQ client
// dialing it; extra options go to the client.
func pair(t testing.TB, addr string, serverKey SecretKey, clientOpts ...any) (req, rep *Socket) {
	t.Helper()
	rep = newRep(t, serverKey)
	if err := rep.Listen(addr); err != nil {
		t.Fatal(err)
	}
	req = newReq(t, serverKey.Public(), clientOpts...)
	if err := req.Dial(addr); err != nil {
		t.Fatal(err)
	}
	return req, rep
}

// echo serves n requests on rep, replying with prefix+request.
func echo(rep *Socket, n int, prefix string) chan error {
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			b, err := rep.Recv()
			if err != nil {
				done <- err
				return
			}
			if err := rep.Send(append([]byte(prefix), b...)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

func TestRoundTripInproc(t *testing.T) {
	sk := mustKey(t)
	req, rep := pair(t, inprocAddr(t), sk)
	done := echo(rep, 3, "echo:")
	for i := 0; i < 3; i++ {
		msg := []byte(fmt.Sprintf("hello %d", i))
		if err := req.Send(msg); err != nil {
			t.Fatal(err)
		}
		got, err := req.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte("echo:"), msg...); !bytes.Equal(got, want) {
			t.Fatalf("got %q want %q", got, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWrongServerKeyHint(t *testing.T) {
	sk := mustKey(t)
	req, rep := pair(t, inprocAddr(t), sk, OptionServerKey, mustKey(t).Public())
	echo(rep, 1, "")
	if err := req.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := req.Recv(); !errors.Is(err, ErrServerKeyMismatch) {
		t.Fatalf("got %v, want ErrServerKeyMismatch", err)
	}
}
