package main

// secsock pub and secsock sub: sealed PUB/SUB from the shell, like
// nanocat --pub and --sub (SPEC.md §18).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/secsock/secsock"
	"go.nanomsg.org/mangos/v3"
)

const pubUsage = `Usage: secsock pub [flags]

Publishes sealed messages on one topic: each is encrypted under the
publisher's current sender key (which only authorized subscribers can
fetch) and signed with its Ed25519 signing key. The same process serves
the sender keys on a key service endpoint (a curve REP socket, --keys-bind)
to the subscribers in --authorized. SIGHUP re-reads --authorized: a key
removed from it is revoked (the sender key rotates at once, so it reads
nothing published after the reload). The data comes from --data, --file,
or else stdin.

Flags:
  --bind ADDR, --listen ADDR    publish on ADDR (repeatable)
  --connect ADDR, --dial ADDR   dial ADDR, for example a device's front side (repeatable)
  --signing-key FILE            the publisher's signing key (Ed25519 seed, Z85 text; required)
  --new-signing-key             create --signing-key (mode 0600) and print the publisher key
  --keys-bind ADDR              serve the key service on ADDR (required)
  --key FILE                    the key service's curve secret key file (required)
  --authorized FILE             authorized keys file: the subscribers that may fetch keys (required)
  --topic TOPIC                 the topic (required; 1 to 255 bytes)
  --clear-topics                send the topic in clear (prefix subscriptions work) instead of a blinded tag
  -D, --data TEXT               send TEXT
  -F, --file PATH               send the contents of PATH ("-" for stdin)
  -n, --count N                 send N messages (default 1; 0 = forever, the default with --interval)
  -i, --interval SEC            wait SEC between messages
  -d, --delay SEC               wait SEC before the first message (subscribers connecting)
  -q, --quiet                   print nothing
` + tlsUsage + `
Examples:
  secsock pub --new-signing-key --signing-key pub.sign --keys-bind tcp://127.0.0.1:5560 --key svc.key \
      --authorized subscribers --bind tcp://127.0.0.1:5561 --topic weather -D rain -i 1
`

const subUsage = `Usage: secsock sub [flags]

Receives sealed messages of one publisher on the given topics and prints
each body on stdout. Keys are fetched from the publisher's key service
with this subscriber's curve key; messages that fail a check (forged,
replayed, stale, not for a subscribed topic) are dropped and counted
(-v prints the counters at exit).

Flags:
  --connect ADDR, --dial ADDR   dial the publisher or a device (repeatable)
  --bind ADDR, --listen ADDR    listen on ADDR (repeatable)
  --publisher KEY               the publisher key to trust (Z85, hex or base64; required)
  --keys ADDR                   the publisher's key service endpoint (required)
  --server-key FILE|KEY         the key service's public key (required)
  --key FILE                    this subscriber's secret key file (required)
  --topic TOPIC                 subscribe to TOPIC exactly (repeatable)
  --prefix PREFIX               with --clear-topics: every topic starting with PREFIX (repeatable)
  --clear-topics                the publisher sends clear topics
  --print-topic                 print "topic<TAB>" before each body
  -A, -Q, --hex, --raw          print bodies as ASCII (default), quoted, hex, or raw
  -n, --count N                 exit after N messages (default 0 = forever)
  -v, --verbose                 print the counters at exit
` + tlsUsage + `
Examples:
  secsock sub --connect tcp://127.0.0.1:5561 --publisher "$(cat pub.key.txt)" --keys tcp://127.0.0.1:5560 \
      --server-key svc.pub --key alice.key --topic weather
`

