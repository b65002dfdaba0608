package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.nanomsg.org/mangos/v3"
	_ "go.nanomsg.org/mangos/v3/transport/tcp"

	"github.com/secsock/secsock"
)

// typedErrors are the outcomes a client branches on, by name.
var typedErrors = []struct {
	name string
	err  error
}{
	{"in-doubt", secsock.ErrInDoubt},
	{"store-unavailable", secsock.ErrStoreUnavailable},
	{"replayed", secsock.ErrReplayed},
	{"busy", secsock.ErrBusy},
	{"stale", secsock.ErrStale},
	{"refused", secsock.ErrRefused},
	{"not-authorized", secsock.ErrNotAuthorized},
	{"deadline", mangos.ErrRecvTimeout},
	{"send-deadline", mangos.ErrSendTimeout},
	{"closed", mangos.ErrClosed},
}

// outcome names how a request ended: "reply", a typed error's name, or
// "untyped" (any other error, which the suite treats as a failure).
func outcome(err error) string {
	if err == nil {
		return "reply"
	}
	for _, t := range typedErrors {
		if errors.Is(err, t.err) {
			return t.name
		}
	}
	return "untyped"
}

// summary is traffic's JSON line.
type summary struct {
	Sent         int            `json:"sent"`
	Outcomes     map[string]int `json:"outcomes"`
	WrongReplies int            `json:"wrong_replies"`
	MaxMS        int64          `json:"max_ms"`
	Untyped      []string       `json:"untyped,omitempty"`
	// AppRetries counts new requests the application sent for a body
	// after ErrStoreUnavailable or ErrBusy (both say: not run).
	AppRetries int `json:"app_retries"`
}

// exchange sends body and waits for its reply; a refusal that says the
// request did not run (STORE_UNAVAILABLE, BUSY) is retried as a new
// request after a pause, at most retries times.
func exchange(ctx mangos.Context, body []byte, retries int) (got []byte, tries int, err error) {
	for tries = 1; ; tries++ {
		err = ctx.Send(body)
		if err == nil {
			got, err = ctx.Recv()
		}
		if tries > retries || !(errors.Is(err, secsock.ErrStoreUnavailable) || errors.Is(err, secsock.ErrBusy)) {
			return got, tries, err
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func runTraffic(args []string) error {
	fs := flag.NewFlagSet("traffic", flag.ContinueOnError)
	connect := fs.String("connect", "", "device front URL")
	serverKey := fs.String("server-key", "", "server public key file")
	prefix := fs.String("prefix", "req", "request body prefix")
	conc := fs.Int("conc", 4, "concurrent contexts")
	dur := fs.Duration("duration", 5*time.Second, "how long to send new requests")
	maxN := fs.Int("max", 2000, "most requests in all")
	gap := fs.Duration("gap", 20*time.Millisecond, "pause between a context's requests")
	deadline := fs.Duration("deadline", 8*time.Second, "each request's receive deadline")
	retry := fs.Duration("retry", time.Second, "mangos REQ resend time")
	appRetries := fs.Int("app-retries", 0, "new requests after STORE_UNAVAILABLE or BUSY")
	logPath := fs.String("log", "", "per-request log file: ID OUTCOME MS TRIES START_UNIX_MS lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := secsock.LoadPublicKeyFile(*serverKey)
	if err != nil {
		return err
	}
	own, err := secsock.GenerateKey()
	if err != nil {
		return err
	}
	s, err := secsock.NewReqSocket()
	if err != nil {
		return err
	}
	defer s.Close()
	for _, o := range [][2]any{
		{secsock.OptionMechanism, secsock.MechanismCurve},
		{secsock.OptionServerKey, srv},
		{secsock.OptionSecretKey, own},
		{mangos.OptionRetryTime, *retry},
		{mangos.OptionRecvDeadline, *deadline},
		{mangos.OptionSendDeadline, *deadline},
		{mangos.OptionReconnectTime, 50 * time.Millisecond},
		{mangos.OptionMaxReconnectTime, 500 * time.Millisecond},
	} {
		if err := s.SetOption(o[0].(string), o[1]); err != nil {
			return fmt.Errorf("%s: %w", o[0], err)
		}
	}
	if err := s.DialOptions(*connect, map[string]any{mangos.OptionDialAsynch: true}); err != nil {
		return err
	}
	var logf *os.File
	if *logPath != "" {
		if logf, err = os.Create(*logPath); err != nil {
			return err
		}
		defer logf.Close()
	}

	var (
		mu   sync.Mutex
		sum  = summary{Outcomes: map[string]int{}}
		next atomic.Int64
		wg   sync.WaitGroup
	)
	stopAt := time.Now().Add(*dur)
	for range *conc {
		ctx, err := s.OpenContext()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ctx.Close()
			for time.Now().Before(stopAt) {
				n := next.Add(1)
				if n > int64(*maxN) {
					return
				}
				body := fmt.Appendf(nil, "%s:%d", *prefix, n)
				start := time.Now()
				got, tries, err := exchange(ctx, body, *appRetries)
				ms := time.Since(start).Milliseconds()
				oc := outcome(err)
				mu.Lock()
				sum.Sent++
				sum.AppRetries += tries - 1
				sum.Outcomes[oc]++
				if err == nil && !bytes.Equal(got, body) {
					sum.WrongReplies++
				}
				if oc == "untyped" && len(sum.Untyped) < 5 {
					sum.Untyped = append(sum.Untyped, err.Error())
				}
				sum.MaxMS = max(sum.MaxMS, ms)
				if logf != nil {
					fmt.Fprintf(logf, "%s %s %d %d %d\n", body, oc, ms, tries, start.UnixMilli())
				}
				mu.Unlock()
				time.Sleep(*gap)
			}
		}()
	}
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(sum)
}
