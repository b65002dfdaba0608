package secsock_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/xrep"
	"go.nanomsg.org/mangos/v3/protocol/xreq"
	_ "go.nanomsg.org/mangos/v3/transport/inproc"

	"github.com/secsock/secsock"
)

// check stops the example on an error: examples never ignore one.
func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// set sets options as name, value pairs.
func set(s mangos.Socket, kv ...any) {
	for i := 0; i < len(kv); i += 2 {
		check(s.SetOption(kv[i].(string), kv[i+1]))
	}
}

// server makes a REP socket with the curve mechanism, key and options,
// listening on addr, that answers "echo: " and the request until closed.
func server(addr string, key secsock.SecretKey, kv ...any) *secsock.Socket {
	s, err := secsock.NewRepSocket()
	check(err)
	set(s, append([]any{secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, key}, kv...)...)
	check(s.Listen(addr))
	go serve(s)
	return s
}

func serve(s interface {
	Recv() ([]byte, error)
	Send([]byte) error
}) {
	for {
		req, err := s.Recv()
		if err != nil {
			return // closed
		}
		if err := s.Send(append([]byte("echo: "), req...)); err != nil {
			return
		}
	}
}

// client makes a REQ socket that seals to serverKey and dials addr.
func client(addr string, serverKey secsock.PublicKey, kv ...any) *secsock.Socket {
	c, err := secsock.NewReqSocket()
	check(err)
	set(c, append([]any{secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionServerKey, serverKey,
		mangos.OptionRecvDeadline, 10 * time.Second}, kv...)...)
	check(c.Dial(addr))
	return c
}

// Sealed request and reply over inproc: the server's public key is all the
// client needs.
func Example() {
	serverKey, err := secsock.GenerateKey()
	check(err)

	srv, err := secsock.NewRepSocket()
	check(err)
	defer srv.Close()
	check(srv.SetOption(secsock.OptionMechanism, secsock.MechanismCurve))
	check(srv.SetOption(secsock.OptionSecretKey, serverKey))
	check(srv.Listen("inproc://example"))
	go serve(srv)

	c, err := secsock.NewReqSocket()
	check(err)
	defer c.Close()
	check(c.SetOption(secsock.OptionMechanism, secsock.MechanismCurve))
	check(c.SetOption(secsock.OptionServerKey, serverKey.Public()))
	check(c.Dial("inproc://example"))
	check(c.Send([]byte("hello")))
	reply, err := c.Recv()
	check(err)
	fmt.Printf("%s\n", reply)
	// Output: echo: hello
}

// A client whose key is not authorized learns it from Recv (or
// Authenticate) within one round trip, from a refusal only the server
// could have made.
func Example_notAuthorized() {
	serverKey, err := secsock.GenerateKey()
	check(err)
	alice, err := secsock.GenerateKey()
	check(err)
	mallory, err := secsock.GenerateKey()
	check(err)

	srv := server("inproc://example-refused", serverKey, secsock.OptionAuthorizedKeys, []secsock.PublicKey{alice.Public()})
	defer srv.Close()
	c := client("inproc://example-refused", serverKey.Public(), secsock.OptionSecretKey, mallory)
	defer c.Close()

	err = c.Authenticate()
	fmt.Println(errors.Is(err, secsock.ErrNotAuthorized))
	// Output: true
}

// Wrap turns a cooked mangos REP (or REQ) socket made elsewhere into a
// secsock socket; a raw socket is refused, since devices need no keys.
func ExampleWrap() {
	plain, err := rep.NewSocket()
	check(err)
	s, err := secsock.Wrap(plain)
	check(err)
	defer s.Close()
	key, err := secsock.GenerateKey()
	check(err)
	set(s, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, key)
	mech, err := s.GetOption(secsock.OptionMechanism)
	check(err)
	fmt.Println(mech)

	raw, err := xrep.NewSocket()
	check(err)
	defer raw.Close()
	_, err = secsock.Wrap(raw)
	fmt.Println(errors.Is(err, secsock.ErrRawSocket))
	// Output:
	// curve
	// true
}

// Contexts of a REP socket serve several requests at once, and contexts
// of a REQ socket have several requests in flight; each seals and opens
// on its own.
func ExampleSocket_OpenContext() {
	key, err := secsock.GenerateKey()
	check(err)
	srv, err := secsock.NewRepSocket()
	check(err)
	defer srv.Close()
	set(srv, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, key)
	check(srv.Listen("inproc://example-contexts"))
	for range 3 {
		ctx, err := srv.OpenContext()
		check(err)
		go serve(ctx)
	}

	c := client("inproc://example-contexts", key.Public())
	defer c.Close()
	replies := make([]string, 3)
	var wg sync.WaitGroup
	for i := range replies {
		ctx, err := c.OpenContext()
		check(err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ctx.Close()
			check(ctx.Send([]byte(fmt.Sprint("request ", i))))
			b, err := ctx.Recv()
			check(err)
			replies[i] = string(b)
		}()
	}
	wg.Wait()
	fmt.Println(strings.Join(replies, "\n"))
	// Output:
	// echo: request 0
	// echo: request 1
	// echo: request 2
}

