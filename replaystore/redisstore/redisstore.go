// Package redisstore is a replaystore.Store on Redis (or a server that
// speaks its protocol and Lua scripting), for REP workers on several
// processes or hosts that share a server key (SPEC.md §17).
//
// Each claim, lookup and reply is one Lua script: one round trip, atomic.
// All keys share one hash tag, so a Cluster keeps the store on one shard.
// The store detects a change of generation: every claim compares the
// server's run_id with the one the generation key records (inside the
// script), and a restart or a failover to another server process starts
// a new generation, as does a store emptied. Requests dated at or before a
// generation's start plus twice the clock skew are refused as in doubt,
// since claims of them may be lost (Redis replication is asynchronous).
//
// Redis must run with maxmemory-policy noeviction (its default): a policy
// that evicts keys would lose claims without any sign, so the store reads
// the policy (INFO memory, at most every 10 seconds) and fails while it is
// another.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/secsock/secsock/replaystore"
)

// Store is a replaystore.Store on Redis. Its methods are safe for
// concurrent use.
type Store struct {
	client   redis.UniversalClient
	prefix   string // "{secsock}:" by default: one hash tag for every key
	gen      string // the generation key
	owned    bool   // Close closes client
	maxReply int

	policyMu      sync.Mutex
	policyChecked time.Time
	policyErr     error // the last check's verdict on maxmemory-policy
}

// Options configure a Store.
type Options struct {
	// Prefix starts every key (default "secsock"); it becomes a hash tag,
	// "{prefix}:", so it may not hold braces. Services sharing a server
	// differ by the fingerprint of their server key in each key anyway.
	Prefix string
	// MaxReply is the largest sealed reply stored (default and at most
	// replaystore.MaxReply, 64 KiB); a larger one is stored as "not kept"
	// (copies at other workers are refused REPLAYED). It bounds what one
	// client's large replies cost the store: an entry is about 290 bytes
	// plus its reply.
	MaxReply int
}

// New returns a Store on a client made from opts (Sentinel and Cluster
// as in redis.NewUniversalClient), with ContextTimeoutEnabled: the
// worker's deadline bounds each round trip.
func New(opts *redis.UniversalOptions, o Options) (*Store, error) {
	s, err := newStore(o)
	if err != nil {
		return nil, err
	}
	cp := *opts
	cp.ContextTimeoutEnabled = true
	s.client, s.owned = redis.NewUniversalClient(&cp), true
	return s, nil
}

// Open returns a Store for a redis:// or rediss:// URL (TLS with
// rediss://; password and database in the URL, as redis.ParseURL reads
// them). Connections are made when first needed, and made again
// automatically after a failure.
func Open(url string, o Options) (*Store, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", errors.New(redactURLError(err)))
	}
	u := &redis.UniversalOptions{
		Addrs: []string{opt.Addr}, DB: opt.DB, Username: opt.Username, Password: opt.Password,
		TLSConfig: opt.TLSConfig, Protocol: opt.Protocol, ClientName: opt.ClientName,
		DialTimeout: opt.DialTimeout, ReadTimeout: opt.ReadTimeout, WriteTimeout: opt.WriteTimeout,
		PoolSize: opt.PoolSize, MaxRetries: opt.MaxRetries,
	}
	return New(u, o)
}

// redactURLError keeps a URL parse error's message free of the URL (it
// may hold a password).
func redactURLError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		return "invalid URL"
	}
	return msg
}

func newStore(o Options) (*Store, error) {
	p := o.Prefix
	if p == "" {
		p = "secsock"
	}
	if strings.ContainsAny(p, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q: braces would break its hash tag", p)
	}
	prefix := "{" + p + "}:"
	maxReply := replaystore.MaxReply
	if o.MaxReply > 0 {
		maxReply = min(o.MaxReply, maxReply)
	}
	return &Store{prefix: prefix, gen: prefix + "gen", maxReply: maxReply}, nil
}

// Close closes the client (if New or Open made it).
func (s *Store) Close() error {
	if s.owned {
		return s.client.Close()
	}
	return nil
}

// Client returns the underlying client.
func (s *Store) Client() redis.UniversalClient { return s.client }

