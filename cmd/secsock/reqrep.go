package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
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
	"github.com/secsock/secsock/metrics"
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
  --hybrid                      post-quantum hybrid mode (ML-KEM-768 with X25519, SPEC.md §16):
                                nothing is sent unless the server serves it
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
  --max-size BYTES              the largest reply body accepted (default 1048576; 0 = no limit)
  --check                       only check the credentials (server key and authorization), send no data
  --json                        with --check: print the result as one JSON object on stdout (also on failure)
  -q, --quiet                   print nothing on success
` + tlsUsage + `
Examples:
  secsock req --connect tcp://127.0.0.1:5555 --server-key server.pub --key alice.key -D hello
  echo hello | secsock req --connect ipc:///tmp/svc.sock --server-key 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7'
  secsock req --connect tcp://host:5555 --server-key server.pub --key alice.key --check
  secsock req --connect tcp://host:5555 --server-key server.pub -F request.bin --hex -i 1 -n 10
  secsock req --connect tls+tcp://host:5555 --tls-ca ca.pem --server-key server.pub -D hi
`

const repUsage = `Usage: secsock rep [flags]

Answers sealed requests: echoes each request (--echo, the default) or
replies with fixed data (--data, --file). With --authorized only the
listed clients are served. On SIGHUP it reloads its keys (--key,
--previous-key) and --authorized without dropping requests in flight; a
file with an error is refused and the previous keys kept. Every rejected
request is logged on stderr with its reason, the client's public key and
its name in the authorized keys file when known; log lines carry a UTC
timestamp (--json: JSON lines). SIGINT and SIGTERM stop it.

Flags:
  --bind ADDR, --listen ADDR    listen on ADDR (repeatable)
  --connect ADDR, --dial ADDR   dial ADDR, for example a device's back side (repeatable)
  --key FILE                    the server's secret key file (required)
  --previous-key FILE           an older server key still served during a key rotation (repeatable)
  --epoch-seed FILE             the service's epoch seed file (secsock epoch-seed new): forward secrecy
  --hybrid MODE                 with --epoch-seed, the post-quantum hybrid mode (ML-KEM-768 with
                                X25519, SPEC.md §16): on, or require (refuse clients without it)
  --replay-store URL            replay state shared by every worker of the service, on Redis:
                                redis://HOST:PORT/DB or rediss://... (TLS); each request then runs
                                at most once across all workers (SPEC.md §17)
  --replay-store-password-file FILE   the Redis password, read from FILE (instead of in the URL)
  --replay-store-ca FILE        with rediss://, trust the CA certificates in FILE (PEM)
  --replay-store-deadline SEC   refuse a request when Redis has not answered in SEC (default 0.1)
  --replay-store-lease SEC      how long a claim waits for its reply before copies are in doubt (default 10)
  --replay-store-per-instance   when Redis fails, serve with this worker's own replay checks
                                instead of refusing (a captured request can then run once per worker)
  --authorized FILE             authorized keys file: one client public key per line, then a name
  --allow-anonymous             with --authorized, also serve clients that have no key
  --permissive                  also serve plain (unsealed) requests, answered plain: for a rollout
                                from plain mangos (README, "Rolling out"); counted as "plain"
  --allow-plain                 with --permissive and --authorized, serve plain requests too
  --max-size BYTES              the largest request body accepted (default 1048576; 0 = no limit);
                                one over gets an authenticated TOO_LARGE refusal
  --echo                        reply with the request (default)
  -D, --data TEXT               reply with TEXT
  -F, --file PATH               reply with the contents of PATH
  -A, -Q, --hex, --raw          print each request (ASCII, quoted, hex, raw); default: do not print
  -n, --count N                 exit after answering N requests (default 0 = forever)
  -q, --quiet                   do not log rejected requests and reloads
  -v, --verbose                 also log through log/slog (debug level) and print the counters at exit
  --json                        log JSON lines (time, level, msg, fields) instead of text
  --print-config                print what the server would accept (keys, policy, limits; no secrets) and exit