// Key files: a secret key file (mode 0600, refused if others can read
// it), a public key file with a name, and an authorized keys file made of
// concatenated public key files.
func ExampleWriteSecretKeyFile() {
	dir, err := os.MkdirTemp("", "secsock-example-")
	check(err)
	defer os.RemoveAll(dir)

	key, err := secsock.GenerateKey()
	check(err)
	check(secsock.WriteSecretKeyFile(filepath.Join(dir, "server.key"), key))
	check(secsock.WritePublicKeyFile(filepath.Join(dir, "server.pub"), key.Public(), "server"))

	loaded, err := secsock.LoadSecretKeyFile(filepath.Join(dir, "server.key"))
	check(err)
	pub, err := secsock.LoadPublicKeyFile(filepath.Join(dir, "server.pub"))
	check(err)
	fmt.Println(loaded.Equal(key), pub == key.Public())

	check(os.Chmod(filepath.Join(dir, "server.key"), 0o644))
	_, err = secsock.LoadSecretKeyFile(filepath.Join(dir, "server.key"))
	fmt.Println(errors.Is(err, secsock.ErrKeyFilePermissions))

	alice, err := secsock.GenerateKey()
	check(err)
	text := string(secsock.FormatPublicKeyFile(alice.Public(), "alice@laptop")) + "# bob left\n"
	aks, err := secsock.ParseAuthorizedKeys(strings.NewReader(text))
	check(err)
	name, ok := aks.Name(alice.Public())
	fmt.Println(len(aks.Keys()), name, ok)
	// Output:
	// true true
	// true
	// 1 alice@laptop true
}

// A device made of raw mangos sockets forwards sealed requests and
// replies without any key: it cannot read them.
func Example_device() {
	key, err := secsock.GenerateKey()
	check(err)
	front, err := xrep.NewSocket()
	check(err)
	defer front.Close()
	back, err := xreq.NewSocket()
	check(err)
	defer back.Close()
	check(front.Listen("inproc://example-device-front"))
	check(back.Listen("inproc://example-device-back"))
	check(mangos.Device(front, back))

	// The worker dials the device's back; the client its front.
	worker, err := secsock.NewRepSocket()
	check(err)
	defer worker.Close()
	set(worker, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, key)
	check(worker.Dial("inproc://example-device-back"))
	go serve(worker)

	c := client("inproc://example-device-front", key.Public())
	defer c.Close()
	check(c.Send([]byte("through the device")))
	reply, err := c.Recv()
	check(err)
	fmt.Printf("%s\n", reply)
	// Output: echo: through the device
}

// Server key rotation: the server serves its new key and, as a previous
// key, the old one; ServerStats shows which key clients still use, and
// once the old key is dropped its clients get ErrServerKeyMismatch.
func Example_keyRotation() {
	oldKey, err := secsock.GenerateKey()
	check(err)
	newKey, err := secsock.GenerateKey()
	check(err)
	srv := server("inproc://example-rotation", newKey, secsock.OptionPreviousSecretKeys, []secsock.SecretKey{oldKey})
	defer srv.Close()

	ask := func(serverKey secsock.PublicKey) error {
		c := client("inproc://example-rotation", serverKey)
		defer c.Close()
		if err := c.Send([]byte("hi")); err != nil {
			return err
		}
		_, err := c.Recv()
		return err
	}
	check(ask(oldKey.Public())) // a client not moved yet
	check(ask(newKey.Public()))
	check(ask(newKey.Public()))
	for _, k := range srv.ServerStats().ServerKeys {
		fmt.Println(k.Role, k.Accepted, k.Key == newKey.Public())
	}

	// Every client has moved: drop the old key.
	check(srv.SetOption(secsock.OptionPreviousSecretKeys, []secsock.SecretKey{}))
	err = ask(oldKey.Public())
	fmt.Println(errors.Is(err, secsock.ErrServerKeyMismatch))
	for _, k := range srv.ServerStats().ServerKeys {
		fmt.Println(k.Role, k.Accepted)
	}
	// Output:
	// current 2 true
	// previous 1 false
	// true
	// current 2
	// retired 1
}

