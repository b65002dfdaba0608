package secsock

import (
	"fmt"
	"log/slog"
)

// A Socket or Context holds key material (a secret key behind pointers,
// and the keys of the exchange in progress). fmt follows pointers for some
// verbs, so both print a fixed description instead, whatever the verb.

// Format prints a description of the socket that holds no key material,
// for every fmt verb.
func (s *Socket) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.describe()) }

// LogValue is the socket's description for log/slog.
func (s *Socket) LogValue() slog.Value { return slog.StringValue(s.describe()) }

// Format prints a description of the context's socket that holds no key
// material, for every fmt verb.
func (c *Context) Format(f fmt.State, _ rune) { fmt.Fprint(f, "context of "+c.s.describe()) }

// LogValue is the context's description for log/slog.
func (c *Context) LogValue() slog.Value { return slog.StringValue("context of " + c.s.describe()) }

func (s *Socket) describe() string {
	if s == nil {
		return "secsock.Socket(nil)"
	}
	s.mu.Lock()
	mech := s.cfg.mechanism
	s.mu.Unlock()
	return fmt.Sprintf("secsock.Socket(%s, mechanism=%s)", s.sock.Info().SelfName, mech)
}
