// Command reqrep is the secsock demo: it generates fresh keys, starts a
// sealed REP server on a tcp loopback port, and shows an authorized client
// getting replies, an unauthorized client being refused, and a client with
// the wrong server key being told so: typed errors within one round trip,
// never a timeout.
//
//	go run ./examples/reqrep
package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/secsock/secsock"
	"go.nanomsg.org/mangos/v3"
	_ "go.nanomsg.org/mangos/v3/transport/tcp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "reqrep:", err)
		os.Exit(1)
	}
}

func run() error {
	serverKey, err := secsock.GenerateKey()
	if err != nil {
		return err
	}
	aliceKey, err := secsock.GenerateKey()
	if err != nil {
		return err
	}
	malloryKey, err := secsock.GenerateKey()
	if err != nil {
		return err
	}
	fmt.Println("server public key:", serverKey.Public())
	fmt.Println("alice public key: ", aliceKey.Public(), "(authorized)")
	fmt.Println("mallory public key:", malloryKey.Public(), "(not authorized)")

	// The server: a REP socket that only serves alice, with an epoch seed
	// so that requests sealed with epoch keys are forward-secret.
	seed, err := secsock.NewEpochSeed(0)
	if err != nil {
		return err
	}
	rep, err := secsock.NewRepSocket()
	if err != nil {
		return err
	}
	defer rep.Close()
	for _, kv := range []struct {
		name  string
		value any
	}{
		{secsock.OptionMechanism, secsock.MechanismCurve},
		{secsock.OptionSecretKey, serverKey},
		{secsock.OptionAuthorizedKeys, []secsock.PublicKey{aliceKey.Public()}},
		{secsock.OptionEpochSeed, seed},
	} {
		if err := rep.SetOption(kv.name, kv.value); err != nil {
			return err
		}
	}
	l, err := rep.NewListener("tcp://127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	if err := l.Listen(); err != nil {
		return err
	}
	addr := l.Address()
	fmt.Println("server listening on", addr)
	go serve(rep)

	// Alice: authorized, talks to the real server key.
	alice, err := client(addr, serverKey.Public(), aliceKey)
	if err != nil {
		return err
	}
	defer alice.Close()
	start := time.Now()
	if err := alice.Authenticate(); err != nil {
		return fmt.Errorf("alice authenticate: %w", err)
	}
	fmt.Printf("alice: Authenticate ok in %v (one sealed round trip)\n", time.Since(start).Round(time.Microsecond))
	for i := 1; i <= 3; i++ {
		msg := fmt.Sprintf("request %d from alice", i)
		if err := alice.Send([]byte(msg)); err != nil {
			return err
		}
		reply, err := alice.Recv()
		if err != nil {
			return fmt.Errorf("alice: %w", err)
		}
		fmt.Printf("alice: sent %q, got %q\n", msg, reply)
	}

	// Mallory: has a key, but not an authorized one.
	mallory, err := client(addr, serverKey.Public(), malloryKey)
	if err != nil {
		return err
	}
	defer mallory.Close()
	err = roundTrip(mallory, "let me in")
	fmt.Printf("mallory: %v (errors.Is ErrNotAuthorized: %v)\n", err, errors.Is(err, secsock.ErrNotAuthorized))
	if !errors.Is(err, secsock.ErrNotAuthorized) {
		return errors.New("mallory was not refused")
	}

	// Bob: authorized key, but configured with the wrong server key.
	wrong, _ := secsock.GenerateKey()
	bob, err := client(addr, wrong.Public(), aliceKey)
	if err != nil {
		return err
	}
	defer bob.Close()
	err = roundTrip(bob, "hello?")
	fmt.Printf("bob:     %v (errors.Is ErrServerKeyMismatch: %v)\n", err, errors.Is(err, secsock.ErrServerKeyMismatch))
	if !errors.Is(err, secsock.ErrServerKeyMismatch) {
		return errors.New("bob was not told about the key mismatch")
	}

	st := rep.Stats()
	var rejected []string
	for _, r := range secsock.Reasons() {
		if n := st.Rejected[r]; n > 0 {
			rejected = append(rejected, fmt.Sprintf("%s %d", r, n))
		}
	}
	fmt.Printf("server stats: delivered %d, answered itself %d, rejected: %s\n", st.Opened, st.Answered, strings.Join(rejected, ", "))
	ss := rep.ServerStats()
	fmt.Printf("forward secrecy: %d requests sealed with epoch keys, %d with the server key alone\n", ss.ForwardSecret, ss.LongTermOnly)
	return nil
}

func serve(rep *secsock.Socket) {
	for {
		req, err := rep.Recv()
		if err != nil {
			if !errors.Is(err, mangos.ErrClosed) {
				log.Println("server:", err)
			}
			return
		}
		if err := rep.Send(append([]byte("sealed echo: "), req...)); err != nil {
			log.Println("server:", err)
		}
	}
}

func client(addr string, server secsock.PublicKey, key secsock.SecretKey) (*secsock.Socket, error) {
	s, err := secsock.NewReqSocket()
	if err != nil {
		return nil, err
	}
	opts := map[string]any{
		secsock.OptionMechanism:   secsock.MechanismCurve,
		secsock.OptionServerKey:   server,
		secsock.OptionSecretKey:   key,
		mangos.OptionRecvDeadline: 5 * time.Second,
	}
	for name, v := range opts {
		if err := s.SetOption(name, v); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.Dial(addr); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func roundTrip(s *secsock.Socket, msg string) error {
	if err := s.Send([]byte(msg)); err != nil {
		return err
	}
	_, err := s.Recv()
	return err
}
