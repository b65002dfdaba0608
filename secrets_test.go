package secsock

// Secret keys are never printed: by any fmt verb, on SecretKey itself or
// on anything that holds one (including structs that hold it in an
// unexported field, where fmt cannot call methods), nor by slog. This file
// uses only the exported API and the package's test helpers, so that it
// also runs against older representations of SecretKey.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
)

// leakWindow is the number of consecutive secret bytes that count as a
// leak when found as a run of numbers, characters or hex digits (64 bits:
// no coincidence).
const leakWindow = 8

// leakFinder reports where in a text a secret appears in any of the
// encodings a printer could produce.
type leakFinder struct {
	secret [KeySize]byte
	texts  map[string]string // encoding name -> text that must not appear
}

func newLeakFinder(secret [KeySize]byte) *leakFinder {
	f := &leakFinder{secret: secret, texts: map[string]string{}}
	s := secret[:]
	f.texts["z85"] = z85Encode(s)
	for name, enc := range map[string]*base64.Encoding{
		"base64 std": base64.StdEncoding, "base64 std raw": base64.RawStdEncoding,
		"base64 url": base64.URLEncoding, "base64 url raw": base64.RawURLEncoding,
	} {
		f.texts[name] = enc.EncodeToString(s)
	}
	for i := 0; i+leakWindow <= KeySize; i++ {
		w := s[i : i+leakWindow]
		f.texts[fmt.Sprintf("hex[%d:]", i)] = hex.EncodeToString(w) // compared case-insensitively
		f.texts[fmt.Sprintf("raw bytes[%d:]", i)] = string(w)
		var runes, quoted []string
		for _, b := range w {
			runes = append(runes, string(rune(b)))
			quoted = append(quoted, strconv.QuoteRune(rune(b)))
		}
		f.texts[fmt.Sprintf("runes[%d:]", i)] = strings.Join(runes, "")
		f.texts[fmt.Sprintf("runes spaced[%d:]", i)] = strings.Join(runes, " ")
		f.texts[fmt.Sprintf("quoted runes[%d:]", i)] = strings.Join(quoted, " ")
	}
	return f
}

