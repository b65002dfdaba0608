package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/secsock/secsock"
	"go.nanomsg.org/mangos/v3"
	_ "go.nanomsg.org/mangos/v3/transport/all"
)

const reqUsage = `Usage: secsock req [flags]

Sends sealed requests to a secsock REP server (directly or through
devices) and prints each reply on stdout. The data comes from --data,
--file, or else stdin. A refused client or a wrong server key is reported
within one round trip, not as a timeout.

Flags:
  --connect ADDR, --dial ADDR   dial ADDR (repeatable)
  --bind ADDR, --listen ADDR    listen on ADDR (repeatable)
  --server-key FILE|KEY         the server's public key: a .pub file or key text (required)
  --key FILE                    this client's secret key file (without it the client is anonymous)
  --cipher NAME                 xsalsa20poly1305 (default) or aes256gcm
  -D, --data TEXT               send TEXT
  -F, --file PATH               send the contents of PATH ("-" for stdin)
  -A, --ascii                   print replies as ASCII, other bytes as '.', one per line (default)
  -Q, --quoted                  print replies quoted with C-style escapes, one per line
  --hex                         print replies as hex, one per line
  --raw                         print replies as they are, without delimiters
  -n, --count N                 send N requests (default 1; 0 = forever, the default with --interval)
  -i, --interval SEC            wait SEC between requests (seconds or a duration: 0.5, 500ms)
  -d, --delay SEC               wait SEC before the first request
  --recv-timeout SEC            give up waiting for a reply after SEC (default 10s; 0 = never)
  --send-timeout SEC            give up sending after SEC (default 10s; 0 = never)
  --check                       only check the credentials (server key and authorization), send no data
  -q, --quiet                   print nothing on success

Examples:
  secsock req --connect tcp://127.0.0.1:5555 --server-key server.pub --key alice.key -D hello
  echo hello | secsock req --connect ipc:///tmp/svc.sock --server-key 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7'
  secsock req --connect tcp://host:5555 --server-key server.pub --key alice.key --check
  secsock req --connect tcp://host:5555 --server-key server.pub -F request.bin --hex -i 1 -n 10
`

const repUsage = `Usage: secsock rep [flags]

Answers sealed requests: echoes each request (--echo, the default) or
replies with fixed data (--data, --file). With --authorized only the
listed clients are served; the file is reloaded on SIGHUP without
dropping requests in flight (a file with an error is refused and the
previous list kept). Every rejected request is reported on stderr with
its reason and the client's public key when known.

Flags:
  --bind ADDR, --listen ADDR    listen on ADDR (repeatable)
  --connect ADDR, --dial ADDR   dial ADDR, for example a device's back side (repeatable)
  --key FILE                    the server's secret key file (required)
  --previous-key FILE           an older server key still served during a key rotation (repeatable)
  --authorized FILE             authorized keys file: one client public key per line, then a name
  --allow-anonymous             with --authorized, also serve clients that have no key
  --echo                        reply with the request (default)
  -D, --data TEXT               reply with TEXT
  -F, --file PATH               reply with the contents of PATH
  -A, -Q, --hex, --raw          print each request (ASCII, quoted, hex, raw); default: do not print
  -n, --count N                 exit after answering N requests (default 0 = forever)
  -q, --quiet                   do not report rejected requests and reloads on stderr
  -v, --verbose                 also log through log/slog (debug level) and print counters at exit

Examples:
  secsock rep --bind tcp://127.0.0.1:5555 --key server.key
  secsock rep --bind tcp://:5555 --key server.key --authorized authorized_keys -D pong
  secsock rep --bind tcp://:5555 --key new.key --previous-key old.key --authorized authorized_keys
  kill -HUP $(pidof secsock)    # reload authorized_keys
`

// maxData is the largest body sent: mangos drops messages over 1 MiB
// (header and sealing included) silently on the receiving side.
const maxData = 1<<20 - 1024

// linger is how long rep --count waits after its last reply before
// closing the socket.
const linger = 250 * time.Millisecond

