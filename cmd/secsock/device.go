package main

import (
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
  --json                                    log JSON lines instead of text
` + metricsUsage + tlsUsage + `
Log lines on stderr carry a UTC timestamp. SIGINT and SIGTERM stop the
device; SIGHUP is ignored (a device has no configuration to reload).

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
	asJSON := fs.Bool("json", false, "")
	metricsAddr := fs.String("metrics", "", "")
	var tf tlsFlags
	tf.register(fs)
	if err := parseFlags("device", fs, args); err != nil {
		return err
	}
	log := newLogger(e.stderr, "device", quiet, *asJSON)
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
	// Signals first: a SIGHUP must never kill a device, even at start.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	type side struct {
		name, who    string
		s            mangos.Socket
		listen, dial []string
	}
	sides := []side{
		{"front", "REQ clients connect here", front, frontListen, frontDial},
		{"back", "REP servers connect here", back, backListen, backDial},
	}
	var lines []func()
	for _, sd := range sides {
		f := sockFlags{listen: sd.listen, dial: sd.dial, tls: tf}
		bound, err := f.connect("device", sd.s)
		if err != nil {
			return err
		}
		for _, a := range bound {
			lines = append(lines, func() {
				log.say([]any{"side", sd.name, "listen", a}, "%s listening on %s (%s)", sd.name, a, sd.who)
			})
		}
		for _, a := range sd.dial {
			lines = append(lines, func() { log.say([]any{"side", sd.name, "dial", a}, "%s dialed %s", sd.name, a) })
		}
	}
	if err := mangos.Device(front, back); err != nil {
		return err
	}
	var web *webServer
	if *metricsAddr != "" {
		var err error
		if web, err = serveMetrics(*metricsAddr); err != nil {
			return err
		}
		defer web.close()
		web.healthy.Store(true)
	}
	for _, l := range lines {
		l()
	}
	if web != nil {
		log.say([]any{"metrics", "http://" + web.addr + "/metrics"}, "metrics on http://%s/metrics, health check on http://%s/healthz", web.addr, web.addr)
	}
	log.sayf("forwarding (no keys needed)")
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			log.sayf("SIGHUP: nothing to reload (a device has no keys or configuration files); still forwarding")
			continue
		}
		log.say([]any{"signal", sig.String()}, "stopping on %s", sig)
		return nil
	}
	return nil
}
