package netns

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Ports inside the lab. The proxy (10.99.0.2) listens on one port per
// link and forwards to the real address, so every link crosses it.
const (
	frontPort = 5555 // device, for clients
	backPort  = 5556 // device, for workers
	bindPort  = 5557 // each worker also listens here (the attacker's target)
	redisPort = 6379
)

// Client timing: each request's deadline and mangos's REQ resend time.
const (
	deadline  = 8 * time.Second
	retryTime = time.Second
)

// trafficSummary is faultclient traffic's JSON line.
type trafficSummary struct {
	Sent         int            `json:"sent"`
	Outcomes     map[string]int `json:"outcomes"`
	WrongReplies int            `json:"wrong_replies"`
	MaxMS        int64          `json:"max_ms"`
	Untyped      []string       `json:"untyped"`
	AppRetries   int            `json:"app_retries"`
}

// replaySummary is faultclient replay's JSON line.
type replaySummary struct {
	Streams, Messages, Unique, Sent, Answers int
}

// suite holds the lab and the running processes of one run.
type suite struct {
	*lab
	bin      map[string]string
	proxy    *proxyCtl
	captures string
	workers  [3]*proc
	device   *proc
	redis    *proc
	gen      int // incarnation counter for process names
	links    []string
	capture  string // the capture toxic in place on the client link
}

func TestFaultsAcrossNamespaces(t *testing.T) {
	if why := canNetns(); why != "" {
		if os.Getenv("SECSOCK_REQUIRE_NETNS") == "1" {
			t.Fatalf("network namespaces unavailable: %s", why)
		}
		t.Skipf("fault suite skipped: %s", why)
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SECSOCK_REQUIRE_NETNS") == "1" {
			t.Fatal("redis-server not installed")
		}
		t.Skip("fault suite skipped: needs redis-server")
	}
	s := &suite{lab: newLab(t), bin: build(t), captures: t.TempDir()}
	s.bin["redis"] = redisBin
	s.setup()
	var rows []row

	// 1. Jitter and resets on every link, shared store.
	s.jitter(true)
	stopResets := s.resets()
	rows = append(rows, s.traffic("jitter+resets (shared store)", "j", 12*time.Second, nil, 0))
	s.checkAnsweredOnce(rows[len(rows)-1])
	// The same with an application that sends a new request for the body
	// after ErrStoreUnavailable: unsafe when REQ resends are on (a resent
	// copy may be refused by one worker after another delivered it), so
	// its double deliveries are counted, not asserted.
	rows = append(rows, s.traffic("  same, app retries store-unavailable", "a", 8*time.Second, nil, 3))
	nResets := stopResets()

	// 2. Process faults and a Redis partition, shared store.
	events := []event{
		{3 * time.Second, "kill -9 worker 1", func() { s.workers[0].kill() }},
		{4 * time.Second, "restart worker 1", func() { s.startWorker(0, true) }},
		{7 * time.Second, "kill -9 device", func() { s.device.kill() }},
		{8 * time.Second, "restart device", func() { s.startDevice() }},
		{11 * time.Second, "partition Redis (timeout toxic)", func() { s.partitionRedis(true) }},
		{16 * time.Second, "heal Redis partition", func() { s.partitionRedis(false) }},
		{19 * time.Second, "restart Redis (SIGTERM, AOF kept)", func() { s.redis.stop(); s.startRedis() }},
	}
	rows = append(rows, s.traffic("kills, restarts, partition (shared store)", "f", 26*time.Second, events, 0))
	s.checkNoneTwice(rows[len(rows)-1])

	// 3. Every captured request to every worker.
	rows = append(rows, s.replay("replay to every worker (shared store)", "client-*.bin", "j", "a", "f"))
	if r := rows[len(rows)-1]; r.delivered != 0 {
		t.Errorf("replay delivered %d requests with the shared store; want 0", r.delivered)
	}

	// 4. The same without the shared store: what per-instance mode allows.
	for i := range s.workers {
		s.workers[i].stop()
		s.startWorker(i, false)
	}
	s.setCapture("pi-client")
	stopResets = s.resets()
	events = []event{
		{3 * time.Second, "kill -9 worker 1", func() { s.workers[0].kill() }},
		{4 * time.Second, "restart worker 1", func() { s.startWorker(0, false) }},
	}
	rows = append(rows, s.traffic("jitter+resets+kill (per instance)", "p", 12*time.Second, events, 0))
	nResets += stopResets()
	rows = append(rows, s.replay("replay to every worker (per instance)", "pi-client-*.bin", "p"))
	if r := rows[len(rows)-1]; r.delivered == 0 {
		t.Errorf("per-instance replay delivered nothing: the suite's counting cannot see replays")
	}
	printTable(rows, nResets)
	fmt.Println(s.perProcess())
}

