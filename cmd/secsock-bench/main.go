// Command secsock-bench measures secsock side by side with what its users
// would otherwise run: plain mangos REQ/REP, and mangos over the tls+tcp
// transport (TLS 1.3 with an in-memory certificate). All variants run in
// the same process and run, interleaved within each repetition so that
// machine noise hits them alike. It prints Markdown tables (medians of the
// repetitions with their min-max spread, and per-repetition ratios) and
// can write every sample as JSON.
//
//	go run ./cmd/secsock-bench                 # full run, a few minutes
//	go run ./cmd/secsock-bench -quick          # smoke test, a few seconds
//	go run ./cmd/secsock-bench -json out.json -md out.md
//
// Only loopback is used: tcp on 127.0.0.1 port 0, ipc under a temporary
// directory, and inproc.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/secsock/secsock"
	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/req"
	_ "go.nanomsg.org/mangos/v3/transport/inproc"
	_ "go.nanomsg.org/mangos/v3/transport/ipc"
	_ "go.nanomsg.org/mangos/v3/transport/tcp"
	_ "go.nanomsg.org/mangos/v3/transport/tlstcp"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "secsock-bench:", err)
		os.Exit(1)
	}
}

// variant is one way of running REQ/REP.
type variant struct {
	Name    string
	curve   bool
	cipher  string
	vouched bool // client with a long-term key (fresh-socket measure only)
	tls     bool // only over tcp
	epochs  bool // server with an epoch seed, client pings first (forward secrecy)
	hybrid  bool // and the hybrid mode (ML-KEM-768): the client's key-fetch ping replaces the first ping
}

var allVariants = []variant{
	{Name: "plain"},
	{Name: "secsock", curve: true, cipher: secsock.CipherBox},
	{Name: "secsock-aesgcm", curve: true, cipher: secsock.CipherAESGCM},
	{Name: "secsock-vouched", curve: true, cipher: secsock.CipherBox, vouched: true},
	{Name: "secsock-fs", curve: true, cipher: secsock.CipherBox, epochs: true},
	{Name: "secsock-pq", curve: true, cipher: secsock.CipherBox, epochs: true, hybrid: true},
	{Name: "tls+tcp", tls: true},
}

// benchSeed is the epoch seed of the secsock-fs servers.
var benchSeed = func() *secsock.EpochSeed {
	s, err := secsock.NewEpochSeed(0)
	if err != nil {
		panic(err)
	}
	return s
}()

