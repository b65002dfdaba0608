package secsock

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
)

// The key pairs from libzmq's CURVE tests (tests/testutil_security.cpp),
// as printed by zmq_curve_keypair: ZeroMQ keys paste into secsock files.
const (
	zmqServerPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	zmqServerSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
	zmqClientPublic = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
	zmqClientSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
)

// noSecret fails the test if text contains the secret's text.
func noSecret(t *testing.T, text string, k SecretKey) {
	t.Helper()
	if strings.Contains(text, k.Reveal()) {
		t.Fatalf("secret key text leaked into %q", text)
	}
}

func TestZeroMQKeysPasteIn(t *testing.T) {
	for _, kp := range [][2]string{{zmqServerPublic, zmqServerSecret}, {zmqClientPublic, zmqClientSecret}} {
		data := "# secsock secret key v1\npublic-key: " + kp[0] + "\nsecret-key: " + kp[1] + "\n"
		k, err := ParseSecretKeyFile([]byte(data))
		if err != nil {
			t.Fatalf("libzmq key pair: %v", err)
		}
		if k.Public().String() != kp[0] || k.Reveal() != kp[1] {
			t.Fatalf("libzmq key pair does not round trip")
		}
		// The public-key line is optional.
		if k2, err := ParseSecretKeyFile([]byte("# secsock secret key v1\nsecret-key: " + kp[1] + "\n")); err != nil || !k2.Equal(k) {
			t.Fatalf("secret-key line alone: %v", err)
		}
		// A bare ZeroMQ public key is a public key file.
		ak, err := ParsePublicKeyFile([]byte(kp[0] + "\n"))
		if err != nil || ak.Key != k.Public() || ak.Name != "" {
			t.Fatalf("bare ZeroMQ public key: %v %+v", err, ak)
		}
	}
}

func TestSecretKeyFileWriteLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "server.key")
	k := mustKey(t)
	if err := WriteSecretKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !bytes.Equal(data, FormatSecretKeyFile(k)) {
		t.Fatalf("file contents:\n%s", data)
	}
	if !strings.HasPrefix(string(data), "# secsock secret key v1 (keep private)\npublic-key: "+k.Public().String()+"\n") {
		t.Fatalf("header or public key line missing:\n%s", data)
	}
	got, err := LoadSecretKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(k) || got.Public() != k.Public() {
		t.Fatal("loaded key differs")
	}

	// Never overwrite, and leave the existing file as it was.
	err = WriteSecretKeyFile(path, mustKey(t))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want fs.ErrExist", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Fatal("existing key file was changed")
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want 1", len(entries))
	}
	if err := WriteSecretKeyFile(filepath.Join(dir, "zero.key"), SecretKey{}); err == nil {
		t.Fatal("wrote the zero key")
	}
	if err := WriteSecretKeyFile(filepath.Join(dir, "missing", "x.key"), k); err == nil {
		t.Fatal("wrote into a missing directory")
	}
}

func TestSecretKeyFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	path := filepath.Join(t.TempDir(), "client.key")
	k := mustKey(t)
	if err := WriteSecretKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []fs.FileMode{0o640, 0o604, 0o660, 0o644, 0o610, 0o601} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSecretKeyFile(path)
		if !errors.Is(err, ErrKeyFilePermissions) {
			t.Fatalf("mode %04o: got %v, want ErrKeyFilePermissions", mode, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, path) || !strings.Contains(msg, "chmod 600") {
			t.Fatalf("mode %04o: message %q should name the file and the fix", mode, msg)
		}
		noSecret(t, msg, k)
	}
	for _, mode := range []fs.FileMode{0o600, 0o400, 0o700} {
		os.Chmod(path, mode)
		if _, err := LoadSecretKeyFile(path); err != nil {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	if _, err := LoadSecretKeyFile(filepath.Dir(path)); err == nil {
		t.Fatal("loaded a directory")
	}
	if _, err := LoadSecretKeyFile(path + ".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestParseSecretKeyFileErrors(t *testing.T) {
	k := mustKey(t)
	other := mustKey(t)
	pub, sec := k.Public().String(), k.Reveal()
	cases := []struct {
		name, data string
		line       int
		want       string
	}{
		{"empty", "", 0, "empty file"},
		{"bare key", sec + "\n", 1, "first line must be"},
		{"no header", "public-key: " + pub + "\nsecret-key: " + sec + "\n", 1, "first line must be"},
		{"public file", "# secsock public key v1\n" + pub + "\n", 1, "public key file"},
		{"version 2", "# secsock secret key v2\nsecret-key: " + sec + "\n", 1, "unsupported"},
		{"no secret", "# secsock secret key v1\npublic-key: " + pub + "\n", 0, "no secret-key"},
		{"bad secret", "# secsock secret key v1\nsecret-key: " + sec[:39] + "\n", 2, "secret-key: not a key"},
		{"mismatch", "# secsock secret key v1\npublic-key: " + other.Public().String() + "\nsecret-key: " + sec + "\n", 2, "does not match"},
		{"two secrets", "# secsock secret key v1\nsecret-key: " + sec + "\n\nsecret-key: " + sec + "\n", 4, "second secret-key"},
		{"two publics", "# secsock secret key v1\npublic-key: " + pub + "\npublic-key: " + pub + "\nsecret-key: " + sec + "\n", 3, "second public-key"},
		{"unknown field", "# secsock secret key v1\nsecret-key: " + sec + "\ncomment: " + sec + "\n", 3, "unknown field"},
		{"no colon", "# secsock secret key v1\nsecret key here\n", 2, "expected"},
		{"long line", "# secsock secret key v1\n" + strings.Repeat("x", 5000) + "\n", 2, "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSecretKeyFile([]byte(c.data))
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FileError", err)
			}
			if fe.Line != c.line || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %q (line %d), want %q on line %d", err, fe.Line, c.want, c.line)
			}
			noSecret(t, err.Error(), k)
		})
	}
	// Comments, blank lines, CRLF and spacing are fine.
	data := "\r\n# secsock secret key v1 (keep private)\r\n# made for tests\r\n\r\n  secret-key :   " + sec + "  \r\npublic-key:" + pub + "\r\n"
	if got, err := ParseSecretKeyFile([]byte(data)); err != nil || !got.Equal(k) {
		t.Fatalf("lenient layout: %v", err)
	}
}