// perProcess lists each worker incarnation's deliveries (all phases,
// replays included), as counted from its own output.
func (s *suite) perProcess() string {
	files, _ := filepath.Glob(filepath.Join(s.dir, "w[123]-*.out"))
	sort.Slice(files, func(i, j int) bool { return procSeq(files[i]) < procSeq(files[j]) })
	var parts []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimSuffix(filepath.Base(f), ".out"), strings.Count(string(b), "\n")))
	}
	return "deliveries by worker process (name-start order): " + strings.Join(parts, " ")
}

func procSeq(path string) int {
	var n int
	base := strings.TrimSuffix(filepath.Base(path), ".out")
	if i := strings.LastIndex(base, "-"); i >= 0 {
		fmt.Sscan(base[i+1:], &n)
	}
	return n
}

// build compiles secsock (from the library module) and the suite's own
// faultproxy and faultclient.
func build(t *testing.T) map[string]string {
	dir := t.TempDir()
	bins := map[string]string{}
	for name, spec := range map[string][2]string{
		"secsock":     {"../..", "./cmd/secsock"},
		"faultproxy":  {".", "./cmd/faultproxy"},
		"faultclient": {".", "./cmd/faultclient"},
	} {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out, spec[1])
		cmd.Dir = spec[0]
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v: %s", spec[1], err, b)
		}
		bins[name] = out
	}
	return bins
}

func (s *suite) name(base string) string {
	s.gen++
	return fmt.Sprintf("%s-%d", base, s.gen)
}

func (s *suite) setup() {
	s.t.Helper()
	if _, err := s.run("keygen", "client", "10s", s.bin["secsock"], "keygen", filepath.Join(s.dir, "server")); err != nil {
		s.t.Fatal(err)
	}
	s.proxy = s.startProxy(s.bin["faultproxy"], s.captures)
	px := hosts["proxy"]
	s.link("client-device", px+":7000", hosts["device"], frontPort)
	for i := 1; i <= 3; i++ {
		w := fmt.Sprintf("w%d", i)
		s.link(w+"-device", fmt.Sprintf("%s:%d", px, 7100+i), hosts["device"], backPort)
		s.link(w+"-redis", fmt.Sprintf("%s:%d", px, 7200+i), hosts["redis"], redisPort)
		s.link("attacker-"+w, fmt.Sprintf("%s:%d", px, 7300+i), hosts[w], bindPort)
	}
	s.setCapture("client")
	s.startRedis()
	// The suite made this Redis a moment ago and no worker has used it:
	// marking it new (with no quiet period) is exactly what init is for.
	out, err := s.run(s.name("init"), "w1", "20s", s.bin["secsock"], "replay-store", "init",
		"--replay-store", s.redisURL(0), "--quiet", "0")
	if err != nil {
		s.t.Fatalf("replay-store init: %v %s", err, out)
	}
	s.startDevice()
	for i := range s.workers {
		s.startWorker(i, true)
	}
}

func (s *suite) link(name, listen, host string, port int) {
	s.proxy.do("proxy %s %s %s:%d", name, listen, host, port)
	s.links = append(s.links, name)
}

// setCapture records the client link's client-to-device bytes under a
// new file prefix (one file per connection).
func (s *suite) setCapture(prefix string) {
	if s.capture != "" {
		s.proxy.do("untoxic client-device %s", s.capture)
	}
	s.capture = "capture-" + prefix
	s.proxy.do(`toxic client-device {"name":%q,"type":"capture","stream":"upstream","attributes":{"prefix":%q}}`, s.capture, prefix)
}

func (s *suite) redisURL(worker int) string {
	return fmt.Sprintf("redis://%s:%d/0", hosts["proxy"], 7201+worker)
}

func (s *suite) startRedis() {
	dir := filepath.Join(s.dir, "redis")
	os.MkdirAll(dir, 0o700)
	s.redis = s.start(s.name("redis"), "redis", s.bin["redis"],
		"--bind", hosts["redis"], "--port", fmt.Sprint(redisPort), "--protected-mode", "no",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir)
	s.waitFor(s.redis, "Ready to accept connections", 15*time.Second)
}