// numberTokens matches numbers as fmt prints byte values in each base;
// numberPrefix is what fmt may put before them (0x, 0X, 0o, 0b, U+).
var (
	numberTokens = map[int]*regexp.Regexp{
		2:  regexp.MustCompile(`[01]+`),
		8:  regexp.MustCompile(`[0-7]+`),
		10: regexp.MustCompile(`[0-9]+`),
		16: regexp.MustCompile(`[0-9a-fA-F]+`),
	}
	numberPrefix  = regexp.MustCompile(`0[xXob]|U\+`)
	typeNames     = regexp.MustCompile(`\b(u?int|float|complex)(8|16|32|64|128)?\b|\[[0-9]+\]`)
	quotedStrings = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|` + "`[^`]*`")
	quotedRunes   = regexp.MustCompile(`'(?:[^'\\]|\\.)+'`)
)

// find returns a description of the first leak in out, or "".
func (f *leakFinder) find(out string) string {
	lower := strings.ToLower(out)
	for name, text := range f.texts {
		hay := out
		if strings.HasPrefix(name, "hex") {
			hay = lower
		}
		if strings.Contains(hay, text) {
			return "secret as " + name
		}
	}
	// Go string literals (%q of byte arrays): look inside them.
	for _, q := range quotedStrings.FindAllString(out, -1) {
		if u, err := strconv.Unquote(q); err == nil && u != out {
			if leak := f.find(u); leak != "" {
				return leak + " in the quoted string " + q
			}
		}
	}
	// Go rune literals (%q of byte values), in sequence.
	var runes []uint64
	for _, q := range quotedRunes.FindAllString(out, -1) {
		if u, err := strconv.Unquote(q); err == nil && len([]rune(u)) == 1 {
			runes = append(runes, uint64([]rune(u)[0]))
		} else {
			runes = append(runes, 1<<32)
		}
	}
	if f.hasRun(runes) {
		return "secret as a run of quoted runes"
	}
	// Byte values printed as numbers: %d, %o, %O, %b, % x and %X of byte
	// arrays, %U, %!e(uint8=…), and so on.
	plain := numberPrefix.ReplaceAllString(typeNames.ReplaceAllString(out, " "), " ")
	for base, re := range numberTokens {
		var vals []uint64
		for _, tok := range re.FindAllString(plain, -1) {
			v, err := strconv.ParseUint(tok, base, 64)
			if err != nil {
				v = 1 << 32
			}
			vals = append(vals, v)
		}
		if f.hasRun(vals) {
			return fmt.Sprintf("secret as a run of base-%d byte values", base)
		}
	}
	return ""
}

// hasRun reports whether vals holds leakWindow consecutive values equal
// to consecutive bytes of the secret.
func (f *leakFinder) hasRun(vals []uint64) bool {
	for i := 0; i+leakWindow <= len(vals); i++ {
		for start := 0; start+leakWindow <= KeySize; start++ {
			j := 0
			for j < leakWindow && vals[i+j] == uint64(f.secret[start+j]) {
				j++
			}
			if j == leakWindow {
				return true
			}
		}
	}
	return false
}

// printVerbs are the verbs and flag variants applied to every value.
var printVerbs = []string{
	"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%O", "%b",
	"%c", "%U", "%e", "%f", "%g", "%t", "%p", "%T",
	"% x", "%#x", "% X", "%# x", "%#X", "%+q", "%#q", "%08d", "%+d",
	"% d", "%-60v", "%60s", "%.3s", "%10.4f", "%#o", "%#U", "%#b", "%x%v",
	"%[1]v %[1]d", "%!", "%z", "%w",
}

// secretFixture is a secret with distinctive, easily found bytes.
func secretFixture(t *testing.T) (SecretKey, [KeySize]byte) {
	t.Helper()
	var raw [KeySize]byte
	for i := range raw {
		raw[i] = byte(0x9d*i + 0x41)
	}
	k, err := NewSecretKey(raw[:])
	if err != nil {
		t.Fatal(err)
	}
	return k, raw
}

// TestLeakFinderFindsLeaks makes sure the detector itself works: each
// encoding of the secret, and the raw array under every verb, is found.
func TestLeakFinderFindsLeaks(t *testing.T) {
	_, raw := secretFixture(t)
	f := newLeakFinder(raw)
	if got := f.find("nothing to see here 0xc000123456 [1 2 3 4 5 6 7 8 9]"); got != "" {
		t.Fatalf("false positive: %s", got)
	}
	for _, verb := range printVerbs {
		switch verb {
		case "%p", "%T", "%!", "%.3s":
			continue // these do not print the bytes of a plain array
		}
		for name, v := range map[string]any{
			"array": raw, "slice": raw[:], "struct": struct{ secret [KeySize]byte }{raw},
		} {
			out := fmt.Sprintf(verb, v)
			if f.find(out) == "" {
				t.Errorf("%s of the raw %s not detected: %q", verb, name, out)
			}
		}
	}
	for _, text := range []string{z85Encode(raw[:]), base64.URLEncoding.EncodeToString(raw[:]), strings.ToUpper(hex.EncodeToString(raw[:]))} {
		if f.find("x"+text+"x") == "" {
			t.Errorf("%q not detected", text)
		}
	}
}

// holders returns values that hold k in every way the tests check.
func holders(k SecretKey) map[string]any {
	type withValue struct {
		name string
		key  SecretKey
	}
	type withPointer struct {
		name string
		key  *SecretKey
	}
	type withSlice struct {
		keys []SecretKey
	}
	type Exported struct {
		Key SecretKey
	}
	kp := k
	return map[string]any{
		"SecretKey":                       k,
		"*SecretKey":                      &kp,
		"[]SecretKey":                     []SecretKey{k, k},
		"[2]SecretKey":                    [2]SecretKey{k, k},
		"map[string]SecretKey":            map[string]SecretKey{"k": k},
		"map[SecretKey]int":               map[SecretKey]int{k: 1},
		"struct, unexported SecretKey":    withValue{"v", k},
		"*struct, unexported SecretKey":   &withValue{"v", k},
		"struct, unexported *SecretKey":   withPointer{"p", &kp},
		"struct, unexported []SecretKey":  withSlice{[]SecretKey{k}},
		"struct, exported SecretKey":      Exported{k},
		"[]any":                           []any{k, withValue{"v", k}},
		"nested unexported":               struct{ inner withValue }{withValue{"v", k}},
		"struct, unexported any":          struct{ v any }{k},
		"struct, unexported any(struct)":  struct{ v any }{withValue{"v", k}},
		"struct, unexported *withPointer": struct{ p *withPointer }{&withPointer{"p", &kp}},
	}
}

// socketsWithKey returns a REP socket with secret and previous keys set,
// and the REQ and REP ends of a pair (with a client key) that has
// completed a round trip, so that every mechanism state exists.
func socketsWithKey(t *testing.T, k SecretKey) map[string]*Socket {
	t.Helper()
	s, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustSet(t, s, OptionMechanism, MechanismCurve, OptionSecretKey, k,
		OptionPreviousSecretKeys, []SecretKey{k})

	req, rep := pair(t, inprocAddr(t), k, OptionSecretKey, k)
	done := echo(rep, 1, "re: ")
	mustSet(t, req, mangos.OptionRecvDeadline, 5*time.Second)
	if err := req.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if b, err := req.Recv(); err != nil || string(b) != "re: hello" {
		t.Fatalf("round trip: %q, %v", b, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return map[string]*Socket{"fresh REP": s, "REQ after round trip": req, "REP after round trip": rep}
}

// TestSecretKeyNeverPrinted applies every fmt verb to a SecretKey and to
// values and sockets that hold one, and logs them with slog's text and
// JSON handlers; no output may contain the secret in any encoding.
func TestSecretKeyNeverPrinted(t *testing.T) {
	k, raw := secretFixture(t)
	f := newLeakFinder(raw)
	values := holders(k)
	for name, s := range socketsWithKey(t, k) {
		values["*Socket, "+name] = s
		values["struct holding *Socket, "+name] = struct{ s *Socket }{s}
	}
	check := func(what, out string) {
		t.Helper()
		if leak := f.find(out); leak != "" {
			t.Errorf("%s: %s in %q", what, leak, out)
		}
	}
	for name, v := range values {
		for _, verb := range printVerbs {
			check(verb+" of "+name, fmt.Sprintf(verb, v))
		}
		check("Sprint of "+name, fmt.Sprint(v))
		check("Sprintln of "+name, fmt.Sprintln(v, v))
		check("Errorf of "+name, fmt.Errorf("wrapped %v: %w", v, ErrBadKey).Error())
	}

	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
	} {
		for name, v := range values {
			var buf bytes.Buffer
			log := slog.New(h.new(&buf))
			log.Info("message", "value", v)
			log.Info("message", slog.Any("value", v), slog.Group("g", "value", v))
			log.With("value", v).Info(fmt.Sprint(v))
			check(h.name+" handler, "+name, buf.String())
		}
	}

	// What the key does print.
	want := "SecretKey(public=" + k.Public().String() + ")"
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%b", "%U", "%t"} {
		if got := fmt.Sprintf(verb, k); got != want {
			t.Errorf("%s: got %q, want %q", verb, got, want)
		}
	}
	if got := fmt.Sprintf("%-60v|", k); got != want+strings.Repeat(" ", 60-len(want))+"|" {
		t.Errorf("%%-60v: got %q", got)
	}
	if got := fmt.Sprintf("%60v", k); got != strings.Repeat(" ", 60-len(want))+want {
		t.Errorf("%%60v: got %q", got)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "key", k)
	if !strings.Contains(buf.String(), `"key":"`+want+`"`) {
		t.Errorf("json log: %s", buf.String())
	}
	if got := fmt.Sprint(SecretKey{}); got != "SecretKey(none)" {
		t.Errorf("zero key prints %q", got)
	}
}

// TestSecretKeyValueSemantics: copies of a key are the same key, the zero
// value is no key, and Equal compares the secret.
func TestSecretKeyValueSemantics(t *testing.T) {
	k, raw := secretFixture(t)
	c := k
	if !c.Equal(k) || c.Public() != k.Public() || c.Reveal() != k.Reveal() || c.IsZero() {
		t.Fatal("a copy is not the same key")
	}
	if k.Reveal() != z85Encode(raw[:]) {
		t.Fatal("Reveal does not give the secret")
	}
	back, err := ParseSecretKey(k.Reveal())
	if err != nil || !back.Equal(k) || back.Public() != k.Public() {
		t.Fatalf("Reveal does not parse back: %v", err)
	}
	other := mustKey(t)
	if other.Equal(k) || k.Equal(SecretKey{}) || (SecretKey{}).Equal(k) {
		t.Fatal("different keys are Equal")
	}
	var zero SecretKey
	if !zero.IsZero() || zero.Public() != (PublicKey{}) || !zero.Equal(SecretKey{}) {
		t.Fatal("zero value")
	}
	// Reading the key again after the bytes it was made from changed.
	raw2 := raw
	k2, _ := NewSecretKey(raw2[:])
	clear(raw2[:])
	if !k2.Equal(k) {
		t.Fatal("NewSecretKey does not copy its input")
	}
}

// TestSocketPrintsNoSessionKeys: while a REP context holds a delivered
// request (and with it the session's reply keys) and a REQ context holds
// its outstanding request, every fmt verb and slog print only the fixed
// description of the socket or context.
func TestSocketPrintsNoSessionKeys(t *testing.T) {
	sk := mustKey(t)
	rep := newRep(t, sk)
	req := newReq(t, sk.Public(), OptionSecretKey, mustKey(t))
	listenOn(t, rep, "inproc")(req)
	rc, err := rep.OpenContext()
	if err != nil {
		t.Fatal(err)
	}
	qc, err := req.OpenContext()
	if err != nil {
		t.Fatal(err)
	}
	if err := qc.Send([]byte("hold")); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Recv(); err != nil { // rc now holds the reply keys
		t.Fatal(err)
	}
	for _, v := range []any{rep, req, rc, qc} {
		want := fmt.Sprint(v)
		if !strings.HasPrefix(want, "secsock.Socket(") && !strings.HasPrefix(want, "context of secsock.Socket(") {
			t.Fatalf("description %q", want)
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%c", "%U", "%e", "%g", "%t", "%10.3v", "%-20s"} {
			if got := fmt.Sprintf(verb, v); got != want {
				t.Errorf("%s of %T printed %q, want only %q", verb, v, got, want)
			}
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "sock", v)
		if !strings.Contains(buf.String(), strconv.Quote(want)[1:len(strconv.Quote(want))-1]) {
			t.Errorf("slog printed %s", buf.String())
		}
	}
	if err := rc.Send([]byte("done")); err != nil {
		t.Fatal(err)
	}
}
