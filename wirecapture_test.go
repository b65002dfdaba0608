package secsock

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"go.nanomsg.org/mangos/v3"
)

// tcpTap is a TCP proxy on loopback that records every byte in both
// directions.
type tcpTap struct {
	mu   sync.Mutex
	seen bytes.Buffer
	addr string
}

func startTCPTap(t testing.TB, target string) *tcpTap {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tp := &tcpTap{addr: "tcp://" + l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go tp.copy(s, c)
			go tp.copy(c, s)
		}
	}()
	return tp
}

func (tp *tcpTap) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			tp.mu.Lock()
			tp.seen.Write(buf[:n])
			tp.mu.Unlock()
			dst.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (tp *tcpTap) contains(s string) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return bytes.Contains(tp.seen.Bytes(), []byte(s))
}

// TestNoPlaintextOnTheWire captures the tcp stream between a curve REQ and
// a curve REP and drives every public method that can put a body on the
// wire, on sockets and contexts, through the concrete types and through
// the mangos interfaces: no plaintext appears, except from SendRaw, the
// deliberate bypass (which shows the capture sees plaintext when there is
// some).
func TestNoPlaintextOnTheWire(t *testing.T) {
	sk := mustKey(t)
	w := newRep(t, sk)
	var wctx mangos.Context
	wctx, _ = w.OpenContext()
	l, err := w.NewListener("tcp://127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	tp := startTCPTap(t, strings.TrimPrefix(l.Address(), "tcp://"))
	cl := newReq(t, sk.Public(), OptionSecretKey, mustKey(t))
	if err := cl.Dial(tp.addr); err != nil {
		t.Fatal(err)
	}
	var iface mangos.Socket = cl
	cctx, _ := cl.OpenContext()

	// Each request marker is answered with its reply marker, by one of
	// the REP side's four ways to send.
	answer := []func(m string) error{
		func(m string) error { return w.Send([]byte(m)) },
		func(m string) error {
			msg := mangos.NewMessage(0)
			msg.Body = append(msg.Body, m...)
			return w.SendMsg(msg)
		},
		func(m string) error { return wctx.Send([]byte(m)) },
		func(m string) error {
			msg := mangos.NewMessage(0)
			msg.Body = append(msg.Body, m...)
			return wctx.SendMsg(msg)
		},
	}
	recvs := []func() ([]byte, error){w.Recv, func() ([]byte, error) { m, err := w.RecvMsg(); return bodyOf(m), err }, wctx.Recv,
		func() ([]byte, error) { m, err := wctx.RecvMsg(); return bodyOf(m), err }}
	sends := map[string]func(m string) error{
		"Socket.Send": func(m string) error { return cl.Send([]byte(m)) },
		"Socket.SendMsg": func(m string) error {
			msg := mangos.NewMessage(0)
			msg.Body = append(msg.Body, m...)
			return cl.SendMsg(msg)
		},
		"mangos.Socket.Send": func(m string) error { return iface.Send([]byte(m)) },
		"mangos.Socket.SendMsg": func(m string) error {
			msg := mangos.NewMessage(0)
			msg.Body = append(msg.Body, m...)
			return iface.SendMsg(msg)
		},
		"Context.Send": func(m string) error { return cctx.Send([]byte(m)) },
		"Context.SendMsg": func(m string) error {
			msg := mangos.NewMessage(0)
			msg.Body = append(msg.Body, m...)
			return cctx.SendMsg(msg)
		},
	}
	i := 0
	for name, send := range sends {
		req, rep := "PLAINTEXT-REQUEST-"+name, "PLAINTEXT-REPLY-"+name
		k := i % len(answer)
		i++
		done := make(chan error, 1)
		go func() {
			b, err := recvs[k]()
			if err == nil && string(b) != req {
				t.Errorf("%s: server got %q", name, b)
			}
			if err == nil {
				err = answer[k](rep)
			}
			done <- err
		}()
		if err := send(req); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		recv := cl.Recv
		if strings.HasPrefix(name, "Context") {
			recv = cctx.Recv
		}
		if b, err := recv(); err != nil || string(b) != rep {
			t.Fatalf("%s: reply %q %v", name, b, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("%s: server: %v", name, err)
		}
		if tp.contains(req) || tp.contains(rep) {
			t.Errorf("%s: plaintext on the wire", name)
		}
	}
	// The bypass is the only way, and the capture does see it.
	if err := cl.SendRaw([]byte("PLAINTEXT-RAW")); err != nil {
		t.Fatal(err)
	}
	w.RecvRaw()
	if !tp.contains("PLAINTEXT-RAW") {
		t.Fatal("the capture missed SendRaw's plaintext: it could not have seen a leak")
	}
}

func bodyOf(m *mangos.Message) []byte {
	if m == nil {
		return nil
	}
	return m.Body
}