// loadSigningKey reads a signing key file, or creates it with create.
func loadSigningKey(e *env, path string, create, quiet bool) (secsock.SigningKey, error) {
	if create {
		k, err := secsock.GenerateSigningKey()
		if err != nil {
			return k, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return k, fmt.Errorf("--new-signing-key: %w", err)
		}
		_, err = f.WriteString(k.Reveal() + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && !quiet {
			fmt.Fprintf(e.stderr, "secsock pub: new signing key in %s; publisher key %s\n", path, k.Public())
		}
		return k, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return secsock.SigningKey{}, err
	}
	defer clear(b)
	return secsock.ParseSigningKey(string(b))
}

func runPub(e *env, args []string) error {
	var f sockFlags
	fs := newFlags("pub")
	f.register(fs)
	signPath := fs.String("signing-key", "", "")
	newSign := fs.Bool("new-signing-key", false, "")
	keysBind := fs.String("keys-bind", "", "")
	authorized := fs.String("authorized", "", "")
	topic := fs.String("topic", "", "")
	clearTopics := fs.Bool("clear-topics", false, "")
	f.registerPacing(fs)
	if err := parseFlags("pub", fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("pub", "unexpected argument %q (data goes in --data or --file)", fs.Arg(0))
	case *signPath == "" || *keysBind == "" || f.keyFile == "" || *authorized == "" || *topic == "":
		return usagef("pub", "--signing-key, --keys-bind, --key, --authorized and --topic are required")
	case len(f.dial)+len(f.listen) == 0:
		return usagef("pub", "give at least one --bind or --connect address")
	}
	if f.count < 0 {
		f.count = 1
		if f.interval > 0 {
			f.count = 0
		}
	}
	sign, err := loadSigningKey(e, *signPath, *newSign, f.quiet)
	if err != nil {
		return err
	}
	keys, err := loadServerKeys(f.keyFile, nil, *authorized)
	if err != nil {
		return err
	}
	data, _, err := f.payload("pub", e, true)
	if err != nil {
		return err
	}
	ks, err := secsock.NewKeyService(secsock.KeyServiceConfig{Publisher: sign.Public(), Subscribers: keys.aks.Keys()})
	if err != nil {
		return err
	}
	rep, err := secsock.NewRepSocket()
	if err != nil {
		return err
	}
	defer rep.Close()
	if err := setOptions(rep, secsock.OptionMechanism, secsock.MechanismCurve); err != nil {
		return err
	}
	if err := keys.apply(rep); err != nil {
		return err
	}
	rf := sockFlags{listen: strList{*keysBind}, tls: f.tls}
	if _, err := rf.connect("pub", rep); err != nil {
		return err
	}
	go ks.Serve(rep) //nolint:errcheck // ends when rep closes
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadSubscribers(e, hup, ks, rep, *authorized, keys.aks.Keys(), f.quiet)
	p, err := secsock.NewPublisher(secsock.PublisherConfig{Signing: sign, Keys: ks, ClearTopics: *clearTopics})
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := f.connect("pub", p.Socket()); err != nil {
		return err
	}
	if !f.quiet {
		fmt.Fprintf(e.stderr, "secsock pub: publisher %s, key service on %s (server key %s)\n", sign.Public(), *keysBind, keys.key.Public())
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
		if err := p.Publish(*topic, data); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	time.Sleep(linger) // mangos has no linger
	return nil
}

func runSub(e *env, args []string) error {
	var f sockFlags
	fs := newFlags("sub")
	f.register(fs)
	pubText := fs.String("publisher", "", "")
	keysAddr := fs.String("keys", "", "")
	serverKey := fs.String("server-key", "", "")
	var topics, prefixes strList
	fs.Var(&topics, "topic", "")
	fs.Var(&prefixes, "prefix", "")
	clearTopics := fs.Bool("clear-topics", false, "")
	printTopic := fs.Bool("print-topic", false, "")
	var verbose bool
	fs.BoolVar(&verbose, "v", false, "")
	fs.BoolVar(&verbose, "verbose", false, "")
	if err := parseFlags("sub", fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("sub", "unexpected argument %q", fs.Arg(0))
	case *pubText == "" || *keysAddr == "" || *serverKey == "" || f.keyFile == "":
		return usagef("sub", "--publisher, --keys, --server-key and --key are required")
	case len(topics)+len(prefixes) == 0:
		return usagef("sub", "give at least one --topic (or --prefix with --clear-topics)")
	case len(prefixes) > 0 && !*clearTopics:
		return usagef("sub", "--prefix needs --clear-topics: blinded tags match exact topics only")
	case len(f.dial)+len(f.listen) == 0:
		return usagef("sub", "give at least one --connect or --bind address")
	}
	printFn, err := f.format("sub")
	if err != nil {
		return err
	}
	if printFn == nil {
		printFn = printASCII
	}
	pk, err := secsock.ParsePublisherKey(*pubText)
	if err != nil {
		return err
	}
	srv, err := loadPublicKey("server-key", *serverKey)
	if err != nil {
		return err
	}
	own, err := secsock.LoadSecretKeyFile(f.keyFile)
	if err != nil {
		return err
	}
	req, err := secsock.NewReqSocket()
	if err != nil {
		return err
	}
	defer req.Close()
	if err := setOptions(req, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionServerKey, srv,
		secsock.OptionSecretKey, own, mangos.OptionRecvDeadline, 10*time.Second, mangos.OptionSendDeadline, 10*time.Second); err != nil {
		return err
	}
	rf := sockFlags{dial: strList{*keysAddr}, tls: f.tls}
	if _, err := rf.connect("sub", req); err != nil {
		return err
	}
	s, err := secsock.NewSubscriber(secsock.SubscriberConfig{Publishers: map[secsock.PublisherKey]*secsock.Socket{pk: req}, ClearTopics: *clearTopics})
	if err != nil {
		return err
	}
	defer s.Close()
	for _, t := range topics {
		if err := s.Subscribe(t); err != nil {
			return fmt.Errorf("subscribing to %q: %w", t, err)
		}
	}
	for _, p := range prefixes {
		if err := s.SubscribePrefix(p); err != nil {
			return err
		}
	}
	if err := setOptions(s.Socket(), mangos.OptionMaxRecvSize, f.maxSize); err != nil {
		return err
	}
	if _, err := f.connect("sub", s.Socket()); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); s.Socket().Close() }()
	defer func() {
		if verbose {
			fmt.Fprintf(e.stderr, "secsock sub: %s\n", strings.Trim(fmt.Sprintf("%+v", s.Stats()), "{}"))
		}
	}()
	if f.count < 0 {
		f.count = 0
	}
	for n := 0; f.count == 0 || n < f.count; n++ {
		m, err := s.Recv()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, mangos.ErrClosed) {
				return nil
			}
			return err
		}
		if *printTopic {
			fmt.Fprintf(e.stdout, "%s\t", m.Topic)
		}
		printFn(e.stdout, m.Body)
	}
	return nil
}