// The event hook reports rejected requests, and on request accepted ones
// and new client sessions, with the time and the server key used (client
// keys belong in events and logs, never in metric labels).
func Example_eventHook() {
	key, err := secsock.GenerateKey()
	check(err)
	alice, err := secsock.GenerateKey()
	check(err)
	var (
		mu     sync.Mutex
		events []secsock.Event
	)
	hook := func(ev secsock.Event) { // runs on the receiving goroutine: never block
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}
	srv := server("inproc://example-events", key,
		secsock.OptionAuthorizedKeys, []secsock.PublicKey{alice.Public()},
		secsock.OptionEventHook, hook,
		secsock.OptionEventAccepted, true,
		secsock.OptionEventSessions, true)
	defer srv.Close()

	c := client("inproc://example-events", key.Public(), secsock.OptionSecretKey, alice)
	defer c.Close()
	for range 2 {
		check(c.Send([]byte("hi")))
		_, err := c.Recv()
		check(err)
	}
	anon := client("inproc://example-events", key.Public())
	defer anon.Close()
	fmt.Println(errors.Is(anon.Authenticate(), secsock.ErrNotAuthorized))

	mu.Lock()
	defer mu.Unlock()
	for _, ev := range events {
		if ev.Kind == secsock.EventRejected {
			fmt.Println(ev.Kind, ev.Reason, ev.Peer.IsZero(), !ev.Time.IsZero())
			continue
		}
		fmt.Println(ev.Kind, ev.Peer == alice.Public(), ev.ServerKey == key.Public(), !ev.Time.IsZero())
	}
	// Output:
	// true
	// session true true true
	// accepted true true true
	// accepted true true true
	// rejected not-authorized true true
}

// Public keys print as 40-character Z85, the ZeroMQ CURVE text form, and
// parse back; secret keys never print their secret.
func ExampleParsePublicKey() {
	secret, err := secsock.NewSecretKey([]byte("an example secret key, 32 bytes"[:31] + "!"))
	check(err)
	pub := secret.Public()
	parsed, err := secsock.ParsePublicKey(pub.String())
	check(err)
	fmt.Println(len(pub.String()), parsed == pub)
	fmt.Println(secret.String() == "SecretKey(public="+pub.String()+")")
	fmt.Println(pub.Fingerprint())
	// Output:
	// 40 true
	// true
	// a08e9000ab219891
}

// Reasons lists every reason, for counters that must show zeros too.
func ExampleReasons() {
	var names []string
	for _, r := range secsock.Reasons() {
		names = append(names, r.String())
	}
	fmt.Println(strings.Join(names, " "))
	// Output: malformed unknown-version unknown-kind unsupported weak-key forged bad-vouch not-authorized stale replayed retry busy in-doubt unknown-epoch store-unavailable unknown-ticket hybrid-required not-secsock oversize
}

// Socket.Peer says who sent the request a REP worker holds: here a
// client's long-term key (shown by its name), or anonymous.
func ExampleSocket_Peer() {
	serverKey, err := secsock.GenerateKey()
	check(err)
	alice, err := secsock.GenerateKey()
	check(err)
	names := map[secsock.PublicKey]string{alice.Public(): "alice"}

	srv, err := secsock.NewRepSocket()
	check(err)
	defer srv.Close()
	set(srv, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, serverKey)
	check(srv.Listen("inproc://example-peer"))
	go func() {
		for {
			body, err := srv.Recv()
			if err != nil {
				return
			}
			p, err := srv.Peer()
			check(err)
			who := "anonymous"
			if !p.Anonymous() {
				who = names[p.Key]
			}
			check(srv.Send([]byte(fmt.Sprintf("%s from %s", body, who))))
		}
	}()
	for _, key := range []secsock.SecretKey{alice, {}} {
		var opts []any
		if !key.IsZero() {
			opts = []any{secsock.OptionSecretKey, key}
		}
		c := client("inproc://example-peer", serverKey.Public(), opts...)
		check(c.Send([]byte("hello")))
		reply, err := c.Recv()
		check(err)
		fmt.Printf("%s\n", reply)
		c.Close()
	}
	// Output:
	// hello from alice
	// hello from anonymous
}

// OptionRequestAuthorizer decides per request, seeing who sent it and the
// body; its "no" reaches the client as an authenticated ErrNotAuthorized.
func Example_requestAuthorizer() {
	serverKey, err := secsock.GenerateKey()
	check(err)
	reader, err := secsock.GenerateKey()
	check(err)
	readOnly := func(p secsock.Peer, body []byte) bool {
		return p.Key != reader.Public() || bytes.HasPrefix(body, []byte("get "))
	}
	srv := server("inproc://example-request-authorizer", serverKey, secsock.OptionRequestAuthorizer, readOnly)
	defer srv.Close()
	c := client("inproc://example-request-authorizer", serverKey.Public(), secsock.OptionSecretKey, reader)
	defer c.Close()
	for _, req := range []string{"get balance", "put balance 0"} {
		check(c.Send([]byte(req)))
		reply, err := c.Recv()
		fmt.Printf("%s: %q %v\n", req, reply, errors.Is(err, secsock.ErrNotAuthorized))
	}
	// Output:
	// get balance: "echo: get balance" false
	// put balance 0: "" true
}