` + metricsUsage + tlsUsage + `
Examples:
  secsock rep --bind tcp://127.0.0.1:5555 --key server.key
  secsock rep --bind tcp://:5555 --key server.key --authorized authorized_keys -D pong
  secsock rep --bind tcp://:5555 --key new.key --previous-key old.key --authorized authorized_keys
  secsock rep --bind tls+tcp://:5555 --tls-cert cert.pem --tls-key cert.key --key server.key
  secsock rep --bind tcp://:5555 --key server.key --metrics 127.0.0.1:9464
  secsock rep --connect tcp://device:5556 --key server.key --replay-store redis://store:6379/0
  secsock rep --key server.key --authorized authorized_keys --bind tcp://:5555 --print-config
  kill -HUP $(pidof secsock)    # reload the keys and authorized_keys
`

// maxData is the largest body sent: the receivers' default body limit
// (mangos.OptionMaxRecvSize, which on a secsock socket counts bodies).
const maxData = 1 << 20

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
	tls                  tlsFlags
	json                 bool
	maxSize              int // mangos.OptionMaxRecvSize: the body limit
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
	fs.BoolVar(&f.json, "json", false, "")
	fs.IntVar(&f.maxSize, "max-size", 1<<20, "")
	f.tls.register(fs)
}

// senderKeys checks what a sealing sender (req, push) needs, defaults its
// count (1, or forever with --interval), and loads the server's public
// key and this side's optional secret key.
func (f *sockFlags) senderKeys(cmd, whose, serverKey string) (secsock.PublicKey, secsock.SecretKey, error) {
	var own secsock.SecretKey
	if serverKey == "" {
		return secsock.PublicKey{}, own, usagef(cmd, "--server-key is required (%s .pub file or key text)", whose)
	}
	if len(f.dial)+len(f.listen) == 0 {
		return secsock.PublicKey{}, own, usagef(cmd, "give at least one --connect or --bind address")
	}
	if f.count < 0 {
		f.count = 1
		if f.interval > 0 {
			f.count = 0
		}
	}
	srv, err := loadPublicKey("server-key", serverKey)
	if err == nil && f.keyFile != "" {
		own, err = secsock.LoadSecretKeyFile(f.keyFile)
	}
	return srv, own, err
}

// registerPacing adds -i/--interval and -d/--delay, for the commands that
// send repeatedly (req, push, pub).
func (f *sockFlags) registerPacing(fs *flag.FlagSet) {
	fs.Var(&f.interval, "i", "")
	fs.Var(&f.interval, "interval", "")
	fs.Var(&f.delay, "d", "")
	fs.Var(&f.delay, "delay", "")
}

// registerSender adds what a command that seals to a service takes (req,
// push): --server-key and --cipher, the pacing flags, and the receive and
// send timeouts (default 10 s each).
func (f *sockFlags) registerSender(fs *flag.FlagSet) (serverKey, cipher *string) {
	serverKey = fs.String("server-key", "", "")
	cipher = fs.String("cipher", secsock.CipherBox, "")
	f.registerPacing(fs)
	f.recvTimeout, f.sendTmo = seconds(10*time.Second), seconds(10*time.Second)
	fs.Var(&f.recvTimeout, "recv-timeout", "")
	fs.Var(&f.sendTmo, "send-timeout", "")
	return serverKey, cipher
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
		return nil, false, fmt.Errorf("data is larger than %d bytes: the receivers' default body limit (--max-size)", maxData)
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
		opts, err := f.tls.options(a, true)
		if err != nil {
			return nil, usagef(cmd, "%v", err)
		}
		l, err := s.NewListener(a, opts)
		if err == nil {
			err = l.Listen()
		}
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", a, err)
		}
		bound = append(bound, l.Address())
	}
	for _, a := range f.dial {
		opts, err := f.tls.options(a, false)
		if err != nil {
			return nil, usagef(cmd, "%v", err)
		}
		if err := s.DialOptions(a, opts); err != nil {
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
	serverKey, cipher := f.registerSender(fs)
	check := fs.Bool("check", false, "")
	hybrid := fs.Bool("hybrid", false, "")
	if err := parseFlags("req", fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("req", "unexpected argument %q (data goes in --data or --file)", fs.Arg(0))
	}
	printFn, err := f.format("req")
	if err != nil {
		return err
	}
	if printFn == nil {
		printFn = printASCII
	}
	srv, own, err := f.senderKeys("req", "the server's", *serverKey)
	if err != nil {
		return err
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
		mangos.OptionMaxRecvSize, f.maxSize,
	}
	if !own.IsZero() {
		opts = append(opts, secsock.OptionSecretKey, own)
	}
	if *hybrid {
		opts = append(opts, secsock.OptionHybrid, secsock.HybridOn)
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
		err := s.Authenticate()
		if f.json {
			return checkJSON(e, srv, own, err, why)
		}
		if err != nil {
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

// checkResult is req --check --json's output.
type checkResult struct {
	OK                bool   `json:"ok"`
	ServerKey         string `json:"server_key"`
	ServerFingerprint string `json:"server_fingerprint"`
	Client            string `json:"client,omitempty"` // empty: anonymous
	Error             string `json:"error,omitempty"`
	Reason            string `json:"reason,omitempty"`
	Authenticated     bool   `json:"authenticated"` // the answer (ok or refusal) was proved by the server key
}

// silentError is an error already reported on stdout: exit 1, print
// nothing more.
type silentError struct{ error }

func checkJSON(e *env, srv secsock.PublicKey, own secsock.SecretKey, err error, why func(error) error) error {
	r := checkResult{OK: err == nil, ServerKey: srv.String(), ServerFingerprint: srv.Fingerprint(), Authenticated: err == nil}
	if !own.IsZero() {
		r.Client = own.Public().String()
	}
	if err != nil {
		r.Error = strings.TrimPrefix(why(err).Error(), "secsock: ")
		r.Reason = errorReason(err)
		r.Authenticated = errors.Is(err, secsock.ErrNotAuthorized) || errors.Is(err, secsock.ErrStale) ||
			errors.Is(err, secsock.ErrReplayed) || errors.Is(err, secsock.ErrInDoubt) ||
			errors.Is(err, secsock.ErrUnsupportedFeature) || errors.Is(err, secsock.ErrRefused) ||
			errors.Is(err, secsock.ErrStoreUnavailable)
	}
	if jerr := json.NewEncoder(e.stdout).Encode(r); jerr != nil {
		return jerr
	}
	if err != nil {
		return silentError{err}
	}
	return nil
}

// errorReason names a REQ error like the server's reasons.
func errorReason(err error) string {
	switch {
	case errors.Is(err, secsock.ErrNotAuthorized):
		return "not-authorized"
	case errors.Is(err, secsock.ErrServerKeyMismatch):
		return "server-key-mismatch"
	case errors.Is(err, secsock.ErrStale):
		return "stale"
	case errors.Is(err, secsock.ErrBusy):
		return "busy"
	case errors.Is(err, secsock.ErrStoreUnavailable):
		return "store-unavailable"
	case errors.Is(err, mangos.ErrRecvTimeout):
		return "timeout"
	case errors.Is(err, mangos.ErrSendTimeout):
		return "send-timeout"
	case errors.Is(err, secsock.ErrNotSecsock):
		return "not-secsock"
	case errors.Is(err, secsock.ErrUnsupported), errors.Is(err, secsock.ErrUnsupportedFeature):
		return "unsupported"
	}
	return "error"
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
	case errors.Is(err, secsock.ErrStoreUnavailable):
		return fmt.Errorf("%w (authenticated refusal): try again once the server's replay store is back (if this request was resent, another worker may have run it: treat it as in doubt)", err)
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

// serverKeys are what rep loads from its key files, at start and on
// SIGHUP.
type serverKeys struct {
	key      secsock.SecretKey
	prev     []secsock.SecretKey
	prevPath []string
	aks      secsock.AuthorizedKeys
	authPath string // "" without --authorized
}

func loadServerKeys(keyFile string, previous []string, authorized string) (*serverKeys, error) {
	k := &serverKeys{prevPath: previous, authPath: authorized}
	var err error
	if k.key, err = secsock.LoadSecretKeyFile(keyFile); err != nil {
		return nil, err
	}
	for _, p := range previous {
		pk, err := secsock.LoadSecretKeyFile(p)
		if err != nil {
			return nil, err
		}
		k.prev = append(k.prev, pk)
	}
	if authorized != "" {
		if k.aks, err = secsock.LoadAuthorizedKeysFile(authorized); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// apply makes k the socket's keys: previous keys first, so that a key
// moved from --key to --previous-key is served throughout.
func (k *serverKeys) apply(s *secsock.Socket) error {
	var auth []secsock.PublicKey
	if k.authPath != "" {
		auth = k.aks.Keys()
	}
	return setOptions(s,
		secsock.OptionPreviousSecretKeys, append([]secsock.SecretKey{}, k.prev...),
		secsock.OptionSecretKey, k.key,
		secsock.OptionAuthorizedKeys, auth)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func runRep(e *env, args []string) error {
	var f sockFlags
	fs := newFlags("rep")
	f.register(fs)
	var previous strList
	fs.Var(&previous, "previous-key", "")
	authorized := fs.String("authorized", "", "")
	allowAnon := fs.Bool("allow-anonymous", false, "")
	permissive := fs.Bool("permissive", false, "")
	allowPlain := fs.Bool("allow-plain", false, "")
	echo := fs.Bool("echo", false, "")
	var verbose bool
	fs.BoolVar(&verbose, "v", false, "")
	fs.BoolVar(&verbose, "verbose", false, "")
	printConfig := fs.Bool("print-config", false, "")
	metricsAddr := fs.String("metrics", "", "")
	epochSeed := fs.String("epoch-seed", "", "")
	hybrid := fs.String("hybrid", secsock.HybridOff, "")
	var store storeFlags
	store.register(fs)
	if err := parseFlags("rep", fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("rep", "unexpected argument %q", fs.Arg(0))
	}
	if f.keyFile == "" {
		return usagef("rep", "--key is required (the server's secret key file; make one with secsock keygen)")
	}
	if len(f.dial)+len(f.listen) == 0 && !*printConfig {
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
	keys, err := loadServerKeys(f.keyFile, previous, *authorized)
	if err != nil {
		return err
	}

	s, err := secsock.NewRepSocket()
	if err != nil {
		return err
	}
	defer s.Close()
	log := newLogger(e.stderr, "rep", f.quiet, f.json)

	var mu sync.Mutex // guards cur and former
	cur := keys
	// former names keys that an earlier authorized keys file listed, so
	// that a revoked client's rejections still say who it is.
	former := map[secsock.PublicKey]string{}
	remember := func(k *serverKeys) {
		for _, ak := range k.aks {
			if ak.Name != "" {
				former[ak.Key] = ak.Name
			}
		}
	}
	remember(keys)
	names := func(k secsock.PublicKey) string {
		mu.Lock()
		defer mu.Unlock()
		if n, ok := cur.aks.Name(k); ok {
			return n
		}
		if n, ok := former[k]; ok {
			return n + ", no longer authorized"
		}
		return ""
	}
	opts := []any{
		secsock.OptionMechanism, secsock.MechanismCurve,
		secsock.OptionAllowAnonymous, *allowAnon,
		secsock.OptionPermissive, *permissive,
		secsock.OptionAllowPlain, *allowPlain,
		mangos.OptionMaxRecvSize, f.maxSize,
		secsock.OptionEventHook, func(ev secsock.Event) {
			if ev.Kind != secsock.EventRejected || ev.Reason == secsock.ReasonRetry {
				return // a retry answered from the reply cache: not a problem
			}
			who := "an anonymous or unidentified client"
			attrs := []any{"event", "rejected", "reason", ev.Reason.String()}
			if !ev.Peer.IsZero() {
				who = "client " + ev.Peer.String()
				attrs = append(attrs, "client", ev.Peer.String(), "client_fingerprint", ev.Peer.Fingerprint())
				if n := names(ev.Peer); n != "" {
					who += " (" + n + ")"
					attrs = append(attrs, "client_name", n)
				}
			}
			attrs = append(attrs, "help", reasonHelp[ev.Reason])
			log.say(attrs, "rejected a request from %s: %s (%s)", who, ev.Reason, reasonHelp[ev.Reason])
		},
	}
	if verbose {
		opts = append(opts, secsock.OptionLogger, slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	if err := setOptions(s, opts...); err != nil {
		return err
	}
	if err := keys.apply(s); err != nil {
		return err
	}
	if *epochSeed != "" {
		// Loaded (and ratcheted if behind) here; the socket keeps the file
		// ratcheted as epochs pass.
		if !verbose { // ratchets are logged at Info (rejections stay Debug)
			if err := s.SetOption(secsock.OptionLogger, slog.New(slog.NewTextHandler(e.stderr, nil))); err != nil {
				return err
			}
		}
		if err := s.SetOption(secsock.OptionEpochSeed, *epochSeed); err != nil {
			return err
		}
		log.say([]any{"epoch_seed", *epochSeed}, "forward secrecy on: epoch seed %s", *epochSeed)
	}
	if *hybrid != secsock.HybridOff {
		if *epochSeed == "" || (*hybrid != secsock.HybridOn && *hybrid != secsock.HybridRequire) {
			return usagef("rep", "--hybrid: want %s or %s, with --epoch-seed", secsock.HybridOn, secsock.HybridRequire)
		}
		if err := s.SetOption(secsock.OptionHybrid, *hybrid); err != nil {
			return err
		}
		log.say([]any{"hybrid", *hybrid}, "post-quantum hybrid mode %s (ML-KEM-768 with X25519)", *hybrid)
	}
	if store.url != "" {
		st, shown, err := store.open(s)
		if err != nil {
			return err
		}
		defer st.Close()
		log.say([]any{"replay_store", shown}, "replay state shared through %s", shown)
	}
	if *printConfig {
		return printRepConfig(e, s, keys, &f, *allowAnon)
	}
	bound, err := f.connect("rep", s)
	if err != nil {
		return err
	}
	pub := keys.key.Public()
	for _, a := range bound {
		log.say([]any{"listen", a, "server_key", pub.String(), "server_fingerprint", pub.Fingerprint()},
			"listening on %s with server key %s (fingerprint %s)", a, pub, pub.Fingerprint())
	}
	for _, a := range f.dial {
		log.say([]any{"dial", a, "server_key", pub.String(), "server_fingerprint", pub.Fingerprint()},
			"dialed %s with server key %s (fingerprint %s)", a, pub, pub.Fingerprint())
	}
	logPolicy := func(k *serverKeys) {
		for _, p := range k.prev {
			log.say([]any{"previous_key", p.Public().String(), "previous_fingerprint", p.Public().Fingerprint()},
				"also serving previous server key %s (fingerprint %s)", p.Public(), p.Public().Fingerprint())
		}
		anon := "anonymous clients refused"
		if *allowAnon {
			anon = "anonymous clients served"
		}
		if k.authPath == "" {
			log.say([]any{"authorized", nil}, "no --authorized file: serving every client, anonymous or not")
		} else {
			log.say([]any{"authorized", len(k.aks), "authorized_file", k.authPath, "allow_anonymous", *allowAnon},
				"serving %s from %s; %s", plural(len(k.aks), "authorized key", "authorized keys"), k.authPath, anon)
		}
	}
	logPolicy(keys)

	var web *webServer
	if *metricsAddr != "" {
		c := metrics.NewCollector()
		c.Add("rep", s)
		if web, err = serveMetrics(*metricsAddr, c); err != nil {
			return err
		}
		defer web.close()
		web.healthy.Store(true)
		log.say([]any{"metrics", "http://" + web.addr + "/metrics"}, "metrics on http://%s/metrics, health check on http://%s/healthz", web.addr, web.addr)
	}

	// Signals: SIGINT/SIGTERM stop, SIGHUP reloads the keys and the
	// authorized keys.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	stopped := make(chan struct{})
	var stopping sync.Once
	stop := func() {
		stopping.Do(func() {
			if web != nil {
				web.healthy.Store(false)
			}
			close(stopped)
			s.Close()
		})
	}
	reload := func() {
		nk, err := loadServerKeys(f.keyFile, previous, *authorized)
		if err == nil {
			err = nk.apply(s)
		}
		if err != nil {
			mu.Lock()
			old := cur
			mu.Unlock()
			if aerr := old.apply(s); aerr != nil {
				log.sayf("restoring the previous keys failed: %s", strings.TrimPrefix(aerr.Error(), "secsock: "))
			}
			log.say([]any{"event", "reload-failed", "error", strings.TrimPrefix(err.Error(), "secsock: ")},
				"reload failed, keeping the previous keys: %s", strings.TrimPrefix(err.Error(), "secsock: "))
			return
		}
		mu.Lock()
		cur = nk
		remember(nk)
		mu.Unlock()
		np := nk.key.Public()
		if nk.authPath != "" {
			log.say([]any{"event", "reloaded", "authorized", len(nk.aks), "server_fingerprint", np.Fingerprint(), "previous_keys", len(nk.prev)},
				"reloaded %s from %s and server key %s (fingerprint %s, %s)", plural(len(nk.aks), "authorized key", "authorized keys"),
				nk.authPath, np, np.Fingerprint(), plural(len(nk.prev), "previous key", "previous keys"))
		} else {
			log.say([]any{"event", "reloaded", "server_fingerprint", np.Fingerprint(), "previous_keys", len(nk.prev)},
				"reloaded server key %s (fingerprint %s, %s); no --authorized file", np, np.Fingerprint(), plural(len(nk.prev), "previous key", "previous keys"))
		}
	}
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					reload()
					continue
				}
				log.say([]any{"signal", sig.String()}, "stopping on %s", sig)
				stop()
				return
			case <-stopped:
				return
			}
		}
	}()
	defer stop()
	report := func() {
		if verbose {
			printCounters(log, s.Stats())
		}
	}

	for n := 0; f.count == 0 || n < f.count; n++ {
		req, err := s.Recv()
		if err != nil {
			select {
			case <-stopped:
				report()
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
	report()
	return nil
}

// printCounters logs the socket's counters in one line: "served 3
// requests; answered 1 itself; 2 retries; rejected 2: forged=1
// not-authorized=1".
func printCounters(log *logger, st secsock.Stats) {
	var parts []string
	rejected := map[string]uint64{}
	for _, r := range secsock.Reasons() {
		if n := st.Rejected[r]; n > 0 && r != secsock.ReasonRetry {
			parts = append(parts, fmt.Sprintf("%s=%d", r, n))
			rejected[r.String()] = n
		}
	}
	detail := ""
	if len(parts) > 0 {
		detail = ": " + strings.Join(parts, " ")
	}
	log.always([]any{"event", "counters", "served", st.Opened, "answered", st.Answered, "retries", st.Retries, "rejected", st.TotalRefused(), "rejected_by_reason", rejected},
		"served %s; answered %d itself; %s; rejected %d%s",
		plural(int(st.Opened), "request", "requests"), st.Answered, plural(int(st.Retries), "retry", "retries"), st.TotalRefused(), detail)
}

// repConfig is rep --print-config's output: what the server accepts,
// with no secret (key files are named, their secrets redacted).
type repConfig struct {
	ServerKey      keyJSON   `json:"server_key"`
	PreviousKeys   []keyJSON `json:"previous_keys"`
	ClientPolicy   string    `json:"client_policy"`
	AuthorizedFile string    `json:"authorized_file,omitempty"`
	Authorized     []keyJSON `json:"authorized"`
	AllowAnonymous bool      `json:"allow_anonymous"`
	Freshness      string    `json:"freshness"`
	MaxClockSkew   string    `json:"max_clock_skew"`
	Budget         int       `json:"key_agreement_budget"`
	PeerCache      int       `json:"peer_cache_size"`
	ReplyCache     int       `json:"reply_cache_size"`
	ReplyBytes     int       `json:"reply_cache_bytes"`
	Epochs         string    `json:"epoch_keys"`
	ReplayStore    string    `json:"replay_store"`
	Listen         []string  `json:"listen"`
	Dial           []string  `json:"dial"`
	TLS            string    `json:"tls"`
	Protocol       string    `json:"protocol"`
}

func printRepConfig(e *env, s *secsock.Socket, k *serverKeys, f *sockFlags, allowAnon bool) error {
	get := func(name string) any {
		v, err := s.GetOption(name)
		if err != nil {
			return nil
		}
		return v
	}
	dur := func(name string) string {
		d, _ := get(name).(time.Duration)
		return d.String()
	}
	num := func(name string) int { n, _ := get(name).(int); return n }
	redacted := func(path string) string { return path + " (secret redacted)" }
	c := repConfig{
		ServerKey:    keyJSON{PublicKey: k.key.Public().String(), Fingerprint: k.key.Public().Fingerprint(), SecretKeyFile: redacted(f.keyFile)},
		PreviousKeys: []keyJSON{}, Authorized: []keyJSON{},
		AllowAnonymous: allowAnon,
		Freshness:      dur(secsock.OptionFreshness), MaxClockSkew: dur(secsock.OptionMaxClockSkew),
		Budget: num(secsock.OptionKeyAgreementBudget), PeerCache: num(secsock.OptionPeerCacheSize),
		ReplyCache: num(secsock.OptionReplyCacheSize), ReplyBytes: num(secsock.OptionReplyCacheBytes),
		Epochs:      "none (epoch keys are a planned extension, SPEC.md §10; no forward secrecy in version 2)",
		ReplayStore: "in memory, per instance (a shared replay store is a planned extension, SPEC.md §10)",
		Listen:      append([]string{}, f.listen...), Dial: append([]string{}, f.dial...),
		TLS: f.tls.describe(), Protocol: secsock.Protocol,
	}
	for i, p := range k.prev {
		c.PreviousKeys = append(c.PreviousKeys, keyJSON{PublicKey: p.Public().String(), Fingerprint: p.Public().Fingerprint(), SecretKeyFile: redacted(k.prevPath[i])})
	}
	switch {
	case k.authPath == "":
		c.ClientPolicy = "none: every client is served, anonymous or not"
	case allowAnon:
		c.ClientPolicy = "authorized keys, and anonymous clients"
	default:
		c.ClientPolicy = "authorized keys only; anonymous clients refused"
	}
	if k.authPath != "" {
		c.AuthorizedFile = k.authPath
		for _, ak := range k.aks {
			c.Authorized = append(c.Authorized, keyJSON{PublicKey: ak.Key.String(), Fingerprint: ak.Key.Fingerprint(), Name: ak.Name})
		}
	}
	if f.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	}
	w := e.stdout
	fmt.Fprintf(w, "protocol:        %s\n", c.Protocol)
	fmt.Fprintf(w, "server key:      %s (fingerprint %s) from %s\n", c.ServerKey.PublicKey, c.ServerKey.Fingerprint, c.ServerKey.SecretKeyFile)
	if len(c.PreviousKeys) == 0 {
		fmt.Fprintln(w, "previous keys:   none")
	}
	for _, p := range c.PreviousKeys {
		fmt.Fprintf(w, "previous key:    %s (fingerprint %s) from %s\n", p.PublicKey, p.Fingerprint, p.SecretKeyFile)
	}
	fmt.Fprintf(w, "client policy:   %s\n", c.ClientPolicy)
	if k.authPath != "" {
		fmt.Fprintf(w, "authorized keys: %s from %s\n", plural(len(c.Authorized), "key", "keys"), c.AuthorizedFile)
		for _, a := range c.Authorized {
			name := a.Name
			if name == "" {
				name = "(no name)"
			}
			fmt.Fprintf(w, "  %s %s %s\n", a.Fingerprint, a.PublicKey, name)
		}
	}
	fmt.Fprintf(w, "freshness:       %s (max clock skew %s)\n", c.Freshness, c.MaxClockSkew)
	fmt.Fprintf(w, "budget:          %d key agreements per second for new sessions\n", c.Budget)
	fmt.Fprintf(w, "peer cache:      %d short-term keys\n", c.PeerCache)
	fmt.Fprintf(w, "reply cache:     %d replies, %d bytes\n", c.ReplyCache, c.ReplyBytes)
	fmt.Fprintf(w, "epoch keys:      %s\n", c.Epochs)
	fmt.Fprintf(w, "replay store:    %s\n", c.ReplayStore)
	fmt.Fprintf(w, "listen:          %s\n", orNone(c.Listen))
	fmt.Fprintf(w, "dial:            %s\n", orNone(c.Dial))
	fmt.Fprintf(w, "tls:             %s\n", c.TLS)
	return nil
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// reasonHelp says what each rejection reason means for an operator.
var reasonHelp = map[secsock.Reason]string{
	secsock.ReasonMalformed:        "wrong length or layout: not a secsock client, or a damaged message",
	secsock.ReasonUnknownVersion:   "protocol version unknown here (answered with an unsupported hint)",
	secsock.ReasonUnknownKind:      "not a request: a stray reply or a non-secsock peer",
	secsock.ReasonUnsupported:      "cipher suite not supported here",
	secsock.ReasonWeakKey:          "small-order key: an attack or a broken client",
	secsock.ReasonForged:           "could not open: the client has the wrong server key, or the message was forged or corrupted",
	secsock.ReasonBadVouch:         "the client's identity proof did not verify: refused",
	secsock.ReasonNotAuthorized:    "not in the authorized keys: refused; add its .pub line to authorize it",
	secsock.ReasonStale:            "timestamp outside the freshness window: check the clocks",
	secsock.ReasonReplayed:         "replayed request: refused",
	secsock.ReasonRetry:            "a retry of a request in progress or answered: normal under loss",
	secsock.ReasonBusy:             "the budget for new sessions is spent: a flood, or more new clients per second than the budget",
	secsock.ReasonInDoubt:          "may have been handled before and cannot tell: refused",
	secsock.ReasonStoreUnavailable: "the shared replay store (--replay-store) did not answer in time: refused; check Redis",
	secsock.ReasonUnknownEpoch:     "sealed with an epoch key this server does not accept: refused (the client falls back or fails)",
	secsock.ReasonNotSecsock:       "not a secsock message: a plain mangos/nanomsg client; dropped unanswered (see --permissive for a rollout)",
	secsock.ReasonOversize:         "the body is over --max-size: refused TOO_LARGE",
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