// key is the entry key of r: prefix ‖ service fingerprint ‖ C' ‖ u64(N).
func (s *Store) key(r *replaystore.Request) string {
	var b [16 + 32 + 8]byte
	copy(b[:16], r.Service[:])
	copy(b[16:48], r.Eph[:])
	binary.BigEndian.PutUint64(b[48:], r.Counter)
	return s.prefix + string(b[:])
}

// Claim implements replaystore.Store.
func (s *Store) Claim(ctx context.Context, r *replaystore.Request, maxResends int) (replaystore.Result, error) {
	return s.run(ctx, r, maxResends, "c")
}

// Refuse implements replaystore.Store.
func (s *Store) Refuse(ctx context.Context, r *replaystore.Request, maxResends int) (replaystore.Result, error) {
	return s.run(ctx, r, maxResends, "u")
}

// Lookup implements replaystore.Store.
func (s *Store) Lookup(ctx context.Context, r *replaystore.Request, maxResends int) (replaystore.Result, error) {
	return s.run(ctx, r, maxResends, "l")
}

func (s *Store) run(ctx context.Context, r *replaystore.Request, maxResends int, mode string) (replaystore.Result, error) {
	if err := s.checkPolicy(ctx); err != nil {
		return replaystore.Result{}, err
	}
	v, err := claimScript.Run(ctx, s.client, []string{s.key(r), s.gen},
		r.Header[:], r.Owner[:], r.Timestamp, r.Skew, r.Lease.Milliseconds(), max(r.TTL, r.Lease).Milliseconds(),
		min(max(maxResends, 0), 9), mode, newGenerationID(), r.Now).Slice()
	if err != nil {
		return replaystore.Result{}, wrap(err)
	}
	if len(v) == 0 {
		return replaystore.Result{}, fmt.Errorf("redisstore: empty answer: %w", replaystore.ErrUnavailable)
	}
	state, _ := v[0].(string)
	var arg string
	if len(v) > 1 {
		arg, _ = v[1].(string)
	}
	switch state {
	case "C":
		return replaystore.Result{State: replaystore.Claimed}, nil
	case "S":
		return replaystore.Result{State: replaystore.Answered, Reply: []byte(arg)}, nil
	case "R":
		return replaystore.Result{State: replaystore.Replayed}, nil
	case "P":
		ms, _ := strconv.ParseInt(arg, 10, 64)
		return replaystore.Result{State: replaystore.Pending, LeaseLeft: time.Duration(ms) * time.Millisecond}, nil
	case "D":
		return replaystore.Result{State: replaystore.InDoubt}, nil
	case "X":
		return replaystore.Result{State: replaystore.Conflict}, nil
	case "Q":
		return replaystore.Result{State: replaystore.Quiescent}, nil
	case "U":
		return replaystore.Result{State: replaystore.Refused}, nil
	}
	return replaystore.Result{}, fmt.Errorf("redisstore: unexpected answer %q: %w", state, replaystore.ErrUnavailable)
}

// Reply implements replaystore.Store.
func (s *Store) Reply(ctx context.Context, r *replaystore.Request, sealed []byte) error {
	if len(sealed) > s.maxReply {
		sealed = nil
	}
	if sealed == nil {
		sealed = []byte{}
	}
	return wrap(replyScript.Run(ctx, s.client, []string{s.key(r)}, r.Header[:], sealed).Err())
}

// Replies implements replaystore.ReplyBatcher: one pipeline of Reply
// scripts.
func (s *Store) Replies(ctx context.Context, rs []*replaystore.Request, sealed [][]byte) error {
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range rs {
			b := sealed[i]
			if len(b) > s.maxReply || b == nil {
				b = []byte{}
			}
			replyScript.EvalSha(ctx, p, []string{s.key(r)}, r.Header[:], b)
		}
		return nil
	})
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		for i, r := range rs { // the script is not loaded yet: one by one (Run loads it)
			if err := s.Reply(ctx, r, sealed[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return wrap(err)
}

// Renew implements replaystore.Store: one pipeline of renew scripts.
func (s *Store) Renew(ctx context.Context, rs []*replaystore.Request) error {
	if len(rs) == 0 {
		return nil
	}
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range rs {
			renewScript.EvalSha(ctx, p, []string{s.key(r)}, r.Header[:], r.Owner[:], r.Lease.Milliseconds())
		}
		return nil
	})
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		for _, r := range rs { // not loaded yet: one by one (Run loads it)
			if err := renewScript.Run(ctx, s.client, []string{s.key(r)}, r.Header[:], r.Owner[:], r.Lease.Milliseconds()).Err(); err != nil {
				return wrap(err)
			}
		}
		return nil
	}
	return wrap(err)
}