// sockFlags are the flags req and rep share.
type sockFlags struct {
	dial, listen         strList
	keyFile              string
	data, file           string
	ascii, quoted, hexF  bool
	raw, quiet           bool
	count                int
	interval, delay      seconds
	recvTimeout, sendTmo seconds
}

func (f *sockFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.dial, "connect", "")
	fs.Var(&f.dial, "dial", "")
	fs.Var(&f.listen, "bind", "")
	fs.Var(&f.listen, "listen", "")
	fs.StringVar(&f.keyFile, "key", "", "")
	fs.StringVar(&f.data, "D", "", "")
	fs.StringVar(&f.data, "data", "", "")
	fs.StringVar(&f.file, "F", "", "")
	fs.StringVar(&f.file, "file", "", "")
	fs.BoolVar(&f.ascii, "A", false, "")
	fs.BoolVar(&f.ascii, "ascii", false, "")
	fs.BoolVar(&f.quoted, "Q", false, "")
	fs.BoolVar(&f.quoted, "quoted", false, "")
	fs.BoolVar(&f.hexF, "hex", false, "")
	fs.BoolVar(&f.raw, "raw", false, "")
	fs.BoolVar(&f.quiet, "q", false, "")
	fs.BoolVar(&f.quiet, "quiet", false, "")
	fs.IntVar(&f.count, "n", -1, "")
	fs.IntVar(&f.count, "count", -1, "")
}

// format returns the print function chosen by the flags, or nil.
func (f *sockFlags) format(cmd string) (func(io.Writer, []byte), error) {
	var chosen []func(io.Writer, []byte)
	if f.ascii {
		chosen = append(chosen, printASCII)
	}
	if f.quoted {
		chosen = append(chosen, printQuoted)
	}
	if f.hexF {
		chosen = append(chosen, printHex)
	}
	if f.raw {
		chosen = append(chosen, printRaw)
	}
	if len(chosen) > 1 {
		return nil, usagef(cmd, "choose one of --ascii, --quoted, --hex and --raw")
	}
	if len(chosen) == 0 {
		return nil, nil
	}
	return chosen[0], nil
}

