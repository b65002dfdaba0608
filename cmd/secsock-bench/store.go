package main

// The shared replay store measure (mode "store", SPEC.md §17): a curve
// REP worker with the Redis replay store against the same worker with the
// in-memory per-instance default, 64 B over tcp on 127.0.0.1, at full
// load (16 contexts) and at a fixed rate below it, with the round trip of
// a Redis PING measured in the same run and Redis's memory per entry. The
// command starts its own redis-server (from PATH) on a free port of
// 127.0.0.1, without persistence, and stops it at the end.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.nanomsg.org/mangos/v3"

	"github.com/secsock/secsock"
	"github.com/secsock/secsock/replaystore"
	"github.com/secsock/secsock/replaystore/redisstore"
)

// refusedStore counts requests refused STORE_UNAVAILABLE during the
// measure (a store round trip past the 100 ms deadline).
var refusedStore atomic.Int64

// storeVariants: the per-instance default and the Redis store.
var storeVariants = []string{"memory", "redis"}

// redisProc is the redis-server the measure runs.
type redisProc struct {
	cmd  *exec.Cmd
	addr string
}

func startRedis(dir string) (*redisProc, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("mode store needs redis-server on PATH: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := &redisProc{addr: "127.0.0.1:" + strconv.Itoa(port)}
	p.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	c := redis.NewClient(&redis.Options{Addr: p.addr})
	defer c.Close()
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return p, nil
		}
		if time.Now().After(end) {
			p.stop()
			return nil, fmt.Errorf("redis-server on %s did not answer", p.addr)
		}
	}
}

func (p *redisProc) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// storeFixture is one REP worker (16 echo contexts) and one REQ client.
type storeFixture struct {
	rep, req *secsock.Socket
	ctxs     []mangos.Context
	wg       sync.WaitGroup
}

func newStoreFixture(k *keys, st *redisstore.Store, contexts int) (*storeFixture, error) {
	f := &storeFixture{}
	var err error
	if f.rep, err = secsock.NewRepSocket(); err != nil {
		return nil, err
	}
	opts := []any{secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, k.server,
		mangos.OptionSendDeadline, 20 * time.Second}
	if st != nil {
		opts = append(opts, secsock.OptionReplayStore, st)
	}
	if err := setAll(f.rep, opts...); err != nil {
		f.close()
		return nil, err
	}
	for i := 0; i < contexts; i++ {
		c, err := f.rep.OpenContext()
		if err != nil {
			f.close()
			return nil, err
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				b, err := c.Recv()
				if err != nil {
					if err == mangos.ErrClosed {
						return
					}
					continue
				}
				c.Send(b)
			}
		}()
	}
	if f.req, err = secsock.NewReqSocket(); err != nil {
		f.close()
		return nil, err
	}
	if err := setAll(f.req, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionServerKey, k.server.Public(),
		mangos.OptionRecvDeadline, 20*time.Second, mangos.OptionSendDeadline, 20*time.Second); err != nil {
		f.close()
		return nil, err
	}
	if err := connect(f.rep, f.req, "tcp", ""); err != nil {
		f.close()
		return nil, err
	}
	for i := 0; i < contexts; i++ {
		c, err := f.req.OpenContext()
		if err != nil {
			f.close()
			return nil, err
		}
		f.ctxs = append(f.ctxs, c)
	}
	// First requests: the session is established, not measured.
	for _, c := range f.ctxs {
		if err := roundTripCtx(c, make([]byte, 64)); err != nil {
			f.close()
			return nil, err
		}
	}
	return f, nil
}

func (f *storeFixture) close() {
	if f.req != nil {
		f.req.Close()
	}
	if f.rep != nil {
		f.rep.Close()
	}
	f.wg.Wait()
}

func roundTripCtx(c mangos.Context, b []byte) error {
	if err := c.Send(b); err != nil {
		return err
	}
	_, err := c.Recv()
	return err
}

