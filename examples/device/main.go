// Command device shows sealed requests crossing a mangos device that holds
// no keys: a client dials the device over tcp loopback, the device spreads
// requests over two REP workers listening on ipc, and any worker answers
// any request because each request is self-contained. The device only
// ever sees sealed bytes.
//
//	go run ./examples/device
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/secsock/secsock"
	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/xrep"
	"go.nanomsg.org/mangos/v3/protocol/xreq"
	_ "go.nanomsg.org/mangos/v3/transport/ipc"
	_ "go.nanomsg.org/mangos/v3/transport/tcp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "device:", err)
		os.Exit(1)
	}
}

func run() error {
	serverKey, err := secsock.GenerateKey()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "secsock-device")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The device: raw sockets, no keys.
	front, err := xrep.NewSocket()
	if err != nil {
		return err
	}
	defer front.Close()
	back, err := xreq.NewSocket()
	if err != nil {
		return err
	}
	defer back.Close()
	l, err := front.NewListener("tcp://127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	if err := l.Listen(); err != nil {
		return err
	}
	go func() { _ = mangos.Device(front, back) }()
	fmt.Println("device: tcp front", l.Address(), "(no keys)")

	// Two workers with the same server key, on ipc behind the device.
	var mu sync.Mutex
	served := map[string]int{}
	for _, name := range []string{"worker-1", "worker-2"} {
		w, err := secsock.NewRepSocket()
		if err != nil {
			return err
		}
		defer w.Close()
		w.SetOption(secsock.OptionMechanism, secsock.MechanismCurve)
		w.SetOption(secsock.OptionSecretKey, serverKey)
		addr := "ipc://" + filepath.Join(dir, name+".ipc")
		if err := w.Listen(addr); err != nil {
			return err
		}
		if err := back.Dial(addr); err != nil {
			return err
		}
		for i := 0; i < 4; i++ { // four contexts per worker
			ctx, err := w.OpenContext()
			if err != nil {
				return err
			}
			go func(name string, ctx mangos.Context) {
				for {
					req, err := ctx.Recv()
					if err != nil {
						return
					}
					mu.Lock()
					served[name]++
					mu.Unlock()
					time.Sleep(2 * time.Millisecond) // some work
					ctx.Send([]byte(name + " answered " + string(req)))
				}
			}(name, ctx)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the device connect to both workers

	client, err := secsock.NewReqSocket()
	if err != nil {
		return err
	}
	defer client.Close()
	client.SetOption(secsock.OptionMechanism, secsock.MechanismCurve)
	client.SetOption(secsock.OptionServerKey, serverKey.Public())
	client.SetOption(mangos.OptionRecvDeadline, 5*time.Second)
	if err := client.Dial(l.Address()); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := 0; c < 8; c++ {
		ctx, err := client.OpenContext()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			msg := fmt.Sprintf("request %d", c)
			if err := ctx.Send([]byte(msg)); err != nil {
				errs <- err
				return
			}
			reply, err := ctx.Recv()
			if err != nil {
				errs <- err
				return
			}
			if !bytes.HasSuffix(reply, []byte(msg)) {
				errs <- errors.New("wrong reply")
				return
			}
			fmt.Printf("client: %s\n", reply)
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("served: worker-1 %d, worker-2 %d\n", served["worker-1"], served["worker-2"])
	return nil
}