// reloadSubscribers re-reads the authorized keys file on each SIGHUP:
// added keys are authorized, removed ones revoked (which rotates the
// sender key at once and announces a new tag key, SPEC.md §18.4), and the
// key service socket's list is replaced.
func reloadSubscribers(e *env, hup <-chan os.Signal, ks *secsock.KeyService, rep *secsock.Socket, path string, cur []secsock.PublicKey, quiet bool) {
	have := map[secsock.PublicKey]bool{}
	for _, k := range cur {
		have[k] = true
	}
	for range hup {
		aks, err := secsock.LoadAuthorizedKeysFile(path)
		if err != nil {
			fmt.Fprintf(e.stderr, "secsock pub: reload of %s failed, keeping the old list: %v\n", path, err)
			continue
		}
		next := map[secsock.PublicKey]bool{}
		for _, k := range aks.Keys() {
			next[k] = true
			if !have[k] {
				ks.Authorize(k)
			}
		}
		revoked := 0
		for k := range have {
			if !next[k] {
				if err := ks.Revoke(k); err != nil {
					fmt.Fprintf(e.stderr, "secsock pub: revoking %s: %v\n", k, err)
					continue
				}
				revoked++
			}
		}
		if err := rep.SetOption(secsock.OptionAuthorizedKeys, aks.Keys()); err != nil {
			fmt.Fprintf(e.stderr, "secsock pub: %v\n", err)
		}
		have = next
		if !quiet {
			fmt.Fprintf(e.stderr, "secsock pub: reloaded %d authorized keys, revoked %d\n", len(next), revoked)
		}
	}
}