// load runs every context for d; with rate > 0 each context sends on a
// fixed schedule (rate/contexts per second, staggered; a late reply makes
// the next send late, not more frequent). Latency counts from the send.
// It returns requests per second and the sorted latencies.
func (f *storeFixture) load(d time.Duration, rate float64) (float64, []time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	payload := make([]byte, 64)
	for i, c := range f.ctxs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var gap time.Duration
			next := start
			if rate > 0 {
				gap = time.Duration(float64(len(f.ctxs)) / rate * float64(time.Second))
				next = start.Add(gap * time.Duration(i) / time.Duration(len(f.ctxs)))
			}
			for {
				if rate > 0 {
					time.Sleep(time.Until(next))
				}
				t0 := time.Now()
				if t0.Sub(start) >= d {
					break
				}
				if err := roundTripCtx(c, payload); errors.Is(err, secsock.ErrStoreUnavailable) {
					refusedStore.Add(1) // the store missed its deadline: refused, counted
				} else if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				lat = append(lat, time.Since(t0))
				if next = next.Add(gap); rate > 0 && time.Until(next) < -gap {
					next = time.Now() // behind by more than a period: do not burst
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, nil, firstErr
	}
	slices.Sort(all)
	return float64(len(all)) / time.Since(start).Seconds(), all, nil
}

func storeQuantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// pingRTT measures n Redis PINGs on one connection, back to back, or
// with rate > 0 one every 1/rate seconds (the conditions of the requests
// at the fixed rate: each round trip starts from an idle wait).
func pingRTT(c *redis.Client, n int, rate float64) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	next := time.Now()
	for i := 0; i < n; i++ {
		if rate > 0 {
			next = next.Add(time.Duration(float64(time.Second) / rate))
			time.Sleep(time.Until(next))
		}
		t0 := time.Now()
		if err := c.Ping(context.Background()).Err(); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	return lat, nil
}

// claimRTT measures n sequential claims of fresh requests, as a worker
// makes them (the store's own cost, without the socket's).
func claimRTT(st *redisstore.Store, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		r := &replaystore.Request{Counter: uint64(i + 1), Skew: 10000, Lease: 10 * time.Second, TTL: 131 * time.Second}
		if _, err := rand.Read(r.Eph[:]); err != nil {
			return nil, err
		}
		now := uint64(time.Now().UnixMilli())
		r.Timestamp, r.Now = now, now
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		t0 := time.Now()
		res, err := st.Claim(ctx, r, 4)
		lat = append(lat, time.Since(t0))
		cancel()
		if err != nil {
			return nil, err
		}
		if res.State != replaystore.Claimed {
			return nil, fmt.Errorf("claim of a fresh request: %v", res.State)
		}
	}
	slices.Sort(lat)
	return lat, nil
}

// usedMemory reads INFO memory's used_memory.
func usedMemory(c *redis.Client) (int64, error) {
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO")
}

// storeSample is one repetition's numbers of one variant.
type storeSample struct {
	fullTput, fullP50, fullP99 float64 // req/s, µs
	rateTput, rateP50, rateP99 float64
}