// payload returns the data from --data or --file; stdin is read when
// useStdin and neither is given. ok is false when no data was given.
func (f *sockFlags) payload(cmd string, e *env, useStdin bool) (data []byte, ok bool, err error) {
	var r io.Reader
	switch {
	case f.data != "" && f.file != "":
		return nil, false, usagef(cmd, "give --data or --file, not both")
	case f.data != "":
		return []byte(f.data), true, nil
	case f.file == "-" || (f.file == "" && useStdin):
		r = e.stdin
	case f.file != "":
		fh, err := os.Open(f.file)
		if err != nil {
			return nil, false, err
		}
		defer fh.Close()
		r = fh
	default:
		return nil, false, nil
	}
	data, err = io.ReadAll(io.LimitReader(r, maxData+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > maxData {
		return nil, false, fmt.Errorf("data is larger than %d bytes: receivers drop messages over 1 MiB (sealing included)", maxData)
	}
	return data, true, nil
}

// connect listens and dials on s; it returns the addresses listened on,
// as bound (so that a port 0 shows the real port).
func (f *sockFlags) connect(cmd string, s mangos.Socket) ([]string, error) {
	if len(f.dial)+len(f.listen) == 0 {
		return nil, usagef(cmd, "give at least one --connect or --bind address")
	}
	var bound []string
	for _, a := range f.listen {
		l, err := s.NewListener(a, nil)
		if err == nil {
			err = l.Listen()
		}
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", a, err)
		}
		bound = append(bound, l.Address())
	}
	for _, a := range f.dial {
		if err := s.Dial(a); err != nil {
			return nil, fmt.Errorf("dial %s: %w", a, err)
		}
	}
	return bound, nil
}

func setOptions(s mangos.Socket, kv ...any) error {
	for i := 0; i < len(kv); i += 2 {
		if err := s.SetOption(kv[i].(string), kv[i+1]); err != nil {
			return fmt.Errorf("option %s: %w", kv[i], err)
		}
	}
	return nil
}

func runReq(e *env, args []string) error {
	var f sockFlags
	fs := newFlags("req")
	f.register(fs)
	serverKey := fs.String("server-key", "", "")
	cipher := fs.String("cipher", secsock.CipherBox, "")
	check := fs.Bool("check", false, "")
	fs.Var(&f.interval, "i", "")
	fs.Var(&f.interval, "interval", "")
	fs.Var(&f.delay, "d", "")
	fs.Var(&f.delay, "delay", "")
	f.recvTimeout, f.sendTmo = seconds(10*time.Second), seconds(10*time.Second)
	fs.Var(&f.recvTimeout, "recv-timeout", "")
	fs.Var(&f.sendTmo, "send-timeout", "")
	if err := parseFlags("req", fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("req", "unexpected argument %q (data goes in --data or --file)", fs.Arg(0))
	}
	if *serverKey == "" {
		return usagef("req", "--server-key is required (the server's .pub file or key text)")
	}
	if len(f.dial)+len(f.listen) == 0 {
		return usagef("req", "give at least one --connect or --bind address")
	}
	printFn, err := f.format("req")
	if err != nil {
		return err
	}
	if printFn == nil {
		printFn = printASCII
	}
	if f.count < 0 {
		f.count = 1
		if f.interval > 0 {
			f.count = 0
		}
	}
	srv, err := loadPublicKey("server-key", *serverKey)
	if err != nil {
		return err
	}
	var own secsock.SecretKey
	if f.keyFile != "" {
		if own, err = secsock.LoadSecretKeyFile(f.keyFile); err != nil {
			return err
		}
	}
	var data []byte
	if !*check {
		if data, _, err = f.payload("req", e, true); err != nil {
			return err
		}
	}

	s, err := secsock.NewReqSocket()
	if err != nil {
		return err
	}
	defer s.Close()
	opts := []any{
		secsock.OptionMechanism, secsock.MechanismCurve,
		secsock.OptionServerKey, srv,
		secsock.OptionCipher, *cipher,
		mangos.OptionRecvDeadline, time.Duration(f.recvTimeout),
		mangos.OptionSendDeadline, time.Duration(f.sendTmo),
	}
	if !own.IsZero() {
		opts = append(opts, secsock.OptionSecretKey, own)
	}
	if err := setOptions(s, opts...); err != nil {
		if strings.Contains(err.Error(), secsock.OptionCipher) {
			return usagef("req", "--cipher: want %s or %s", secsock.CipherBox, secsock.CipherAESGCM)
		}
		return err
	}
	if _, err := f.connect("req", s); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	why := func(err error) error { return explainReq(err, srv, own, f, time.Duration(f.recvTimeout)) }

	if *check {
		if err := s.Authenticate(); err != nil {
			return why(err)
		}
		if !f.quiet {
			who := "anonymous client"
			if !own.IsZero() {
				who = "client " + own.Public().String()
			}
			fmt.Fprintf(e.stdout, "ok: server %s proved its key and accepted %s\n", srv, who)
		}
		return nil
	}
	if !sleep(ctx, time.Duration(f.delay)) {
		return nil
	}
	for i := 1; f.count == 0 || i <= f.count; i++ {
		if i > 1 && !sleep(ctx, time.Duration(f.interval)) {
			return nil
		}
		if err := s.Send(data); err != nil {
			return why(err)
		}
		reply, err := s.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if f.count != 1 {
				return fmt.Errorf("request %d: %w", i, why(err))
			}
			return why(err)
		}
		if !f.quiet {
			printFn(e.stdout, reply)
		}
	}
	return nil
}