// options of one run.
type options struct {
	reps       int
	dur        time.Duration
	transports []string
	payloads   []int
	variants   []string
	modes      map[string]bool
	contexts   int
	fresh      int
	jsonFile   string
	mdFile     string
	cpuProfile string
	memProfile string
	quiet      bool
	storeRate  float64 // mode store: the fixed rate, requests per second
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("secsock-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	reps := fs.Int("reps", 5, "repetitions (medians are over these)")
	dur := fs.Duration("d", 250*time.Millisecond, "duration of each throughput and latency cell")
	transports := fs.String("transports", "inproc,ipc,tcp", "transports, comma separated")
	payloads := fs.String("payloads", "64,1K,64K,1M", "payload sizes (suffix K or M for KiB, MiB)")
	variants := fs.String("variants", "plain,secsock,secsock-aesgcm,secsock-vouched,secsock-fs,secsock-pq,tls+tcp", "variants (tls+tcp runs over tcp only; secsock-vouched in the fresh-socket measure only; secsock-fs: epoch keys, the client pings first; secsock-pq: epoch keys and the hybrid mode, ML-KEM-768)")
	modes := fs.String("modes", "tput,lat,alloc,fresh", "measures: tput (16-context throughput), lat (sequential latency), alloc (allocations per round trip), fresh (fresh socket to first reply), pipe (PUSH/PULL messages per second and bytes added; not in the default), store (the Redis replay store against the per-instance default, 64 B over tcp, with redis-server from PATH; run alone), pubsub (sealed against plain PUB/SUB, 1 and 8 subscribers, messages/s and bytes added; run alone)")
	fs.Float64Var(&o.storeRate, "store-rate", 2000, "mode store: the fixed rate below full load, requests per second")
	fs.IntVar(&o.contexts, "contexts", 16, "concurrent REQ contexts (and REP contexts) for throughput")
	fs.IntVar(&o.fresh, "fresh", 30, "fresh sockets per variant, transport and repetition")
	fs.StringVar(&o.jsonFile, "json", "", "write all samples and summaries as JSON to this file")
	fs.StringVar(&o.mdFile, "md", "", "also write the Markdown tables to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile at the end")
	quick := fs.Bool("quick", false, "small run for smoke tests (2 reps, 40ms cells, inproc and tcp, 64 B and 64 KiB)")
	fs.BoolVar(&o.quiet, "q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["reps"] {
			*reps = 2
		}
		if !set["d"] {
			*dur = 40 * time.Millisecond
		}
		if !set["transports"] {
			*transports = "inproc,tcp"
		}
		if !set["payloads"] {
			*payloads = "64,64K"
		}
		if !set["fresh"] {
			o.fresh = 5
		}
	}
	o.reps, o.dur = max(*reps, 1), *dur
	o.transports = splitList(*transports)
	for _, t := range o.transports {
		if t != "inproc" && t != "ipc" && t != "tcp" {
			return nil, fmt.Errorf("unknown transport %q", t)
		}
	}
	for _, p := range splitList(*payloads) {
		n, err := parseSize(p)
		if err != nil {
			return nil, err
		}
		o.payloads = append(o.payloads, n)
	}
	o.variants = splitList(*variants)
	for _, v := range o.variants {
		if findVariant(v) == nil {
			return nil, fmt.Errorf("unknown variant %q", v)
		}
	}
	o.modes = map[string]bool{}
	for _, m := range splitList(*modes) {
		switch m {
		case "tput", "lat", "alloc", "fresh", "pipe", "store", "pubsub":
			o.modes[m] = true
		default:
			return nil, fmt.Errorf("unknown mode %q", m)
		}
	}
	if o.contexts < 1 {
		o.contexts = 1
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseSize(s string) (int, error) {
	mul := 1
	switch {
	case strings.HasSuffix(s, "K"):
		mul, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mul, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad payload size %q", s)
	}
	return n * mul, nil
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func findVariant(name string) *variant {
	for i := range allVariants {
		if allVariants[i].Name == name {
			return &allVariants[i]
		}
	}
	return nil
}

// keys shared by every fixture of a run.
type keys struct {
	server, client secsock.SecretKey
	tlsServer      *tls.Config
	tlsClient      *tls.Config
}

func newKeys() (*keys, error) {
	var k keys
	var err error
	if k.server, err = secsock.GenerateKey(); err != nil {
		return nil, err
	}
	if k.client, err = secsock.GenerateKey(); err != nil {
		return nil, err
	}
	k.tlsServer, k.tlsClient, err = selfSignedTLS()
	return &k, err
}

// selfSignedTLS makes an in-memory ECDSA P-256 certificate for 127.0.0.1
// and the TLS 1.3 configurations that serve and trust it.
func selfSignedTLS() (server, client *tls.Config, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "secsock-bench"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: cert}},
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	return server, client, nil
}

const maxRecv = 4 << 20 // room for 1 MiB plus sealing overhead

// fixture is one long-lived REP server (with one echo goroutine per
// context) and one REQ client with its contexts, for a variant and a
// transport.
type fixture struct {
	v         variant
	transport string
	addr      string
	keys      *keys
	rep       mangos.Socket
	req       mangos.Socket
	ctxs      []mangos.Context
	wg        sync.WaitGroup
}

var inprocSeq atomic.Int64

func newFixture(v variant, transport, dir string, k *keys, contexts int) (*fixture, error) {
	f := &fixture{v: v, transport: transport, keys: k}
	var err error
	if f.rep, err = f.newSocket(true); err != nil {
		return nil, err
	}
	addr := ""
	switch transport {
	case "inproc":
		addr = fmt.Sprintf("inproc://secsock-bench-%d", inprocSeq.Add(1))
	case "ipc":
		addr = "ipc://" + filepath.Join(dir, fmt.Sprintf("s%d.sock", inprocSeq.Add(1)))
	case "tcp":
		addr = "tcp://127.0.0.1:0"
		if v.tls {
			addr = "tls+tcp://127.0.0.1:0"
		}
	}
	opts := map[string]any{}
	if v.tls {
		opts[mangos.OptionTLSConfig] = k.tlsServer
	}
	l, err := f.rep.NewListener(addr, opts)
	if err != nil {
		f.rep.Close()
		return nil, err
	}
	if err := l.Listen(); err != nil {
		f.rep.Close()
		return nil, err
	}
	f.addr = l.Address()
	for i := 0; i < contexts; i++ {
		c, err := f.rep.OpenContext()
		if err != nil {
			f.rep.Close()
			return nil, err
		}
		f.wg.Add(1)
		go f.echo(c)
	}
	if f.req, err = f.dial(); err != nil {
		f.rep.Close()
		return nil, err
	}
	for i := 0; i < contexts; i++ {
		c, err := f.req.OpenContext()
		if err != nil {
			f.close()
			return nil, err
		}
		c.SetOption(mangos.OptionRecvDeadline, 20*time.Second)
		c.SetOption(mangos.OptionSendDeadline, 20*time.Second)
		f.ctxs = append(f.ctxs, c)
	}
	return f, nil
}

// newSocket makes a REP (server) or REQ socket of f's variant, configured
// but neither listening nor dialed.
func (f *fixture) newSocket(server bool) (mangos.Socket, error) {
	var s mangos.Socket
	var err error
	switch {
	case f.v.curve && server:
		var ss *secsock.Socket
		if ss, err = secsock.NewRepSocket(); err == nil {
			s = ss
			err = setAll(s, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, f.keys.server)
			if err == nil && f.v.epochs {
				err = s.SetOption(secsock.OptionEpochSeed, benchSeed)
			}
			if err == nil && f.v.hybrid {
				err = s.SetOption(secsock.OptionHybrid, secsock.HybridOn)
			}
		}
	case f.v.curve:
		var ss *secsock.Socket
		if ss, err = secsock.NewReqSocket(); err == nil {
			s = ss
			err = setAll(s, secsock.OptionMechanism, secsock.MechanismCurve,
				secsock.OptionServerKey, f.keys.server.Public(), secsock.OptionCipher, f.v.cipher)
			if err == nil && f.v.vouched {
				err = s.SetOption(secsock.OptionSecretKey, f.keys.client)
			}
			if err == nil && f.v.hybrid {
				err = s.SetOption(secsock.OptionHybrid, secsock.HybridOn) // its key-fetch ping is the first ping
			} else if err == nil && f.v.epochs {
				err = s.SetOption(secsock.OptionAuthenticateFirst, true)
			}
		}
	case server:
		s, err = rep.NewSocket()
	default:
		s, err = req.NewSocket()
	}
	if err != nil {
		if s != nil {
			s.Close()
		}
		return nil, err
	}
	if err := setAll(s, mangos.OptionMaxRecvSize, maxRecv,
		mangos.OptionRecvDeadline, 20*time.Second, mangos.OptionSendDeadline, 20*time.Second); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func setAll(s mangos.Socket, kv ...any) error {
	for i := 0; i < len(kv); i += 2 {
		if err := s.SetOption(kv[i].(string), kv[i+1]); err != nil {
			return fmt.Errorf("SetOption(%s): %w", kv[i], err)
		}
	}
	return nil
}

// dial makes a REQ socket of f's variant connected to its server.
func (f *fixture) dial() (mangos.Socket, error) {
	s, err := f.newSocket(false)
	if err != nil {
		return nil, err
	}
	if err := f.dialSocket(s); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (f *fixture) dialSocket(s mangos.Socket) error {
	var opts map[string]any
	if f.v.tls {
		opts = map[string]any{mangos.OptionTLSConfig: f.keys.tlsClient}
	}
	return s.DialOptions(f.addr, opts)
}

func (f *fixture) echo(c mangos.Context) {
	defer f.wg.Done()
	for {
		b, err := c.Recv()
		if err != nil {
			if errors.Is(err, mangos.ErrClosed) {
				return
			}
			continue
		}
		if err := c.Send(b); errors.Is(err, mangos.ErrClosed) {
			return
		}
	}
}

func (f *fixture) close() {
	if f.req != nil {
		f.req.Close()
	}
	f.rep.Close()
	f.wg.Wait()
}

func roundTrip(c mangos.Context, payload []byte) error {
	if err := c.Send(payload); err != nil {
		return err
	}
	b, err := c.Recv()
	if err != nil {
		return err
	}
	if len(b) != len(payload) {
		return fmt.Errorf("reply of %d bytes to a request of %d", len(b), len(payload))
	}
	return nil
}

// tolerated are errors a loaded machine can cause without a bug: a
// request whose sealing goroutine was descheduled while the other
// contexts advanced the counter past the server's replay window is
// refused as replayed (or stale). They are counted, not fatal.
func tolerated(err error) bool {
	return errors.Is(err, secsock.ErrReplayed) || errors.Is(err, secsock.ErrStale)
}

// failures counts tolerated errors over the whole run.
var failures atomic.Int64

// throughput runs round trips on every context concurrently for d and
// returns successful round trips per second.
func (f *fixture) throughput(payload []byte, d time.Duration) (float64, error) {
	var count atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for _, c := range f.ctxs {
		wg.Add(1)
		go func(c mangos.Context) {
			defer wg.Done()
			for n := 0; n < 50_000_000 && time.Now().Before(deadline); n++ {
				if err := roundTrip(c, payload); err != nil {
					if tolerated(err) && failures.Add(1) < 1000 {
						continue
					}
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
					return
				}
				count.Add(1)
			}
		}(c)
	}
	wg.Wait()
	el := time.Since(start)
	return float64(count.Load()) / el.Seconds(), firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// latency runs sequential round trips on one context for d and returns
// the p50 and p99 in microseconds.
func (f *fixture) latency(payload []byte, d time.Duration) (p50, p99 float64, err error) {
	c := f.ctxs[0]
	samples := make([]float64, 0, 4096)
	deadline := time.Now().Add(d)
	for len(samples) < 1_000_000 && (len(samples) < 5 || time.Now().Before(deadline)) {
		t0 := time.Now()
		if err := roundTrip(c, payload); err != nil {
			return 0, 0, err
		}
		samples = append(samples, float64(time.Since(t0).Nanoseconds())/1e3)
	}
	slices.Sort(samples)
	return quantile(samples, 0.50), quantile(samples, 0.99), nil
}

// allocs runs n sequential round trips and returns heap allocations and
// bytes per round trip, both sides together (they share the process).
func (f *fixture) allocs(payload []byte, n int) (allocs, bytes float64, err error) {
	c := f.ctxs[0]
	for i := 0; i < 3; i++ { // warm pools
		if err := roundTrip(c, payload); err != nil {
			return 0, 0, err
		}
	}
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	for i := 0; i < n; i++ {
		if err := roundTrip(c, payload); err != nil {
			return 0, 0, err
		}
	}
	runtime.ReadMemStats(&b)
	return float64(b.Mallocs-a.Mallocs) / float64(n), float64(b.TotalAlloc-a.TotalAlloc) / float64(n), nil
}

// fresh measures, for n new REQ sockets, the time from Dial to the first
// reply (the socket is made and configured before the clock starts), and
// returns the median in microseconds.
func (f *fixture) fresh(payload []byte, n int) (float64, error) {
	samples := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		s, err := f.newSocket(false)
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		err = f.dialSocket(s)
		if err == nil {
			if err = s.Send(payload); err == nil {
				_, err = s.Recv()
			}
		}
		el := time.Since(t0)
		s.Close()
		if err != nil {
			return 0, err
		}
		samples = append(samples, float64(el.Nanoseconds())/1e3)
	}
	slices.Sort(samples)
	return quantile(samples, 0.5), nil
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[min(i, len(sorted)-1)]
}

// Sample series: one value per repetition.
type seriesKey struct {
	Transport string `json:"transport"`
	Payload   int    `json:"payload"`
	Variant   string `json:"variant"`
	Metric    string `json:"metric"`
}

type summary struct {
	seriesKey
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Samples []float64 `json:"samples"`
}

type ratio struct {
	Transport string    `json:"transport"`
	Payload   int       `json:"payload"`
	Metric    string    `json:"metric"`
	Num       string    `json:"num"`
	Den       string    `json:"den"`
	Median    float64   `json:"median"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	Samples   []float64 `json:"samples"`
}

type machine struct {
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Time       string `json:"time"`
}

type report struct {
	Machine   machine   `json:"machine"`
	Reps      int       `json:"reps"`
	Cell      string    `json:"cell_duration"`
	Contexts  int       `json:"contexts"`
	Fresh     int       `json:"fresh_sockets_per_rep"`
	Failures  int64     `json:"tolerated_failures"` // ErrReplayed/ErrStale under load, see tolerated
	Summaries []summary `json:"summaries"`
	Ratios    []ratio   `json:"ratios"`
}

type results struct {
	mu sync.Mutex
	m  map[seriesKey][]float64
}

func (r *results) add(t string, p int, v, metric string, x float64) {
	r.mu.Lock()
	r.m[seriesKey{t, p, v, metric}] = append(r.m[seriesKey{t, p, v, metric}], x)
	r.mu.Unlock()
}

func (r *results) get(t string, p int, v, metric string) []float64 {
	return r.m[seriesKey{t, p, v, metric}]
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		pf, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	progress := func(format string, a ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, format, a...)
		}
	}
	k, err := newKeys()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "secsock-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.modes["pubsub"] {
		var md strings.Builder
		if err := runPubSubMeasure(o, dir, &md, progress); err != nil {
			return err
		}
		fmt.Fprint(stdout, md.String())
		if o.mdFile != "" {
			return os.WriteFile(o.mdFile, []byte(md.String()), 0o644)
		}
		return nil
	}
	if o.modes["store"] {
		var md strings.Builder
		if err := runStoreMeasure(o, k, dir, &md, progress); err != nil {
			return err
		}
		fmt.Fprint(stdout, md.String())
		if o.mdFile != "" {
			return os.WriteFile(o.mdFile, []byte(md.String()), 0o644)
		}
		return nil
	}

	// One fixture per transport and variant, for the whole run.
	type fkey struct{ t, v string }
	fixtures := map[fkey]*fixture{}
	defer func() {
		for _, f := range fixtures {
			f.close()
		}
	}()
	variantsFor := func(t string, fresh bool) []variant {
		var vs []variant
		for _, name := range o.variants {
			v := *findVariant(name)
			if v.tls && t != "tcp" || v.vouched && !fresh {
				continue
			}
			vs = append(vs, v)
		}
		return vs
	}
	for _, t := range o.transports {
		for _, v := range variantsFor(t, true) {
			f, err := newFixture(v, t, dir, k, o.contexts)
			if err != nil {
				return fmt.Errorf("%s over %s: %w", v.Name, t, err)
			}
			fixtures[fkey{t, v.Name}] = f
		}
	}
	pipes := map[pipeKey]*pipeFixture{}
	defer func() {
		for _, f := range pipes {
			f.close()
		}
	}()
	pipeVariants := func() []variant {
		var vs []variant
		for _, name := range o.variants {
			if v := *findVariant(name); pipeVariant(v) {
				vs = append(vs, v)
			}
		}
		return vs
	}
	if o.modes["pipe"] {
		for _, t := range o.transports {
			for _, v := range pipeVariants() {
				f, err := newPipeFixture(v, t, dir, k)
				if err != nil {
					return fmt.Errorf("PUSH/PULL %s over %s: %w", v.Name, t, err)
				}
				pipes[pipeKey{t, v.Name}] = f
			}
		}
	}
	payloads := map[int][]byte{}
	for _, p := range o.payloads {
		b := make([]byte, p)
		rand.Read(b)
		payloads[p] = b
	}
	// Warm up: every fixture, every payload (sessions, keys, pools).
	for _, f := range fixtures {
		for _, p := range o.payloads {
			for _, c := range f.ctxs {
				if err := roundTrip(c, payloads[p]); err != nil {
					return fmt.Errorf("warm-up %s over %s: %w", f.v.Name, f.transport, err)
				}
			}
		}
	}

	res := &results{m: map[seriesKey][]float64{}}
	small := payloads[64]
	if small == nil {
		small = make([]byte, 64)
	}
	started := time.Now()
	for r := 0; r < o.reps; r++ {
		progress("rep %d/%d (%.0fs)\n", r+1, o.reps, time.Since(started).Seconds())
		for _, t := range o.transports {
			for _, p := range o.payloads {
				vs := variantsFor(t, false)
				rotate(vs, r)
				for _, v := range vs {
					f := fixtures[fkey{t, v.Name}]
					if o.modes["tput"] {
						x, err := f.throughput(payloads[p], o.dur)
						if err != nil {
							return fmt.Errorf("throughput %s %s %d: %w", v.Name, t, p, err)
						}
						res.add(t, p, v.Name, "tput_rps", x)
						res.add(t, p, v.Name, "tput_MBps", x*float64(p)/1e6)
					}
					if o.modes["lat"] {
						p50, p99, err := f.latency(payloads[p], o.dur)
						if err != nil {
							return fmt.Errorf("latency %s %s %d: %w", v.Name, t, p, err)
						}
						res.add(t, p, v.Name, "lat_p50_us", p50)
						res.add(t, p, v.Name, "lat_p99_us", p99)
					}
					if o.modes["alloc"] {
						n := 200
						if p >= 1<<20 {
							n = 20
						} else if p >= 64<<10 {
							n = 50
						}
						a, b, err := f.allocs(payloads[p], n)
						if err != nil {
							return fmt.Errorf("allocs %s %s %d: %w", v.Name, t, p, err)
						}
						res.add(t, p, v.Name, "allocs_rt", a)
						res.add(t, p, v.Name, "bytes_rt", b)
					}
				}
			}
			if o.modes["pipe"] {
				if err := measurePipes(res, o, t, r, pipeVariants(), pipes, payloads); err != nil {
					return err
				}
			}
			if o.modes["fresh"] {
				vs := variantsFor(t, true)
				rotate(vs, r)
				for _, v := range vs {
					x, err := fixtures[fkey{t, v.Name}].fresh(small, o.fresh)
					if err != nil {
						return fmt.Errorf("fresh %s %s: %w", v.Name, t, err)
					}
					res.add(t, len(small), v.Name, "fresh_p50_us", x)
				}
			}
		}
	}
	progress("done in %.0fs\n", time.Since(started).Seconds())

	rep := buildReport(o, res)
	rep.Failures = failures.Load()
	var md strings.Builder
	writeMarkdown(&md, o, rep, res)
	io.WriteString(stdout, md.String())
	if o.mdFile != "" {
		if err := os.WriteFile(o.mdFile, []byte(md.String()), 0o644); err != nil {
			return err
		}
	}
	if o.jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.memProfile != "" {
		mf, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		defer mf.Close()
		if err := pprof.Lookup("allocs").WriteTo(mf, 0); err != nil {
			return err
		}
	}
	return nil
}

// rotate shifts vs left by r so that no variant always runs first.
func rotate(vs []variant, r int) {
	if len(vs) == 0 {
		return
	}
	r %= len(vs)
	slices.Reverse(vs[:r])
	slices.Reverse(vs[r:])
	slices.Reverse(vs)
}

func summarize(k seriesKey, xs []float64) summary {
	s := summary{seriesKey: k, Samples: xs}
	if len(xs) == 0 {
		return s
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	n := len(sorted)
	if n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return s
}

// ratioOf pairs the repetitions of two variants (they ran interleaved in
// the same repetition) and summarizes num/den.
func ratioOf(res *results, t string, p int, metric, num, den string) (ratio, bool) {
	a, b := res.get(t, p, num, metric), res.get(t, p, den, metric)
	if len(a) == 0 || len(a) != len(b) {
		return ratio{}, false
	}
	xs := make([]float64, len(a))
	for i := range a {
		if b[i] == 0 {
			return ratio{}, false
		}
		xs[i] = a[i] / b[i]
	}
	s := summarize(seriesKey{}, xs)
	return ratio{Transport: t, Payload: p, Metric: metric, Num: num, Den: den,
		Median: s.Median, Min: s.Min, Max: s.Max, Samples: xs}, true
}

var ratioPairs = [][2]string{
	{"secsock", "plain"}, {"secsock-aesgcm", "plain"}, {"secsock-vouched", "plain"},
	{"secsock", "tls+tcp"}, {"secsock-aesgcm", "tls+tcp"}, {"secsock-vouched", "tls+tcp"},
	{"secsock-fs", "secsock"}, {"secsock-fs", "plain"}, {"secsock-fs", "tls+tcp"},
	{"secsock-pq", "secsock-fs"}, {"secsock-pq", "secsock"}, {"secsock-pq", "tls+tcp"},
}

func buildReport(o *options, res *results) report {
	rep := report{
		Machine: machine{CPU: cpuModel(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
			Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, Time: time.Now().UTC().Format(time.RFC3339)},
		Reps: o.reps, Cell: o.dur.String(), Contexts: o.contexts, Fresh: o.fresh,
	}
	keys := make([]seriesKey, 0, len(res.m))
	for k := range res.m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b seriesKey) int {
		return strings.Compare(fmt.Sprintf("%s|%09d|%s|%s", a.Transport, a.Payload, a.Metric, a.Variant),
			fmt.Sprintf("%s|%09d|%s|%s", b.Transport, b.Payload, b.Metric, b.Variant))
	})
	type cell struct {
		t, metric string
		p         int
	}
	seen := map[cell]bool{}
	for _, k := range keys {
		rep.Summaries = append(rep.Summaries, summarize(k, res.m[k]))
		c := cell{k.Transport, k.Metric, k.Payload}
		if seen[c] {
			continue
		}
		seen[c] = true
		for _, pr := range ratioPairs {
			if r, ok := ratioOf(res, c.t, c.p, c.metric, pr[0], pr[1]); ok {
				rep.Ratios = append(rep.Ratios, r)
			}
		}
	}
	return rep
}

// Formatting.

func fmtNum(x float64) string {
	switch {
	case x >= 100:
		return commas(int64(x + 0.5))
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	default:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// cellValue formats a series as "median (min-max)".
func cellValue(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	s := summarize(seriesKey{}, xs)
	if len(xs) == 1 {
		return fmtNum(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

func ratioValue(res *results, t string, p int, metric, num, den string) string {
	r, ok := ratioOf(res, t, p, metric, num, den)
	if !ok {
		return "–"
	}
	if len(r.Samples) == 1 {
		return fmt.Sprintf("**%.2f**", r.Median)
	}
	return fmt.Sprintf("**%.2f** (%.2f–%.2f)", r.Median, r.Min, r.Max)
}

// present lists the variants (in the order of the flag) that have data for
// metric.
func present(o *options, res *results, metric string) []string {
	var out []string
	for _, v := range o.variants {
		for k := range res.m {
			if k.Variant == v && k.Metric == metric {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

func has(vs []string, v string) bool { return slices.Contains(vs, v) }

func writeMarkdown(w io.Writer, o *options, rep report, res *results) {
	m := rep.Machine
	fmt.Fprintf(w, "secsock-bench: %s, %d CPUs (GOMAXPROCS %d), %s %s/%s; %d repetitions, %s per cell, variants interleaved. Cells: median (min–max) over repetitions; ratios are per repetition (same run), median (min–max).\n\n",
		m.CPU, m.NumCPU, m.GOMAXPROCS, m.Go, m.OS, m.Arch, o.reps, o.dur)

	ratioCols := func(vs []string) [][2]string {
		var out [][2]string
		for _, pr := range ratioPairs {
			if has(vs, pr[0]) && has(vs, pr[1]) {
				out = append(out, pr)
			}
		}
		return out
	}
	short := func(v string) string {
		return strings.NewReplacer("secsock-aesgcm", "aesgcm", "secsock-vouched", "vouched", "secsock-fs", "fs", "secsock-pq", "pq", "tls+tcp", "tls").Replace(v)
	}
	table := func(title, metric string, payloadCol bool) {
		vs := present(o, res, metric)
		if len(vs) == 0 {
			return
		}
		rc := ratioCols(vs)
		fmt.Fprintf(w, "### %s\n\n| transport |", title)
		if payloadCol {
			fmt.Fprint(w, " payload |")
		}
		for _, v := range vs {
			fmt.Fprintf(w, " %s |", v)
		}
		for _, pr := range rc {
			fmt.Fprintf(w, " %s/%s |", short(pr[0]), short(pr[1]))
		}
		fmt.Fprint(w, "\n|---|")
		if payloadCol {
			fmt.Fprint(w, "---:|")
		}
		fmt.Fprint(w, strings.Repeat("---:|", len(vs)+len(rc)), "\n")
		for _, t := range o.transports {
			ps := o.payloads
			if !payloadCol {
				ps = []int{64}
			}
			for _, p := range ps {
				empty := true
				for _, v := range vs {
					if len(res.get(t, p, v, metric)) > 0 {
						empty = false
					}
				}
				if empty {
					continue
				}
				fmt.Fprintf(w, "| %s |", t)
				if payloadCol {
					fmt.Fprintf(w, " %s |", sizeName(p))
				}
				for _, v := range vs {
					fmt.Fprintf(w, " %s |", cellValue(res.get(t, p, v, metric)))
				}
				for _, pr := range rc {
					fmt.Fprintf(w, " %s |", ratioValue(res, t, p, metric, pr[0], pr[1]))
				}
				fmt.Fprintln(w)
			}
		}
		fmt.Fprintln(w)
	}
	if rep.Failures > 0 {
		fmt.Fprintf(w, "Note: %d round trips failed with ErrReplayed or ErrStale (a request sealed, then delayed past the server's replay window by scheduling) and were not counted.\n\n", rep.Failures)
	}
	table(fmt.Sprintf("Throughput: round trips/s, %d REQ contexts against %d REP contexts (higher is better)", o.contexts, o.contexts), "tput_rps", true)
	table("Throughput in MB/s of payload each way (same runs)", "tput_MBps", true)
	table("Sequential round-trip latency p50, µs (lower is better)", "lat_p50_us", true)
	table("Sequential round-trip latency p99, µs", "lat_p99_us", true)
	table("Heap allocations per round trip (client and server together, one process)", "allocs_rt", true)
	table("Heap bytes per round trip (client and server together)", "bytes_rt", true)
	table("PUSH/PULL: messages/s, one pusher to one PULL worker (higher is better)", "pipe_mps", true)
	table("PUSH/PULL: MB/s of payload (same runs)", "pipe_MBps", true)
	table("PUSH/PULL: bytes added per message on the wire (sealing; mangos PUSH/PULL adds no header)", "pipe_over_B", true)
	table(fmt.Sprintf("Fresh socket to first reply, 64 B: µs from Dial to the reply, median of %d new sockets per repetition", o.fresh), "fresh_p50_us", false)
}