// runStoreMeasure runs mode store and writes its Markdown to w.
func runStoreMeasure(o *options, k *keys, dir string, w io.Writer, progress func(string, ...any)) error {
	rp, err := startRedis(dir)
	if err != nil {
		return err
	}
	defer rp.stop()
	admin := redis.NewClient(&redis.Options{Addr: rp.addr})
	defer admin.Close()
	uo := &redis.UniversalOptions{Addrs: []string{rp.addr}}
	// The bench's own new server: no quiescent first generation.
	if _, err := redisstore.Initialize(context.Background(), uo, redisstore.Options{}, 0); err != nil {
		return err
	}
	st, err := redisstore.New(uo, redisstore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	fx := map[string]*storeFixture{}
	defer func() {
		for _, f := range fx {
			f.close()
		}
	}()
	for _, v := range storeVariants {
		var s *redisstore.Store
		if v == "redis" {
			s = st
		}
		if fx[v], err = newStoreFixture(k, s, o.contexts); err != nil {
			return fmt.Errorf("store fixture %s: %w", v, err)
		}
	}
	samples := map[string][]storeSample{}
	var pings, pacedPings, rateOps, claims []float64
	vs := slices.Clone(storeVariants)
	for r := 0; r < o.reps; r++ {
		progress("store rep %d/%d\n", r+1, o.reps)
		if r%2 == 1 { // alternate which variant runs first
			slices.Reverse(vs)
		}
		got := map[string]*storeSample{}
		for _, v := range vs {
			x, lat, err := fx[v].load(o.dur, 0)
			if err != nil {
				return fmt.Errorf("store %s full load: %w", v, err)
			}
			got[v] = &storeSample{fullTput: x, fullP50: us(storeQuantile(lat, 0.5)), fullP99: us(storeQuantile(lat, 0.99))}
		}
		for _, v := range vs {
			before := fx[v].rep.ServerStats().ReplayStore
			x, lat, err := fx[v].load(o.dur, o.storeRate)
			if err != nil {
				return fmt.Errorf("store %s at %v/s: %w", v, o.storeRate, err)
			}
			if after := fx[v].rep.ServerStats().ReplayStore; v == "redis" && after.Operations > before.Operations {
				rateOps = append(rateOps, us(after.Latency-before.Latency)/float64(after.Operations-before.Operations))
			}
			g := got[v]
			g.rateTput, g.rateP50, g.rateP99 = x, us(storeQuantile(lat, 0.5)), us(storeQuantile(lat, 0.99))
			samples[v] = append(samples[v], *g)
		}
		pl, err := pingRTT(admin, 2000, 0)
		if err != nil {
			return err
		}
		pings = append(pings, us(storeQuantile(pl, 0.5)))
		cl, err := claimRTT(st, 2000)
		if err != nil {
			return err
		}
		claims = append(claims, us(storeQuantile(cl, 0.5)))
		pp, err := pingRTT(admin, int(o.storeRate*o.dur.Seconds())+1, o.storeRate)
		if err != nil {
			return err
		}
		pacedPings = append(pacedPings, us(storeQuantile(pp, 0.5)))
	}
	perEntry, err := entryBytes(admin, fx["redis"])
	if err != nil {
		return err
	}
	writeStoreTables(w, o, samples, pings, pacedPings, rateOps, claims, perEntry)
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// entryBytes measures Redis's used memory per entry: the store emptied
// but for its generation, then n requests delivered through it.
func entryBytes(admin *redis.Client, f *storeFixture) (float64, error) {
	ctx := context.Background()
	gen, err := admin.Keys(ctx, "*gen").Result()
	if err != nil {
		return 0, err
	}
	all, err := admin.Keys(ctx, "*").Result()
	if err != nil {
		return 0, err
	}
	for _, key := range all {
		if !slices.Contains(gen, key) {
			admin.Del(ctx, key)
		}
	}
	before, err := usedMemory(admin)
	if err != nil {
		return 0, err
	}
	n0, _ := admin.DBSize(ctx).Result()
	const n = 20000
	var wg sync.WaitGroup
	per := n / len(f.ctxs)
	for _, c := range f.ctxs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				roundTripCtx(c, make([]byte, 64))
			}
		}()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // the last replies' writes
	after, err := usedMemory(admin)
	if err != nil {
		return 0, err
	}
	n1, _ := admin.DBSize(ctx).Result()
	if n1 <= n0 {
		return 0, fmt.Errorf("no entries made")
	}
	return float64(after-before) / float64(n1-n0), nil
}