func (s *suite) startDevice() {
	s.device = s.start(s.name("device"), "device", s.bin["secsock"], "device",
		"--front-bind", fmt.Sprintf("tcp://%s:%d", hosts["device"], frontPort),
		"--back-bind", fmt.Sprintf("tcp://%s:%d", hosts["device"], backPort))
	s.waitFor(s.device, "forwarding", 10*time.Second)
}

// startWorker starts worker i (0-2): it prints each request it delivers
// (-A, one line) and echoes it; with shared, through the Redis store.
func (s *suite) startWorker(i int, shared bool) {
	w := fmt.Sprintf("w%d", i+1)
	args := []string{"rep", "--key", filepath.Join(s.dir, "server.key"), "--echo", "-A",
		"--connect", fmt.Sprintf("tcp://%s:%d", hosts["proxy"], 7101+i),
		"--bind", fmt.Sprintf("tcp://%s:%d", hosts[w], bindPort)}
	if shared {
		// The Redis link has 40-160 ms of round-trip jitter here, so the
		// store's deadline is 1 s (default 100 ms); a 3 s lease lets a dead
		// owner's claims become IN_DOUBT well inside the client's deadline.
		args = append(args, "--replay-store", s.redisURL(i),
			"--replay-store-deadline", "1", "--replay-store-lease", "3")
	}
	s.workers[i] = s.start(s.name(w), w, s.bin["secsock"], args...)
	s.waitFor(s.workers[i], "dialed", 10*time.Second)
}

// jitter puts 20-80 ms of latency (50 ± 30) and a bandwidth limit of
// 64 KB/s on both directions of every link.
func (s *suite) jitter(on bool) {
	for _, l := range s.links {
		for _, dir := range []string{"upstream", "downstream"} {
			if on {
				s.proxy.do(`toxic %s {"name":"jitter-%s","type":"latency","stream":%q,"attributes":{"latency":50,"jitter":30}}`, l, dir, dir)
				s.proxy.do(`toxic %s {"name":"bandwidth-%s","type":"bandwidth","stream":%q,"attributes":{"rate":64}}`, l, dir, dir)
			} else {
				s.proxy.do("untoxic %s jitter-%s", l, dir)
				s.proxy.do("untoxic %s bandwidth-%s", l, dir)
			}
		}
	}
}

// resets resets one link after another (round robin, every 700 ms, each
// reset_peer toxic in place for 100 ms), until the returned func is
// called; that returns how many resets were applied.
func (s *suite) resets() func() int {
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(700 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- n
				return
			case <-tick.C:
			}
			l := s.links[n%len(s.links)]
			if strings.HasPrefix(l, "attacker-") {
				n++
				continue
			}
			dir := []string{"upstream", "downstream"}[n/len(s.links)%2]
			if s.proxy.try(`toxic %s {"name":"reset","type":"reset_peer","stream":%q,"attributes":{"timeout":0}}`, l, dir) == nil {
				time.Sleep(100 * time.Millisecond)
				s.proxy.try("untoxic %s reset", l)
			}
			n++
		}
	}()
	return func() int { close(stop); return <-done }
}

// partitionRedis cuts (or heals) every worker's link to Redis: the
// timeout toxic drops all data in both directions and closes nothing.
func (s *suite) partitionRedis(on bool) {
	for i := 1; i <= 3; i++ {
		l := fmt.Sprintf("w%d-redis", i)
		for _, dir := range []string{"upstream", "downstream"} {
			if on {
				s.proxy.do(`toxic %s {"name":"partition-%s","type":"timeout","stream":%q,"attributes":{"timeout":0}}`, l, dir, dir)
			} else {
				s.proxy.do("untoxic %s partition-%s", l, dir)
			}
		}
	}
}

// event is a fault injected at a time after traffic starts.
type event struct {
	at   time.Duration
	what string
	do   func()
}

// row is one line of the printed table.
type row struct {
	phase     string
	traffic   *trafficSummary
	replay    *replaySummary
	delivered int // deliveries the workers printed for the phase's requests
	twice     int // request ids delivered more than once
	// twiceAppRetry counts those of twice that the application sent again
	// after ErrStoreUnavailable or ErrBusy (a new request, same body).
	twiceAppRetry int
	events        []string
	lost          int // delivered but not answered (reply lost with its worker)
	perID         map[string]int
	outcomes      map[string]string // "OUTCOME TRIES" by request id
}

