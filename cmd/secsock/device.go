package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/xrep"
	"go.nanomsg.org/mangos/v3/protocol/xreq"
)

const deviceUsage = `Usage: secsock device [flags]

Forwards requests from the front (where REQ clients connect) to the back
(where REP servers connect, or which dials them) and replies back, with
raw mangos sockets, until interrupted. A device needs no keys and takes
none: it forwards sealed messages as they are and cannot read them, so it
may run on an untrusted host. Devices chain (multihop).

Flags:
  --front-bind ADDR, --front-listen ADDR    listen for clients on ADDR (repeatable)
  --front-connect ADDR, --front-dial ADDR   dial a client side on ADDR (repeatable)
  --back-bind ADDR, --back-listen ADDR      listen for servers on ADDR (repeatable)
  --back-connect ADDR, --back-dial ADDR     dial a server on ADDR (repeatable)
  -q, --quiet                               print nothing on stderr

Examples:
  secsock device --front-bind tcp://:5555 --back-bind tcp://:5556
  secsock rep --connect tcp://broker:5556 --key server.key     # workers
  secsock req --connect tcp://broker:5555 --server-key server.pub -D hi
`

func runDevice(e *env, args []string) error {
	fs := newFlags("device")
	var frontListen, frontDial, backListen, backDial strList
	fs.Var(&frontListen, "front-bind", "")
	fs.Var(&frontListen, "front-listen", "")
	fs.Var(&frontDial, "front-connect", "")
	fs.Var(&frontDial, "front-dial", "")
	fs.Var(&backListen, "back-bind", "")
	fs.Var(&backListen, "back-listen", "")
	fs.Var(&backDial, "back-connect", "")
	fs.Var(&backDial, "back-dial", "")
	var quiet bool
	fs.BoolVar(&quiet, "q", false, "")
	fs.BoolVar(&quiet, "quiet", false, "")
	var key string
	fs.StringVar(&key, "key", "", "")
	fs.StringVar(&key, "server-key", "", "")
	if err := parseFlags("device", fs, args); err != nil {
		return err
	}
	if key != "" {
		return usagef("device", "a device needs no keys: it forwards sealed messages without opening them")
	}
	if fs.NArg() > 0 {
		return usagef("device", "unexpected argument %q", fs.Arg(0))
	}
	if len(frontListen)+len(frontDial) == 0 || len(backListen)+len(backDial) == 0 {
		return usagef("device", "give at least one front address and one back address")
	}
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
	var bound []string
	attach := func(s mangos.Socket, listen, dial []string) error {
		f := sockFlags{listen: listen, dial: dial}
		b, err := f.connect("device", s)
		bound = append(bound, b...)
		return err
	}
	if err := attach(front, frontListen, frontDial); err != nil {
		return err
	}
	if err := attach(back, backListen, backDial); err != nil {
		return err
	}
	if err := mangos.Device(front, back); err != nil {
		return err
	}
	if !quiet {
		for _, a := range bound {
			fmt.Fprintf(e.stderr, "secsock device: listening on %s\n", a)
		}
		fmt.Fprintln(e.stderr, "secsock device: forwarding (no keys needed)")
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	<-sigs
	return nil
}