func TestPublicKeyFile(t *testing.T) {
	dir := t.TempDir()
	k := mustKey(t)
	path := filepath.Join(dir, "alice.pub")
	if err := WritePublicKeyFile(path, k.Public(), "alice"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if want := "# secsock public key v1\n" + k.Public().String() + " alice\n"; string(data) != want {
		t.Fatalf("got %q want %q", data, want)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	got, err := LoadPublicKeyFile(path)
	if err != nil || got != k.Public() {
		t.Fatalf("load: %v", err)
	}
	if err := WritePublicKeyFile(path, k.Public(), ""); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite: %v", err)
	}
	if err := WritePublicKeyFile(filepath.Join(dir, "bad.pub"), k.Public(), "two\nlines"); err == nil {
		t.Fatal("accepted a name with a newline")
	}
	if err := WritePublicKeyFile(filepath.Join(dir, "weak.pub"), PublicKey{}, ""); !errors.Is(err, ErrWeakKey) {
		t.Fatalf("weak key: %v", err)
	}

	// A secret key file is not a public key, and the error does not show it.
	secPath := filepath.Join(dir, "alice.key")
	if err := WriteSecretKeyFile(secPath, k); err != nil {
		t.Fatal(err)
	}
	_, err = LoadPublicKeyFile(secPath)
	if err == nil || !strings.Contains(err.Error(), "secret key file") || !strings.Contains(err.Error(), secPath) {
		t.Fatalf("secret file as public: %v", err)
	}
	noSecret(t, err.Error(), k)

	for name, data := range map[string]string{
		"empty":    "",
		"comments": "# secsock public key v1\n# nothing\n",
		"two keys": k.Public().String() + "\n" + mustKey(t).Public().String() + "\n",
		"v2":       "# secsock public key v2\n" + k.Public().String() + "\n",
		"garbage":  "hello\n",
	} {
		if _, err := ParsePublicKeyFile([]byte(data)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	// Hex and base64 forms are accepted too.
	pk := k.Public()
	for _, text := range []string{
		hex.EncodeToString(pk[:]),
		strings.ToUpper(hex.EncodeToString(pk[:])),
		base64.StdEncoding.EncodeToString(pk[:]),
		base64.RawURLEncoding.EncodeToString(pk[:]),
	} {
		if ak, err := ParsePublicKeyFile([]byte(text)); err != nil || ak.Key != pk {
			t.Errorf("%s: %v", text, err)
		}
	}
}

func TestParseAuthorizedKeys(t *testing.T) {
	a, b, c := mustKey(t).Public(), mustKey(t).Public(), mustKey(t).Public()
	file := strings.Join([]string{
		"# secsock authorized keys v1",
		"",
		a.String() + " alice@laptop",
		"   # indented comment",
		b.String() + "\t# bob (ops)\r",
		"# secsock public key v1", // a concatenated .pub file
		c.String(),
		"",
	}, "\n")
	aks, err := ParseAuthorizedKeys(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	want := AuthorizedKeys{{a, "alice@laptop"}, {b, "bob (ops)"}, {c, ""}}
	if len(aks) != len(want) {
		t.Fatalf("got %d entries", len(aks))
	}
	for i := range want {
		if aks[i] != want[i] {
			t.Fatalf("entry %d: got %+v want %+v", i, aks[i], want[i])
		}
	}
	if ks := aks.Keys(); len(ks) != 3 || ks[1] != b {
		t.Fatalf("Keys: %v", ks)
	}
	if n, ok := aks.Name(b); !ok || n != "bob (ops)" {
		t.Fatalf("Name: %q %v", n, ok)
	}
	if _, ok := aks.Name(mustKey(t).Public()); ok {
		t.Fatal("Name of an unknown key")
	}
	// Round trip through the formatter.
	again, err := ParseAuthorizedKeys(bytes.NewReader(FormatAuthorizedKeys(aks)))
	if err != nil || len(again) != 3 || again[0] != aks[0] || again[1] != aks[1] || again[2] != aks[2] {
		t.Fatalf("round trip: %v %+v", err, again)
	}
	// An empty file is an empty, non-nil list: nobody is authorized.
	empty, err := ParseAuthorizedKeys(strings.NewReader("# nobody yet\n"))
	if err != nil || empty == nil || len(empty) != 0 || empty.Keys() == nil {
		t.Fatalf("empty file: %v %v", err, empty)
	}

	secret := mustKey(t)
	bad := []struct {
		name, data string
		line       int
		want       error
		text       string
	}{
		{"bad key", a.String() + "\n\n" + "notakey alice\n", 3, ErrBadKey, "not a key"},
		{"short key", a.String()[:39] + "\n", 1, ErrBadKey, "not a key"},
		{"weak key", strings.Repeat("0", 40) + " zero\n", 1, ErrWeakKey, "weak"},
		{"duplicate", a.String() + " a\n" + b.String() + "\n" + a.String() + " again\n", 3, nil, "already listed on line 1"},
		{"secret line", "secret-key: " + secret.Reveal() + "\n", 1, nil, "secret key does not belong"},
		{"secret file", string(FormatSecretKeyFile(secret)), 1, nil, "secret key file"},
		{"control char", a.String() + " al\x01ice\n", 1, nil, "control character"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseAuthorizedKeys(strings.NewReader(c.data))
			var fe *FileError
			if !errors.As(err, &fe) || fe.Line != c.line || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("got %v, want %q on line %d", err, c.text, c.line)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want errors.Is %v", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "secsock: line ") {
				t.Fatalf("message %q should start with the line", err)
			}
			noSecret(t, err.Error(), secret)
		})
	}

	path := filepath.Join(t.TempDir(), "authorized_keys")
	os.WriteFile(path, []byte(a.String()+"\nbroken\n"), 0o644)
	_, err = LoadAuthorizedKeysFile(path)
	if err == nil || !strings.Contains(err.Error(), path+":2: ") {
		t.Fatalf("file error should name file and line: %v", err)
	}
}

func TestReloadAuthorizedKeysWhileServing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "authorized_keys")
	serverKey, alice, bob := mustKey(t), mustKey(t), mustKey(t)
	write := func(aks AuthorizedKeys) {
		t.Helper()
		tmp := path + ".new"
		if err := os.WriteFile(tmp, FormatAuthorizedKeys(aks), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(AuthorizedKeys{{alice.Public(), "alice"}})

	addr := inprocAddr(t)
	aliceReq, rep := pair(t, addr, serverKey, OptionSecretKey, alice)
	aks, err := rep.ReloadAuthorizedKeys(path)
	if err != nil || len(aks) != 1 || aks[0].Name != "alice" {
		t.Fatalf("first load: %v %+v", err, aks)
	}
	bobReq, err := NewReqSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer bobReq.Close()
	mustSet(t, bobReq, OptionMechanism, MechanismCurve, OptionServerKey, serverKey.Public(), OptionSecretKey, bob,
		mangos.OptionRecvDeadline, 5*time.Second)
	if err := bobReq.Dial(addr); err != nil {
		t.Fatal(err)
	}

	// Alice's request is delivered; the list changes before the reply.
	if err := aliceReq.Send([]byte("in flight")); err != nil {
		t.Fatal(err)
	}
	got, err := rep.Recv()
	if err != nil || string(got) != "in flight" {
		t.Fatalf("rep recv: %q %v", got, err)
	}
	write(AuthorizedKeys{{bob.Public(), "bob"}})
	if _, err := rep.ReloadAuthorizedKeys(path); err != nil {
		t.Fatal(err)
	}
	if err := rep.Send([]byte("still answered")); err != nil {
		t.Fatal(err)
	}
	if reply, err := aliceReq.Recv(); err != nil || string(reply) != "still answered" {
		t.Fatalf("in-flight request after reload: %q %v", reply, err)
	}

	done := echo(rep, 1, "hi ")
	if err := aliceReq.Authenticate(); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("alice after removal: %v, want ErrNotAuthorized", err)
	}
	if err := bobReq.Send([]byte("bob")); err != nil {
		t.Fatal(err)
	}
	if reply, err := bobReq.Recv(); err != nil || string(reply) != "hi bob" {
		t.Fatalf("bob after reload: %q %v", reply, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A broken file is refused and the current list stays.
	os.WriteFile(path, []byte(alice.Public().String()+"\nnot a key\n"), 0o644)
	if _, err := rep.ReloadAuthorizedKeys(path); err == nil || !strings.Contains(err.Error(), ":2: ") {
		t.Fatalf("broken file: %v", err)
	}
	if _, err := rep.ReloadAuthorizedKeys(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
	v, _ := rep.GetOption(OptionAuthorizedKeys)
	if ks := v.([]PublicKey); len(ks) != 1 || ks[0] != bob.Public() {
		t.Fatalf("list after failed reload: %v", ks)
	}
	echo(rep, 1, "") // answers the refusal inside Recv; ends when rep closes
	if err := aliceReq.Authenticate(); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("alice after failed reload: %v", err)
	}

	if _, err := aliceReq.ReloadAuthorizedKeys(path); !errors.Is(err, mangos.ErrProtoOp) {
		t.Fatalf("REQ socket: %v", err)
	}
}

// keyFileFuzzSeeds are the f.Add seeds of the key file fuzz targets, by
// name; each is also committed as testdata/fuzz/<Target>/seed-<name>
// (TestKeyFileFuzzCorpora checks).
var keyFileFuzzSeeds = map[string]string{
	"empty":           "",
	"secret-file":     "# secsock secret key v1 (keep private)\npublic-key: " + zmqServerPublic + "\nsecret-key: " + zmqServerSecret + "\n",
	"secret-crlf":     "# secsock secret key v1\r\nsecret-key: " + zmqClientSecret + "\r\n",
	"public-file":     "# secsock public key v1\n" + zmqClientPublic + " alice\n",
	"bare-zmq-key":    zmqServerPublic,
	"authorized":      "# secsock authorized keys v1\n" + zmqClientPublic + " # alice\n\n" + zmqServerPublic + "\tbob\n",
	"duplicate":       zmqClientPublic + "\n" + zmqClientPublic + "\n",
	"secret-line":     "secret-key: " + zmqClientSecret,
	"weak-key":        strings.Repeat("0", 40),
	"hash-name":       zmqClientPublic + " # #hash\n",
	"secret-mismatch": "# secsock secret key v1\npublic-key: " + zmqClientPublic + "\nsecret-key: " + zmqServerSecret + "\n",
	"unknown-version": "# secsock public key v9\n" + zmqClientPublic + "\n",
}

var keyFileFuzzTargets = []string{"FuzzParseSecretKeyFile", "FuzzParsePublicKeyFile", "FuzzParseAuthorizedKeys"}

func addKeyFileSeeds(f *testing.F) {
	for _, s := range keyFileFuzzSeeds {
		f.Add([]byte(s))
	}
}

var updateKeyFileFuzz = flag.Bool("update-keyfile-fuzz", false, "rewrite the key file fuzz seed files from keyFileFuzzSeeds")

// TestKeyFileFuzzCorpora checks that every seed is committed in Go's
// corpus file format; -update-keyfile-fuzz rewrites them.
func TestKeyFileFuzzCorpora(t *testing.T) {
	for _, target := range keyFileFuzzTargets {
		dir := filepath.Join("testdata", "fuzz", target)
		for name, s := range keyFileFuzzSeeds {
			path := filepath.Join(dir, "seed-"+name)
			want := "go test fuzz v1\n[]byte(" + strconv.Quote(s) + ")\n"
			if *updateKeyFileFuzz {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := os.ReadFile(path); err != nil || string(got) != want {
				t.Errorf("%s: seed %s missing or stale (run go test -run TestKeyFileFuzzCorpora -update-keyfile-fuzz): %v", target, name, err)
			}
		}
	}
}

// tokens returns the white-space separated words of data of at least 20
// bytes: no error message may repeat one, since it could be a secret.
func longTokens(data []byte) []string {
	var out []string
	for _, w := range strings.FieldsFunc(string(data), func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '\r' || r == ':' }) {
		if len(w) >= 20 {
			out = append(out, w)
		}
	}
	return out
}

func checkNoEcho(t *testing.T, data []byte, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, w := range longTokens(data) {
		if strings.Contains(err.Error(), w) {
			t.Fatalf("error %q repeats input text %q", err, w)
		}
	}
}

func FuzzParseSecretKeyFile(f *testing.F) {
	addKeyFileSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseSecretKeyFile(data)
		checkNoEcho(t, data, err)
		if err != nil {
			return
		}
		enc := FormatSecretKeyFile(k)
		k2, err := ParseSecretKeyFile(enc)
		if err != nil {
			t.Fatalf("re-parse of formatted key: %v", err)
		}
		if !k2.Equal(k) || k2.Public() != k.Public() {
			t.Fatal("round trip changed the key")
		}
		if !bytes.Equal(FormatSecretKeyFile(k2), enc) {
			t.Fatal("format is not canonical")
		}
	})
}

func FuzzParsePublicKeyFile(f *testing.F) {
	addKeyFileSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ak, err := ParsePublicKeyFile(data)
		checkNoEcho(t, data, err)
		if err != nil {
			return
		}
		enc := FormatPublicKeyFile(ak.Key, ak.Name)
		ak2, err := ParsePublicKeyFile(enc)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if ak2 != ak {
			t.Fatalf("round trip: %+v != %+v", ak2, ak)
		}
		if !bytes.Equal(FormatPublicKeyFile(ak2.Key, ak2.Name), enc) {
			t.Fatal("format is not canonical")
		}
	})
}