// traffic runs the client for dur while events happen, then counts what
// every worker delivered for the phase's requests.
// appRetries is how often the application sends a new request for the
// same body after ErrStoreUnavailable or ErrBusy.
func (s *suite) traffic(phase, prefix string, dur time.Duration, events []event, appRetries int) row {
	s.t.Helper()
	before := s.deliveries(prefix)
	var wg sync.WaitGroup
	var done []string
	var at []time.Time // when each event was done
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, e := range events {
			time.Sleep(time.Until(start.Add(e.at)))
			at = append(at, time.Now())
			e.do()
			done = append(done, fmt.Sprintf("%.1fs %s", time.Since(start).Seconds(), e.what))
		}
	}()
	log := filepath.Join(s.dir, prefix+".log")
	limit := (dur + deadline*5 + 10*time.Second).String()
	out, err := s.run(s.name("client-"+prefix), "client", limit, s.bin["faultclient"], "traffic",
		"--connect", fmt.Sprintf("tcp://%s:7000", hosts["proxy"]),
		"--server-key", filepath.Join(s.dir, "server.pub"),
		"--prefix", prefix, "--conc", "4", "--duration", dur.String(), "--max", "3000",
		"--deadline", deadline.String(), "--retry", retryTime.String(), "--log", log,
		"--app-retries", fmt.Sprint(appRetries))
	wg.Wait()
	if err != nil {
		s.t.Fatalf("%s: %v", phase, err)
	}
	var sum trafficSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		s.t.Fatalf("%s: client printed %q: %v", phase, out, err)
	}
	time.Sleep(500 * time.Millisecond) // last lines of the workers' output
	r := row{phase: phase, traffic: &sum, events: done, perID: map[string]int{}}
	after := s.deliveries(prefix)
	outcomes := readOutcomes(s.t, log)
	r.outcomes = outcomes
	for id, n := range after {
		n -= before[id]
		r.perID[id] = n
		r.delivered += n
		oc, rest, _ := strings.Cut(outcomes[id], " ")
		tries, _, _ := strings.Cut(rest, " ")
		if n > 1 {
			r.twice++
			if tries != "1" {
				r.twiceAppRetry++
			}
			s.t.Logf("%s: %s delivered %d times, outcome %s after %s tries", phase, id, n, oc, tries)
		}
		if n > 0 && oc != "reply" {
			r.lost++
		}
	}
	if len(done) > 0 {
		r.events = windows(start, at, done, outcomes)
	}
	s.t.Logf("%s: %+v; events: %v", phase, sum, r.events)
	if sum.Outcomes["untyped"] > 0 {
		s.t.Errorf("%s: %d requests ended in an untyped error: %v", phase, sum.Outcomes["untyped"], sum.Untyped)
	}
	if sum.WrongReplies > 0 {
		s.t.Errorf("%s: %d wrong replies", phase, sum.WrongReplies)
	}
	// None hangs: each try ends by its deadline (plus scheduling slack).
	if limit := time.Duration(appRetries+1) * (deadline + time.Second); time.Duration(sum.MaxMS)*time.Millisecond > limit {
		s.t.Errorf("%s: a request took %d ms (deadline %s per try, %d application retries)", phase, sum.MaxMS, deadline, appRetries)
	}
	if total := sumValues(sum.Outcomes); total != sum.Sent {
		s.t.Errorf("%s: %d outcomes for %d requests", phase, total, sum.Sent)
	}
	return r
}

// checkAnsweredOnce: every request answered or refused STORE_UNAVAILABLE
// (a reset on a worker's Redis link during its claim: the worker fails
// closed), each answered one delivered exactly once, none twice.
func (s *suite) checkAnsweredOnce(r row) {
	s.t.Helper()
	if got := r.traffic.Outcomes["reply"] + r.traffic.Outcomes["store-unavailable"]; got != r.traffic.Sent {
		s.t.Errorf("%s: %d of %d requests answered or refused store-unavailable; want all: %v", r.phase, got, r.traffic.Sent, r.traffic.Outcomes)
	}
	for id, oc := range r.outcomes {
		if strings.HasPrefix(oc, "reply ") && r.perID[id] != 1 {
			s.t.Errorf("%s: %s answered, delivered %d times; want once", r.phase, id, r.perID[id])
		}
	}
	s.checkNoneTwice(r)
}

func (s *suite) checkNoneTwice(r row) {
	s.t.Helper()
	if r.twice != 0 {
		s.t.Errorf("%s: %d requests delivered more than once", r.phase, r.twice)
	}
}

