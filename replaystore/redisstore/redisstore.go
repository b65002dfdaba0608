// Package redisstore is a replaystore.Store on Redis (or a server that
// speaks its protocol and Lua scripting), for REP workers on several
// processes or hosts that share a server key (SPEC.md §17).
//
// Each claim, lookup and reply is one Lua script: one round trip, atomic.
// All keys share one hash tag, so a Cluster keeps the store on one shard.
// The store detects a change of generation: every new connection compares
// the server's run_id with the one the generation key records, and a
// restart or a failover to another server process starts a new generation
// (as does a store emptied under a live connection). Requests dated at or
// before a generation's start plus the clock skew are refused as in doubt,
// since claims of them may be lost (Redis replication is asynchronous).
//
// Run Redis with maxmemory-policy noeviction (the default): a policy that
// evicts keys loses claims without any sign.
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
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/secsock/secsock/replaystore"
)

// Store is a replaystore.Store on Redis. Its methods are safe for
// concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string // "{secsock}:" by default: one hash tag for every key
	gen    string // the generation key
	owned  bool   // Close closes client
}

// Options configure a Store.
type Options struct {
	// Prefix starts every key (default "secsock"); it becomes a hash tag,
	// "{prefix}:". Services sharing a server differ by the fingerprint of
	// their server key in each key anyway.
	Prefix string
}

// New returns a Store on a client made from opts, whose OnConnect hook it
// takes over (to detect generation changes on every new connection; a
// hook already set runs first) and with ContextTimeoutEnabled (the
// worker's deadline bounds each round trip). Sentinel and Cluster come from opts as in
// redis.NewUniversalClient.
func New(opts *redis.UniversalOptions, o Options) *Store {
	s := newStore(o)
	cp := *opts
	cp.ContextTimeoutEnabled = true // the worker's deadline bounds every round trip
	prev := cp.OnConnect
	cp.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if prev != nil {
			if err := prev(ctx, cn); err != nil {
				return err
			}
		}
		return s.checkGeneration(ctx, cn)
	}
	s.client, s.owned = redis.NewUniversalClient(&cp), true
	return s
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
	return New(u, o), nil
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

func newStore(o Options) *Store {
	p := o.Prefix
	if p == "" {
		p = "secsock"
	}
	prefix := "{" + p + "}:"
	return &Store{prefix: prefix, gen: prefix + "gen"}
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
	if len(sealed) > replaystore.MaxReply {
		sealed = nil
	}
	if sealed == nil {
		sealed = []byte{}
	}
	return wrap(replyScript.Run(ctx, s.client, []string{s.key(r)}, r.Header[:], sealed).Err())
}

// Initialize marks a store that no worker of the service has used as
// new: its first generation then starts at time 0 and has no quiescent
// period (without it, the first generation is treated like any other, and
// requests dated before its start plus the clock skew are refused, since
// nothing tells an empty new store from one that lost its data). It
// reports false and changes nothing when the store has a generation
// already. Run it once, when deploying (secsock replay-store init), never
// routinely: after a store lost its data it would hide the loss.
func Initialize(ctx context.Context, opts *redis.UniversalOptions, o Options) (bool, error) {
	s := newStore(o)
	cp := *opts
	cp.OnConnect = nil // a plain connection: no generation made on connect
	c := redis.NewUniversalClient(&cp)
	defer c.Close()
	ok, err := c.SetNX(ctx, s.gen, newGenerationID()+":0:", 0).Result()
	return ok, wrap(err)
}

// Replies implements replaystore.ReplyBatcher: one pipeline of Reply
// scripts.
func (s *Store) Replies(ctx context.Context, rs []*replaystore.Request, sealed [][]byte) error {
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range rs {
			b := sealed[i]
			if len(b) > replaystore.MaxReply || b == nil {
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

// checkGeneration compares, on a new connection, the server's run_id with
// the generation's, and starts a new generation if they differ.
func (s *Store) checkGeneration(ctx context.Context, cn *redis.Conn) error {
	info, err := cn.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("redisstore: reading the server's run_id: %w", err)
	}
	run := ""
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			run = v
		}
	}
	if run == "" {
		return errors.New("redisstore: the server reports no run_id")
	}
	return generationScript.Run(ctx, cn, []string{s.gen}, run, newGenerationID(), time.Now().UnixMilli()).Err()
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