func FuzzParseAuthorizedKeys(f *testing.F) {
	addKeyFileSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		aks, err := ParseAuthorizedKeys(bytes.NewReader(data))
		checkNoEcho(t, data, err)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FileError", err)
			}
			return
		}
		enc := FormatAuthorizedKeys(aks)
		aks2, err := ParseAuthorizedKeys(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if len(aks2) != len(aks) {
			t.Fatalf("round trip: %d entries, want %d", len(aks2), len(aks))
		}
		for i := range aks {
			if aks[i] != aks2[i] {
				t.Fatalf("entry %d: %+v != %+v", i, aks2[i], aks[i])
			}
		}
		if !bytes.Equal(FormatAuthorizedKeys(aks2), enc) {
			t.Fatal("format is not canonical")
		}
	})
}

// TestReloadAuthorizedKeysUnderLoad reloads the file continuously while
// an authorized client sends requests from several contexts: none fails.
func TestReloadAuthorizedKeysUnderLoad(t *testing.T) {
	dir := t.TempDir()
	serverKey, alice := mustKey(t), mustKey(t)
	files := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}
	os.WriteFile(files[0], FormatAuthorizedKeys(AuthorizedKeys{{alice.Public(), "alice"}}), 0o644)
	os.WriteFile(files[1], FormatAuthorizedKeys(AuthorizedKeys{{mustKey(t).Public(), "other"}, {alice.Public(), "alice"}}), 0o644)
	req, rep := pair(t, inprocAddr(t), serverKey, OptionSecretKey, alice)
	if _, err := rep.ReloadAuthorizedKeys(files[0]); err != nil {
		t.Fatal(err)
	}
	serveAll(rep)

	stop := make(chan struct{})
	var reloads atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := rep.ReloadAuthorizedKeys(files[reloads.Load()%2]); err != nil {
				t.Error(err)
			}
			reloads.Add(1)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	// Each worker sends at least each requests, and keeps going (up to
	// a bound) until several reloads have run during the traffic.
	const workers, each, minReloads, most = 4, 25, 10, 20000
	var sent atomic.Int64
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			c, err := req.OpenContext()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for i := 0; i < most && (i < each || reloads.Load() < minReloads); i++ {
				msg := []byte{byte(w), byte(i), byte(i >> 8)}
				if err := c.Send(msg); err != nil {
					errs <- err
					return
				}
				got, err := c.Recv()
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, msg) {
					errs <- errors.New("reply mismatch")
					return
				}
				sent.Add(1)
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatalf("request during reloads: %v", err)
		}
	}
	close(stop)
	<-done
	if n := reloads.Load(); n < minReloads {
		t.Fatalf("only %d reloads ran during %d requests", n, sent.Load())
	}
	if st := rep.Stats(); st.Rejected[ReasonNotAuthorized] != 0 || st.Opened != uint64(sent.Load()) {
		t.Fatalf("stats %+v", st)
	}
}