// replay sends every captured request (files matching glob) to every
// worker through its attacker link and counts the deliveries of the given
// phases' requests that it caused.
func (s *suite) replay(phase, glob string, prefixes ...string) row {
	s.t.Helper()
	count := func() int {
		n := 0
		for _, p := range prefixes {
			n += sumValues(s.deliveries(p))
		}
		return n
	}
	before := count()
	args := []string{"replay", "--captures", s.captures, "--match", glob, "--wait", "2s"}
	for i := 1; i <= 3; i++ {
		args = append(args, "--connect", fmt.Sprintf("tcp://%s:%d", hosts["proxy"], 7300+i))
	}
	out, err := s.run(s.name("attacker"), "client", "60s", s.bin["faultclient"], args...)
	if err != nil {
		s.t.Fatalf("%s: %v", phase, err)
	}
	var sum replaySummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		s.t.Fatalf("%s: attacker printed %q: %v", phase, out, err)
	}
	time.Sleep(500 * time.Millisecond)
	r := row{phase: phase, replay: &sum, delivered: count() - before}
	s.t.Logf("%s: %+v, delivered %d", phase, sum, r.delivered)
	return r
}

// deliveries counts, per request id with the prefix, the lines that
// every worker incarnation so far printed (one per delivery).
func (s *suite) deliveries(prefix string) map[string]int {
	counts := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(s.dir, "w[123]-*.out"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, prefix+":") {
				counts[line]++
			}
		}
	}
	return counts
}

// windows labels each event with the outcomes of the requests sent from
// it until the next event (or the end): "3.0s kill -9 worker 1: 31 sent,
// reply=29 in-doubt=2".
func windows(start time.Time, at []time.Time, what []string, outcomes map[string]string) []string {
	bounds := append([]time.Time{start}, at...)
	labels := append([]string{"0.0s start"}, what...)
	counts := make([]map[string]int, len(bounds))
	sent := make([]int, len(bounds))
	for i := range counts {
		counts[i] = map[string]int{}
	}
	for _, v := range outcomes {
		f := strings.Fields(v)
		var ms int64
		fmt.Sscan(f[2], &ms)
		t := time.UnixMilli(ms)
		i := sort.Search(len(bounds), func(i int) bool { return bounds[i].After(t) }) - 1
		i = max(i, 0)
		counts[i][f[0]]++
		sent[i]++
	}
	var out []string
	for i, l := range labels {
		var parts []string
		for k, v := range counts[i] {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(parts)
		out = append(out, fmt.Sprintf("%-36s %4d sent: %s", l, sent[i], strings.Join(parts, " ")))
	}
	return out
}

func readOutcomes(t *testing.T, path string) map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 5 {
			m[f[0]] = f[1] + " " + f[3] + " " + f[4]
		}
	}
	return m
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func printTable(rows []row, resets int) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nfault suite: 7 namespaces, every link through Toxiproxy (20-80 ms jitter and 64 KB/s each way), %d reset_peer toxics applied\n", resets)
	fmt.Fprintf(&b, "%-44s %8s %8s %-44s %7s %9s %6s %5s\n", "phase", "requests", "replies", "typed errors", "max ms", "delivered", "twice", "lost")
	for _, r := range rows {
		if r.traffic != nil {
			var errs []string
			for k, v := range r.traffic.Outcomes {
				if k != "reply" {
					errs = append(errs, fmt.Sprintf("%s=%d", k, v))
				}
			}
			sort.Strings(errs)
			if r.traffic.AppRetries > 0 {
				errs = append(errs, fmt.Sprintf("(app retries %d)", r.traffic.AppRetries))
			}
			fmt.Fprintf(&b, "%-44s %8d %8d %-44s %7d %9d %6d %5d\n", r.phase, r.traffic.Sent, r.traffic.Outcomes["reply"],
				strings.Join(errs, " "), r.traffic.MaxMS, r.delivered, r.twice, r.lost)
			for _, e := range r.events {
				fmt.Fprintf(&b, "    %s\n", e)
			}
			continue
		}
		fmt.Fprintf(&b, "%-44s %8d %8s %-44s %7s %9d\n", r.phase, r.replay.Sent, "-",
			fmt.Sprintf("%d captured (%d unique) x 3 workers, %d answers", r.replay.Messages, r.replay.Unique, r.replay.Answers), "-", r.delivered)
	}
	fmt.Print(b.String())
}