// sleep waits d or until ctx is done; it reports whether to go on.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// explainReq turns a REQ error into one line that says what to do.
func explainReq(err error, srv secsock.PublicKey, own secsock.SecretKey, f sockFlags, timeout time.Duration) error {
	addrs := strings.Join(append(append([]string{}, f.dial...), f.listen...), ", ")
	switch {
	case errors.Is(err, secsock.ErrNotAuthorized):
		if own.IsZero() {
			return fmt.Errorf("%w: the server does not serve anonymous clients (authenticated refusal); use --key FILE with a key the server authorizes", err)
		}
		return fmt.Errorf("%w (authenticated refusal): ask the server's operator to add this client's public key %s to its authorized keys", err, own.Public())
	case errors.Is(err, secsock.ErrServerKeyMismatch):
		return fmt.Errorf("%w: this client used server key %s; compare it with the server's (secsock pubkey SERVER.key)", err, srv)
	case errors.Is(err, secsock.ErrStale):
		return fmt.Errorf("%w: check the clocks of both hosts", err)
	case errors.Is(err, secsock.ErrUnsupported):
		return fmt.Errorf("%w: try --cipher %s, or upgrade the server", err, secsock.CipherBox)
	case errors.Is(err, secsock.ErrAuthFailed):
		return fmt.Errorf("%w: the reply was forged or corrupted on the way, or the peer does not hold the server key", err)
	case errors.Is(err, mangos.ErrRecvTimeout):
		return fmt.Errorf("no reply within %v from %s: is a secsock rep server running there (or a device forwarding to one)? A wrong key would have been reported", timeout, addrs)
	case errors.Is(err, mangos.ErrSendTimeout):
		return fmt.Errorf("could not send within the send timeout to %s: no peer connected", addrs)
	}
	return err
}

func runRep(e *env, args []string) error {
	var f sockFlags
	fs := newFlags("rep")
	f.register(fs)
	var previous strList
	fs.Var(&previous, "previous-key", "")
	authorized := fs.String("authorized", "", "")
	allowAnon := fs.Bool("allow-anonymous", false, "")
	echo := fs.Bool("echo", false, "")
	var verbose bool
	fs.BoolVar(&verbose, "v", false, "")
	fs.BoolVar(&verbose, "verbose", false, "")
	if err := parseFlags("rep", fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("rep", "unexpected argument %q", fs.Arg(0))
	}
	if f.keyFile == "" {
		return usagef("rep", "--key is required (the server's secret key file; make one with secsock keygen)")
	}
	if len(f.dial)+len(f.listen) == 0 {
		return usagef("rep", "give at least one --bind or --connect address")
	}
	printFn, err := f.format("rep")
	if err != nil {
		return err
	}
	if f.count < 0 {
		f.count = 0
	}
	reply, fixed, err := f.payload("rep", e, false)
	if err != nil {
		return err
	}
	if fixed && *echo {
		return usagef("rep", "give --echo or --data/--file, not both")
	}
	key, err := secsock.LoadSecretKeyFile(f.keyFile)
	if err != nil {
		return err
	}
	var prev []secsock.SecretKey
	for _, p := range previous {
		k, err := secsock.LoadSecretKeyFile(p)
		if err != nil {
			return err
		}
		prev = append(prev, k)
	}

	s, err := secsock.NewRepSocket()
	if err != nil {
		return err
	}
	defer s.Close()

	var (
		mu    sync.Mutex // guards names and stderr lines
		names secsock.AuthorizedKeys
	)
	say := func(format string, args ...any) {
		if f.quiet {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(e.stderr, "secsock rep: "+format+"\n", args...)
	}
	peerName := func(k secsock.PublicKey) string {
		if k.IsZero() {
			return "an anonymous or unidentified client"
		}
		mu.Lock()
		defer mu.Unlock()
		if n, ok := names.Name(k); ok && n != "" {
			return fmt.Sprintf("client %s (%s)", k, n)
		}
		return "client " + k.String()
	}
	opts := []any{
		secsock.OptionMechanism, secsock.MechanismCurve,
		secsock.OptionSecretKey, key,
		secsock.OptionAllowAnonymous, *allowAnon,
		secsock.OptionEventHook, func(ev secsock.Event) {
			if ev.Reason == secsock.ReasonRetry {
				return // a retry answered from the reply cache: not a problem
			}
			say("rejected a request from %s: %s (%s)", peerName(ev.Peer), ev.Reason, reasonHelp[ev.Reason])
		},
	}
	if len(prev) > 0 {
		opts = append(opts, secsock.OptionPreviousSecretKeys, prev)
	}
	if verbose {
		opts = append(opts, secsock.OptionLogger, slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	if err := setOptions(s, opts...); err != nil {
		return err
	}
	if *authorized != "" {
		aks, err := s.ReloadAuthorizedKeys(*authorized)
		if err != nil {
			return err
		}
		mu.Lock()
		names = aks
		mu.Unlock()
	}
	bound, err := f.connect("rep", s)
	if err != nil {
		return err
	}
	for _, a := range bound {
		say("listening on %s with server key %s", a, key.Public())
	}
	for _, a := range f.dial {
		say("dialed %s with server key %s", a, key.Public())
	}

	// Signals: SIGINT/SIGTERM stop, SIGHUP reloads the authorized keys.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	stopped := make(chan struct{})
	var stopping sync.Once
	stop := func() { stopping.Do(func() { close(stopped); s.Close() }) }
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig != syscall.SIGHUP {
					stop()
					return
				}
				if *authorized == "" {
					say("SIGHUP: no --authorized file to reload")
					continue
				}
				aks, err := s.ReloadAuthorizedKeys(*authorized)
				if err != nil {
					say("reload failed, keeping the previous authorized keys: %s", strings.TrimPrefix(err.Error(), "secsock: "))
					continue
				}
				mu.Lock()
				names = aks
				mu.Unlock()
				say("reloaded %d authorized keys from %s", len(aks), *authorized)
			case <-stopped:
				return
			}
		}
	}()
	defer stop()

	for n := 0; f.count == 0 || n < f.count; n++ {
		req, err := s.Recv()
		if err != nil {
			select {
			case <-stopped:
				return nil
			default:
			}
			return err
		}
		if printFn != nil {
			mu.Lock()
			printFn(e.stdout, req)
			mu.Unlock()
		}
		out := req
		if fixed {
			out = reply
		}
		if err := s.Send(out); err != nil {
			return err
		}
	}
	// mangos has no linger: give the last reply time to leave before
	// Close drops what is still queued.
	time.Sleep(linger)
	if verbose {
		st := s.Stats()
		say("served %d requests; answered %d itself; rejected %v", st.Opened, st.Answered, st.Rejected)
	}
	return nil
}

