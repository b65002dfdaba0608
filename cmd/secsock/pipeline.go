package main

// secsock push and secsock pull: sealed PUSH/PULL from the shell, like
// nanocat --push and --pull (SPEC.md §15).

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/secsock/secsock"
	"go.nanomsg.org/mangos/v3"
)

const pushUsage = `Usage: secsock push [flags]

Sends sealed one-way messages to secsock PULL workers (directly or
through devices). The data comes from --data, --file, or else stdin.
Nothing comes back: a worker that drops a message (wrong server key, not
authorized, stale clock, replay) logs it on its side, and the pusher is
never told (SPEC.md §15.4). --rep ADDR names a REP endpoint of the same
service: the pusher checks its credentials there first (a sealed ping),
and takes the service's epoch keys from it, so that its messages are
forward-secret; without it they are sealed to the server's long-term key
only.

Flags:
  --connect ADDR, --dial ADDR   dial ADDR (repeatable)
  --bind ADDR, --listen ADDR    listen on ADDR (repeatable)
  --server-key FILE|KEY         the service's public key: a .pub file or key text (required)
  --key FILE                    this pusher's secret key file (without it the pusher is anonymous)
  --cipher NAME                 xsalsa20poly1305 (default) or aes256gcm
  --rep ADDR                    a REP endpoint of the service: check the credentials there, take epoch keys from it
  -D, --data TEXT               send TEXT
  -F, --file PATH               send the contents of PATH ("-" for stdin)
  -n, --count N                 send N messages (default 1; 0 = forever, the default with --interval)
  -i, --interval SEC            wait SEC between messages (seconds or a duration: 0.5, 500ms)
  -d, --delay SEC               wait SEC before the first message
  --send-timeout SEC            give up sending after SEC (default 10s; 0 = never)
  --recv-timeout SEC            with --rep: give up waiting for its answer after SEC (default 10s)
  -q, --quiet                   print nothing
` + tlsUsage + `
Examples:
  secsock push --connect tcp://127.0.0.1:5557 --server-key server.pub --key alice.key -D job1
  secsock push --connect tcp://host:5557 --rep tcp://host:5555 --server-key server.pub --key alice.key -F job.bin
  seq 10 | secsock push --connect ipc:///tmp/jobs.sock --server-key server.pub
`

const pullUsage = `Usage: secsock pull [flags]

Receives sealed one-way messages from secsock pushers and prints each one
on stdout (ASCII by default). Messages that fail a check are dropped and
logged on stderr with the reason and the pusher's key when it proved one;
a pusher cannot learn of a drop. Several pull workers with the same key
(behind a device) share the load. SIGINT and SIGTERM stop it.

Flags:
  --bind ADDR, --listen ADDR    listen on ADDR (repeatable)
  --connect ADDR, --dial ADDR   dial ADDR, for example a device's back side (repeatable)
  --key FILE                    the service's secret key file (required)
  --previous-key FILE           an older server key still accepted during a key rotation (repeatable)
  --epoch-seed FILE             the service's epoch seed file: accept forward-secret messages
  --authorized FILE             authorized keys file: only these pushers are accepted
  --allow-anonymous             with --authorized, also accept pushers that have no key
  -A, -Q, --hex, --raw          print messages as ASCII (default), quoted, hex, or raw
  -n, --count N                 exit after N messages (default 0 = forever)
  -q, --quiet                   do not log dropped messages
  -v, --verbose                 print the counters at exit
  --json                        log JSON lines instead of text
` + tlsUsage + `
Examples:
  secsock pull --bind tcp://127.0.0.1:5557 --key server.key
  secsock pull --connect tcp://device:5558 --key server.key --authorized authorized_keys --hex
`

