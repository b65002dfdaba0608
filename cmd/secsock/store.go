package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/secsock/secsock"
	"github.com/secsock/secsock/replaystore/redisstore"
)

// storeFlags are rep's flags for a shared replay store on Redis.
type storeFlags struct {
	url, passwordFile, caFile string
	deadline, lease, quiet    seconds
	perInstance               bool
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "replay-store", "", "")
	fs.StringVar(&f.passwordFile, "replay-store-password-file", "", "")
	fs.StringVar(&f.caFile, "replay-store-ca", "", "")
	fs.Var(&f.deadline, "replay-store-deadline", "")
	fs.Var(&f.lease, "replay-store-lease", "")
	fs.BoolVar(&f.perInstance, "replay-store-per-instance", false, "")
}

// registerInit adds replay-store init's flags.
func (f *storeFlags) registerInit(fs *flag.FlagSet) {
	f.quiet = seconds(140 * time.Second)
	fs.Var(&f.quiet, "quiet", "")
}

// options reads the URL, password file and CA flags into client
// options, and returns the URL as it may be shown (password redacted).
func (f *storeFlags) options(cmd string) (*redis.UniversalOptions, string, error) {
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, "", usagef(cmd, "--replay-store wants redis://HOST:PORT/DB or rediss://HOST:PORT/DB")
	}
	shown := u.Redacted()
	opt, err := redis.ParseURL(f.url)
	if err != nil {
		return nil, "", fmt.Errorf("--replay-store %s: %w", shown, errors.New(strings.ReplaceAll(err.Error(), f.url, shown)))
	}
	if f.passwordFile != "" {
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return nil, "", fmt.Errorf("--replay-store-password-file: %w", err)
		}
		opt.Password = strings.TrimRight(string(b), "\r\n")
	}
	if f.caFile != "" {
		if opt.TLSConfig == nil {
			return nil, "", usagef(cmd, "--replay-store-ca needs a rediss:// URL")
		}
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, "", fmt.Errorf("--replay-store-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("--replay-store-ca %s: no PEM certificate", f.caFile)
		}
		opt.TLSConfig = &tls.Config{RootCAs: pool, ServerName: opt.TLSConfig.ServerName, MinVersion: tls.VersionTLS12}
	}
	return &redis.UniversalOptions{
		Addrs: []string{opt.Addr}, DB: opt.DB, Username: opt.Username, Password: opt.Password,
		TLSConfig: opt.TLSConfig, ClientName: "secsock",
	}, shown, nil
}

// open makes the store, sets it on s, and returns it with the URL as it
// may be shown (password redacted).
func (f *storeFlags) open(s *secsock.Socket) (*redisstore.Store, string, error) {
	uo, shown, err := f.options("rep")
	if err != nil {
		return nil, "", err
	}
	st, err := redisstore.New(uo, redisstore.Options{})
	if err != nil {
		return nil, "", err
	}
	opts := []any{secsock.OptionReplayStore, st, secsock.OptionReplayStorePerInstance, f.perInstance}
	if f.deadline > 0 {
		opts = append(opts, secsock.OptionReplayStoreDeadline, time.Duration(f.deadline))
	}
	if f.lease > 0 {
		opts = append(opts, secsock.OptionReplayStoreLease, time.Duration(f.lease))
	}
	if err := setOptions(s, opts...); err != nil {
		st.Close()
		return nil, "", err
	}
	return st, shown, nil
}

const replayStoreUsage = `Usage: secsock replay-store init --replay-store URL [--replay-store-password-file FILE] [--replay-store-ca FILE] [--quiet SEC]

Marks a Redis replay store that no worker of the service has used yet as
new, so that its first generation has no quiescent period. Without it,
workers refuse requests dated before the first generation's start plus
twice the clock skew (20 s) as in doubt, because an empty new store looks
exactly like one that lost its data (SPEC.md §17.4). Run it once when
deploying, before the workers start. It changes nothing on a store that
has a generation already, and refuses a Redis process that has run for
less than --quiet (default 140 s, the freshness window plus twice the
skew): a younger one may have lost claims that are still fresh.

Example:
  secsock replay-store init --replay-store redis://store:6379/0
`

func runReplayStore(e *env, args []string) error {
	if len(args) == 0 || args[0] != "init" {
		return usagef("replay-store", "want init")
	}
	fs := newFlags("replay-store")
	var f storeFlags
	f.register(fs)
	f.registerInit(fs)
	if err := parseFlags("replay-store", fs, args[1:]); err != nil {
		return err
	}
	if f.url == "" || fs.NArg() > 0 {
		return usagef("replay-store", "want --replay-store URL and no arguments")
	}
	uo, shown, err := f.options("replay-store")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fresh, err := redisstore.Initialize(ctx, uo, redisstore.Options{}, time.Duration(f.quiet))
	if err != nil {
		return fmt.Errorf("%s: %w", shown, err)
	}
	if !fresh {
		fmt.Fprintf(e.stdout, "%s: has a generation already; unchanged\n", shown)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s: marked new (first generation without a quiescent period)\n", shown)
	return nil
}