// reasonHelp says what each rejection reason means for an operator.
var reasonHelp = map[secsock.Reason]string{
	secsock.ReasonMalformed:      "wrong length or layout: not a secsock client, or a damaged message",
	secsock.ReasonUnknownVersion: "protocol version unknown here (answered with an unsupported hint)",
	secsock.ReasonUnknownKind:    "not a request: a stray reply or a non-secsock peer",
	secsock.ReasonUnsupported:    "cipher suite not supported here",
	secsock.ReasonWeakKey:        "small-order key: an attack or a broken client",
	secsock.ReasonForged:         "could not open: the client has the wrong server key, or the message was forged or corrupted",
	secsock.ReasonBadVouch:       "the client's identity proof did not verify: refused",
	secsock.ReasonNotAuthorized:  "not in the authorized keys: refused; add its .pub line to authorize it",
	secsock.ReasonStale:          "timestamp outside the freshness window: check the clocks",
	secsock.ReasonReplayed:       "replayed request: refused",
}

// printers, in nanocat's formats.

func printASCII(w io.Writer, b []byte) {
	out := make([]byte, 0, len(b)+1)
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out = append(out, c)
	}
	w.Write(append(out, '\n'))
}

func printQuoted(w io.Writer, b []byte) {
	var out bytes.Buffer
	out.WriteByte('"')
	for _, c := range b {
		switch c {
		case '"', '\\':
			out.WriteByte('\\')
			out.WriteByte(c)
		case '\n':
			out.WriteString(`\n`)
		case '\r':
			out.WriteString(`\r`)
		case '\t':
			out.WriteString(`\t`)
		default:
			if c < 0x20 || c > 0x7e {
				fmt.Fprintf(&out, `\x%02x`, c)
			} else {
				out.WriteByte(c)
			}
		}
	}
	out.WriteString("\"\n")
	w.Write(out.Bytes())
}

func printHex(w io.Writer, b []byte) { io.WriteString(w, hex.EncodeToString(b)+"\n") }

func printRaw(w io.Writer, b []byte) { w.Write(b) }