func writeStoreTables(w io.Writer, o *options, samples map[string][]storeSample, pings, pacedPings, rateOps, claims []float64, perEntry float64) {
	med := func(xs []float64) (m, lo, hi float64) {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2], s[0], s[len(s)-1]
	}
	cell := func(xs []float64, f string) string {
		m, lo, hi := med(xs)
		return fmt.Sprintf(f+" ("+f+"–"+f+")", m, lo, hi)
	}
	pick := func(v string, f func(storeSample) float64) []float64 {
		var out []float64
		for _, s := range samples[v] {
			out = append(out, f(s))
		}
		return out
	}
	ratio := func(f func(storeSample) float64) string {
		var rs []float64
		for i := range samples["memory"] {
			rs = append(rs, f(samples["redis"][i])/f(samples["memory"][i]))
		}
		return "**" + cell(rs, "%.2f") + "**"
	}
	diff := func(f func(storeSample) float64) []float64 {
		var ds []float64
		for i := range samples["memory"] {
			ds = append(ds, f(samples["redis"][i])-f(samples["memory"][i]))
		}
		return ds
	}
	fmt.Fprintf(w, "secsock-bench -modes store: %d repetitions, %v per cell, 64 B over tcp on 127.0.0.1, %d contexts; variants interleaved. Cells: median (min–max) over repetitions; ratios per repetition.\n\n",
		o.reps, o.dur, o.contexts)
	fmt.Fprintf(w, "| load | measure | memory (per-instance default) | redis store | redis/memory |\n|---|---|---:|---:|---:|\n")
	rows := []struct {
		load, name, f string
		get           func(storeSample) float64
	}{
		{"full (16 contexts)", "req/s", "%.0f", func(s storeSample) float64 { return s.fullTput }},
		{"full (16 contexts)", "p50 µs", "%.0f", func(s storeSample) float64 { return s.fullP50 }},
		{"full (16 contexts)", "p99 µs", "%.0f", func(s storeSample) float64 { return s.fullP99 }},
		{fmt.Sprintf("fixed %.0f req/s", o.storeRate), "req/s", "%.0f", func(s storeSample) float64 { return s.rateTput }},
		{fmt.Sprintf("fixed %.0f req/s", o.storeRate), "p50 µs", "%.0f", func(s storeSample) float64 { return s.rateP50 }},
		{fmt.Sprintf("fixed %.0f req/s", o.storeRate), "p99 µs", "%.0f", func(s storeSample) float64 { return s.rateP99 }},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.load, r.name, cell(pick("memory", r.get), r.f), cell(pick("redis", r.get), r.f), ratio(r.get))
	}
	added := diff(func(s storeSample) float64 { return s.rateP50 })
	var inPings, inPaced []float64
	for i := range added {
		inPings = append(inPings, added[i]/pings[i])
		inPaced = append(inPaced, added[i]/pacedPings[i])
	}
	addedFull := diff(func(s storeSample) float64 { return s.fullP50 })
	fmt.Fprintf(w, "\n| measure | value |\n|---|---:|\n")
	fmt.Fprintf(w, "| Redis PING round trip, p50 (2,000 sequential, same run) | %s µs |\n", cell(pings, "%.0f"))
	fmt.Fprintf(w, "| Redis PING round trip, p50, one every 1/%.0f s (as the requests at the fixed rate) | %s µs |\n", o.storeRate, cell(pacedPings, "%.0f"))
	var claimPings []float64
	for i := range claims {
		claimPings = append(claimPings, claims[i]/pings[i])
	}
	fmt.Fprintf(w, "| one claim alone (Store.Claim, 2,000 sequential, fresh requests), p50 | %s µs = **%s** PING round trips |\n", cell(claims, "%.0f"), cell(claimPings, "%.2f"))
	fmt.Fprintf(w, "| store round trip seen by the worker at the fixed rate (claims and reply batches, mean per repetition) | %s µs |\n", cell(rateOps, "%.0f"))
	fmt.Fprintf(w, "| p50 added by the store at the fixed rate | %s µs |\n", cell(added, "%.0f"))
	fmt.Fprintf(w, "| the same in back-to-back PING round trips (target ≤ 2) | **%s** |\n", cell(inPings, "%.2f"))
	fmt.Fprintf(w, "| the same in paced PING round trips | **%s** |\n", cell(inPaced, "%.2f"))
	fmt.Fprintf(w, "| p50 added by the store at full load | %s µs |\n", cell(addedFull, "%.0f"))
	window := 120 + 10 + 1 // W + Z + margin, s (defaults)
	fmt.Fprintf(w, "| requests refused STORE_UNAVAILABLE in the whole run (a store round trip past the 100 ms deadline) | %d |\n", refusedStore.Load())
	fmt.Fprintf(w, "| Redis memory per entry (used_memory / keys, 20,000 requests of 64 B) | %.0f B |\n", perEntry)
	fmt.Fprintf(w, "| entries per 1,000 req/s at the default window (1,000 × (W + Z + 1 s)) | %d |\n", 1000*window)
	fmt.Fprintf(w, "| Redis memory per 1,000 req/s at the default window | **%.1f MiB** |\n", perEntry*float64(1000*window)/(1<<20))
}