func runPush(e *env, args []string) error {
	var f sockFlags
	fs := newFlags("push")
	f.register(fs)
	serverKey, cipher := f.registerSender(fs)
	repAddr := fs.String("rep", "", "")
	if err := parseFlags("push", fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("push", "unexpected argument %q (data goes in --data or --file)", fs.Arg(0))
	}
	srv, own, err := f.senderKeys("push", "the service's", *serverKey)
	if err != nil {
		return err
	}
	data, _, err := f.payload("push", e, true)
	if err != nil {
		return err
	}
	keyOpts := []any{secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionServerKey, srv}
	if !own.IsZero() {
		keyOpts = append(keyOpts, secsock.OptionSecretKey, own)
	}
	s, err := secsock.NewPushSocket()
	if err != nil {
		return err
	}
	defer s.Close()
	opts := append(keyOpts, secsock.OptionCipher, *cipher, mangos.OptionSendDeadline, time.Duration(f.sendTmo))
	if *repAddr != "" {
		q, err := pusherCheck(e, &f, keyOpts, *repAddr, srv, own)
		if err != nil {
			return err
		}
		defer q.Close()
		opts = append(opts, secsock.OptionEpochSource, q)
	}
	if err := setOptions(s, opts...); err != nil {
		return err
	}
	if _, err := f.connect("push", s); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !sleep(ctx, time.Duration(f.delay)) {
		return nil
	}
	for i := 1; f.count == 0 || i <= f.count; i++ {
		if i > 1 && !sleep(ctx, time.Duration(f.interval)) {
			return nil
		}
		if err := s.Send(data); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	// mangos has no linger: give the last message time to leave.
	time.Sleep(linger)
	return nil
}

// pusherCheck dials the service's REP endpoint with the pusher's keys and
// checks them with a sealed ping: the one check a pusher can make
// (SPEC.md §15.4). The socket then serves as the pusher's epoch source.
func pusherCheck(e *env, f *sockFlags, keyOpts []any, addr string, srv secsock.PublicKey, own secsock.SecretKey) (*secsock.Socket, error) {
	q, err := secsock.NewReqSocket()
	if err != nil {
		return nil, err
	}
	opts := append(keyOpts, mangos.OptionRecvDeadline, time.Duration(f.recvTimeout), mangos.OptionSendDeadline, time.Duration(f.sendTmo))
	if err := setOptions(q, opts...); err != nil {
		q.Close()
		return nil, err
	}
	rf := sockFlags{dial: strList{addr}, tls: f.tls}
	if _, err := rf.connect("push", q); err != nil {
		q.Close()
		return nil, err
	}
	if err := q.Authenticate(); err != nil {
		q.Close()
		return nil, fmt.Errorf("checking the credentials at --rep %s: %w", addr, explainReq(err, srv, own, *f, time.Duration(f.recvTimeout)))
	}
	if !f.quiet {
		fmt.Fprintf(e.stderr, "secsock push: server %s proved its key at %s and accepts this pusher\n", srv, addr)
	}
	return q, nil
}

func runPull(e *env, args []string) error {
	var f sockFlags
	fs := newFlags("pull")
	f.register(fs)
	var previous strList
	fs.Var(&previous, "previous-key", "")
	authorized := fs.String("authorized", "", "")
	allowAnon := fs.Bool("allow-anonymous", false, "")
	epochSeed := fs.String("epoch-seed", "", "")
	var verbose bool
	fs.BoolVar(&verbose, "v", false, "")
	fs.BoolVar(&verbose, "verbose", false, "")
	if err := parseFlags("pull", fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("pull", "unexpected argument %q", fs.Arg(0))
	}
	if f.keyFile == "" {
		return usagef("pull", "--key is required (the service's secret key file; make one with secsock keygen)")
	}
	if len(f.dial)+len(f.listen) == 0 {
		return usagef("pull", "give at least one --bind or --connect address")
	}
	printFn, err := f.format("pull")
	if err != nil {
		return err
	}
	if printFn == nil {
		printFn = printASCII
	}
	if f.count < 0 {
		f.count = 0
	}
	keys, err := loadServerKeys(f.keyFile, previous, *authorized)
	if err != nil {
		return err
	}
	s, err := secsock.NewPullSocket()
	if err != nil {
		return err
	}
	defer s.Close()
	log := newLogger(e.stderr, "pull", f.quiet, f.json)
	opts := []any{
		secsock.OptionMechanism, secsock.MechanismCurve,
		secsock.OptionAllowAnonymous, *allowAnon,
		secsock.OptionEventHook, func(ev secsock.Event) { logDrop(log, keys, ev) },
	}
	if err := setOptions(s, opts...); err != nil {
		return err
	}
	if err := keys.apply(s); err != nil {
		return err
	}
	if *epochSeed != "" {
		if err := s.SetOption(secsock.OptionEpochSeed, *epochSeed); err != nil {
			return err
		}
		log.say([]any{"epoch_seed", *epochSeed}, "forward secrecy on: epoch seed %s", *epochSeed)
	}
	bound, err := f.connect("pull", s)
	if err != nil {
		return err
	}
	pub := keys.key.Public()
	for _, a := range bound {
		log.say([]any{"listen", a, "server_key", pub.String()}, "listening on %s with server key %s (fingerprint %s)", a, pub, pub.Fingerprint())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); s.Close() }()
	defer func() {
		if verbose {
			printCounters(log, s.Stats())
		}
	}()
	for n := 0; f.count == 0 || n < f.count; n++ {
		b, err := s.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		printFn(e.stdout, b)
	}
	return nil
}

// logDrop logs one dropped message with its reason and the pusher's key
// and name when it proved one.
func logDrop(log *logger, keys *serverKeys, ev secsock.Event) {
	if ev.Kind != secsock.EventRejected {
		return
	}
	who := "an anonymous or unidentified pusher"
	attrs := []any{"event", "dropped", "reason", ev.Reason.String()}
	if !ev.Peer.IsZero() {
		who = "pusher " + ev.Peer.String()
		attrs = append(attrs, "client", ev.Peer.String(), "client_fingerprint", ev.Peer.Fingerprint())
		if n, ok := keys.aks.Name(ev.Peer); ok && n != "" {
			who += " (" + n + ")"
			attrs = append(attrs, "client_name", n)
		}
	}
	attrs = append(attrs, "help", reasonHelp[ev.Reason])
	log.say(attrs, "dropped a message from %s: %s (%s)", who, ev.Reason, reasonHelp[ev.Reason])
}
