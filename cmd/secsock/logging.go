package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// timeFormat is the timestamp of log lines: RFC 3339 in UTC, with
// milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// logger writes the log lines of long-running commands (rep, device) on
// stderr: "TIME secsock CMD: message", or with --json one JSON object per
// line (log/slog's JSON handler: time, level, msg, then fields).
type logger struct {
	mu    sync.Mutex
	w     io.Writer
	cmd   string
	quiet bool
	json  *slog.Logger
}

func newLogger(w io.Writer, cmd string, quiet, asJSON bool) *logger {
	l := &logger{w: w, cmd: cmd, quiet: quiet}
	if asJSON {
		l.json = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.String(slog.TimeKey, a.Value.Time().UTC().Format(timeFormat))
				}
				return a
			},
		})).With("cmd", cmd)
	}
	return l
}

// say logs one line; with --json, msg is the message and attrs its
// fields (key, value pairs); in text they are not printed.
func (l *logger) say(attrs []any, format string, args ...any) {
	if !l.quiet {
		l.emit(attrs, format, args...)
	}
}

func (l *logger) emit(attrs []any, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l.json != nil {
		l.json.Log(context.Background(), slog.LevelInfo, msg, attrs...)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s secsock %s: %s\n", time.Now().UTC().Format(timeFormat), l.cmd, msg)
}

// sayf is say without fields.
func (l *logger) sayf(format string, args ...any) { l.say(nil, format, args...) }

// always logs even with --quiet (the final counters of -v).
func (l *logger) always(attrs []any, format string, args ...any) { l.emit(attrs, format, args...) }