var (
	_ replaystore.Store        = (*Store)(nil)
	_ replaystore.ReplyBatcher = (*Store)(nil)
)

// Initialize marks a store that no worker of the service has used as
// new: its first generation then starts at time 0 and has no quiescent
// period (without it, the first generation is treated like any other, and
// requests dated before its start plus twice the clock skew are refused,
// since nothing tells an empty new store from one that lost its data). It
// reports false and changes nothing when the store has a generation
// already, and refuses a server process that has run for less than quiet
// (the freshness window plus twice the skew, 140 s with the defaults): a
// younger one may have replaced a process whose claims are still fresh.
// Run it once, when deploying (secsock replay-store init).
func Initialize(ctx context.Context, opts *redis.UniversalOptions, o Options, quiet time.Duration) (bool, error) {
	s, err := newStore(o)
	if err != nil {
		return false, err
	}
	c := redis.NewUniversalClient(opts)
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return false, wrap(err)
	}
	var run string
	var up int64 = -1
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "run_id:"); ok {
			run = v
		} else if v, ok := strings.CutPrefix(line, "uptime_in_seconds:"); ok {
			up, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if run == "" || up < 0 {
		return false, errors.New("redisstore: the server reports no run_id or uptime")
	}
	if time.Duration(up)*time.Second < quiet {
		return false, fmt.Errorf("redisstore: the server has run %ds, less than %v: it may have lost fresh claims of a previous process; wait, or let the first generation be quiescent", up, quiet)
	}
	ok, err := c.SetNX(ctx, s.gen, newGenerationID()+":0:"+run, 0).Result()
	return ok, wrap(err)
}

// Generation returns the store's current generation: its id, when it
// started (worker clock) and the run_id of the server that holds it.
func (s *Store) Generation(ctx context.Context) (id string, created time.Time, runID string, err error) {
	g, err := s.client.Get(ctx, s.gen).Result()
	if err != nil {
		return "", time.Time{}, "", wrap(err)
	}
	parts := strings.SplitN(g, ":", 3)
	if len(parts) != 3 {
		return "", time.Time{}, "", fmt.Errorf("redisstore: malformed generation: %w", replaystore.ErrUnavailable)
	}
	ms, _ := strconv.ParseInt(parts[1], 10, 64)
	return parts[0], time.UnixMilli(ms), parts[2], nil
}

// policyEvery is how often the store rereads the server's eviction
// policy.
const policyEvery = 10 * time.Second

// checkPolicy fails unless the server keeps every key until it expires
// (maxmemory-policy noeviction), reading the policy at most every
// policyEvery.
func (s *Store) checkPolicy(ctx context.Context) error {
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	if !s.policyChecked.IsZero() && time.Since(s.policyChecked) < policyEvery {
		return s.policyErr
	}
	info, err := s.client.Info(ctx, "memory").Result()
	if err != nil {
		return wrap(err) // not cached: asked again next time
	}
	s.policyChecked, s.policyErr = time.Now(), nil
	policy := "noeviction"
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok {
			policy = v
		}
	}
	if policy != "noeviction" {
		s.policyErr = fmt.Errorf("redisstore: the server's maxmemory-policy is %s, which can evict claims; it must be noeviction: %w",
			policy, replaystore.ErrUnavailable)
	}
	return s.policyErr
}

func newGenerationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// wrap marks an error of the client (network, timeout, server error) as
// ErrUnavailable: nothing is known about the request.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redisstore: %w: %w", replaystore.ErrUnavailable, err)
}
