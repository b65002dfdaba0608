package secsock

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/pub"
)

// TestListenAndDialNeedKeys: a curve socket without the keys its side
// needs cannot Listen or Dial (any of the six ways), whatever the order
// the options were set in; once the key is set, it can.
func TestListenAndDialNeedKeys(t *testing.T) {
	sk := mustKey(t)
	w, _ := NewRepSocket()
	defer w.Close()
	mustSet(t, w, OptionMechanism, MechanismCurve)
	cl, _ := NewReqSocket()
	defer cl.Close()
	mustSet(t, cl, OptionMechanism, MechanismCurve, OptionSecretKey, mustKey(t)) // its own key is not the server's
	addr := inprocAddr(t)
	tries := map[string]func() error{
		"Listen":        func() error { return w.Listen(addr) },
		"ListenOptions": func() error { return w.ListenOptions(addr, nil) },
		"NewListener":   func() error { _, err := w.NewListener(addr, nil); return err },
		"Dial":          func() error { return cl.Dial(addr) },
		"DialOptions":   func() error { return cl.DialOptions(addr, nil) },
		"NewDialer":     func() error { _, err := cl.NewDialer(addr, nil); return err },
	}
	for name, f := range tries {
		if err := f(); !errors.Is(err, ErrNoKey) {
			t.Errorf("%s without the key: %v, want ErrNoKey", name, err)
		}
	}
	mustSet(t, w, OptionSecretKey, &sk) // a *SecretKey works too
	mustSet(t, cl, OptionServerKey, sk.Public())
	if err := w.Listen(addr); err != nil {
		t.Fatal(err)
	}
	if err := cl.Dial(addr); err != nil {
		t.Fatal(err)
	}
	serveEcho(t, 0, w)
	if _, err := roundTrip(cl, "x"); err != nil {
		t.Fatal(err)
	}
}

// TestOptionsForTheOtherSide: an option that does nothing on this side is
// refused, naming the side it is for; sealing on another protocol is
// refused when set; inconsistent windows are refused when set.
func TestOptionsForTheOtherSide(t *testing.T) {
	w, _ := NewRepSocket()
	defer w.Close()
	cl, _ := NewReqSocket()
	defer cl.Close()
	for name, rule := range optionRules {
		var wrong *Socket
		switch rule.side {
		case clientSide:
			wrong = w
		case serverSide:
			wrong = cl
		default:
			continue
		}
		err := wrong.SetOption(name, true) // the value is not even looked at
		if !errors.Is(err, mangos.ErrBadOption) || !strings.Contains(err.Error(), rule.side.sockets()) {
			t.Errorf("%s on the wrong side: %v", name, err)
		}
	}
	ps, err := pub.NewSocket()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Wrap(ps)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SetOption(OptionMechanism, MechanismCurve); !errors.Is(err, ErrProtocol) {
		t.Fatalf("curve on PUB: %v, want ErrProtocol", err)
	}
	mustSet(t, p, OptionMechanism, MechanismNone)
	if err := p.SetOption(OptionSecretKey, mustKey(t)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("a key on PUB: %v, want ErrProtocol", err)
	}
}

// TestInconsistentSettings: a freshness window below the clock skew is
// refused by Listen, whatever order the two were set in (so a consistent
// pair is never refused for its order), and by SetOption once the socket
// listens.
func TestInconsistentSettings(t *testing.T) {
	sk := mustKey(t)
	w, _ := NewRepSocket()
	defer w.Close()
	mustSet(t, w, OptionMechanism, MechanismCurve, OptionSecretKey, sk, OptionFreshness, 5*time.Second) // skew still 10 s
	addr := inprocAddr(t)
	if err := w.Listen(addr); !errors.Is(err, mangos.ErrBadValue) {
		t.Fatalf("Listen with freshness 5s under skew 10s: %v, want ErrBadValue", err)
	}
	mustSet(t, w, OptionMaxClockSkew, 2*time.Second) // now consistent
	if err := w.Listen(addr); err != nil {
		t.Fatal(err)
	}
	if err := w.SetOption(OptionMaxClockSkew, time.Minute); !errors.Is(err, mangos.ErrBadValue) {
		t.Fatalf("skew 1m over freshness 5s on a listening socket: %v", err)
	}
	if v, _ := w.GetOption(OptionMaxClockSkew); v != 2*time.Second {
		t.Fatalf("a refused value was applied: %v", v)
	}
}

// TestLiveSocketKeepsSealing: once a socket listens or dials it does not
// go back to mechanism none (its next bodies would go out in clear), and a
// plain socket that listens does not switch to curve without its key.
func TestLiveSocketKeepsSealing(t *testing.T) {
	plain, _ := NewRepSocket()
	defer plain.Close()
	if err := plain.Listen(inprocAddr(t)); err != nil {
		t.Fatal(err)
	}
	if err := plain.SetOption(OptionMechanism, MechanismCurve); !errors.Is(err, ErrNoKey) {
		t.Fatalf("curve on a listening REP without a key: %v, want ErrNoKey", err)
	}
	mustSet(t, plain, OptionSecretKey, mustKey(t), OptionMechanism, MechanismCurve)
	if err := plain.SetOption(OptionMechanism, MechanismNone); !errors.Is(err, mangos.ErrBadOption) {
		t.Fatalf("back to none on a listening REP: %v, want ErrBadOption", err)
	}
}

// TestEveryOptionHasARule: every SECSOCK-* option constant of the package
// is in optionRules, so none is silently accepted on the wrong side.
func TestEveryOptionHasARule(t *testing.T) {
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	known := map[string]bool{}
	for _, r := range optionRulesNames() {
		known[r] = true
	}
	n := 0
	for _, f := range files {
		ast.Inspect(f, func(node ast.Node) bool {
			lit, ok := node.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || !strings.HasPrefix(lit.Value, `"SECSOCK-`) {
				return true
			}
			n++
			if name := strings.Trim(lit.Value, `"`); !known[name] {
				t.Errorf("option %s has no entry in optionRules", name)
			}
			return true
		})
	}
	if n < len(optionRules) {
		t.Fatalf("found %d option strings, fewer than the %d rules", n, len(optionRules))
	}
}

func optionRulesNames() []string {
	var names []string
	for name := range optionRules {
		names = append(names, name)
	}
	return names
}
