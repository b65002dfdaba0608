package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secsock/secsock"
)

// Tests of the operations side of the command: help, version, key
// fingerprints and imports, JSON output, timestamps, rep's counters,
// configuration print-out, key reload and metrics, the device's sides
// and SIGHUP, and TLS transports.

var stampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z secsock (rep|device): `)

func TestHelpAndVersion(t *testing.T) {
	dir, tr := t.TempDir(), &transcript{}
	if r := mustRun(t, tr, dir, "", "help", "help"); !strings.Contains(r.stdout, "Usage: secsock help") {
		t.Fatalf("help help: %q", r.stdout)
	}
	// The hint printed for an unknown command works.
	r := runCmd(t, tr, dir, "", "frobnicate")
	wantFail(t, r, 2, "unknown command", "(see 'secsock help')")
	mustRun(t, tr, dir, "", "help")
	wantFail(t, runCmd(t, tr, dir, "", "help", "frobnicate"), 2, "unknown command", "(see 'secsock help')")
	for _, cmd := range []string{"fingerprint", "import", "version", "help"} {
		if r := mustRun(t, tr, dir, "", "help", cmd); !strings.Contains(r.stdout, "Usage: secsock "+cmd) || !strings.Contains(r.stdout, "Example") {
			t.Fatalf("help %s: %q", cmd, r.stdout)
		}
	}
	v := mustRun(t, tr, dir, "", "version").stdout
	for _, want := range []string{"secsock " + secsock.Version + "\n", "protocol: " + secsock.Protocol, "module: github.com/secsock/secsock", "revision: ", "go: go1."} {
		if !strings.Contains(v, want) {
			t.Errorf("version output lacks %q:\n%s", want, v)
		}
	}
	if got := mustRun(t, tr, dir, "", "--version").stdout; got != v {
		t.Errorf("--version differs from version")
	}
	var vi versionInfo
	if err := json.Unmarshal([]byte(mustRun(t, tr, dir, "", "version", "--json").stdout), &vi); err != nil || vi.Version != secsock.Version || vi.Protocol != secsock.Protocol {
		t.Errorf("version --json: %+v %v", vi, err)
	}
}

func TestKeygenFingerprintImport(t *testing.T) {
	dir, tr := t.TempDir(), &transcript{}
	// The help's own example, into a directory that does not exist.
	r := mustRun(t, tr, dir, "", "keygen", "--name", "alice@laptop", "keys/alice")
	if !strings.Contains(r.stderr, "made directory keys") || strings.Contains(r.stderr, "tmp") {
		t.Fatalf("keygen keys/alice: stderr %q", r.stderr)
	}
	if fi, err := os.Stat(filepath.Join(dir, "keys")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("keys/: %v %v", fi.Mode(), err)
	}
	alice, err := secsock.ParsePublicKey(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	var kj keyJSON
	r = mustRun(t, tr, dir, "", "keygen", "--json", "keys/deep/bob")
	if err := json.Unmarshal([]byte(r.stdout), &kj); err != nil || r.stderr != "" {
		t.Fatalf("keygen --json: %q %q %v", r.stdout, r.stderr, err)
	}
	bob, err := secsock.ParsePublicKey(kj.PublicKey)
	if err != nil || kj.Fingerprint != bob.Fingerprint() || kj.SecretKeyFile != "keys/deep/bob.key" || kj.PublicKeyFile != "keys/deep/bob.pub" || kj.Name != "bob" {
		t.Fatalf("keygen --json: %+v %v", kj, err)
	}
	if len(kj.Fingerprint) != secsock.FingerprintSize {
		t.Fatalf("fingerprint %q", kj.Fingerprint)
	}

	// Fingerprints of a .pub, a .key, key text and an authorized keys file.
	fp := func(args ...string) string {
		return mustRun(t, tr, dir, "", append([]string{"fingerprint"}, args...)...).stdout
	}
	if got, want := fp("keys/alice.pub"), alice.Fingerprint()+" "+alice.String()+" alice@laptop\n"; got != want {
		t.Fatalf("fingerprint alice.pub: %q, want %q", got, want)
	}
	if got := fp("keys/alice.key"); !strings.HasPrefix(got, alice.Fingerprint()+" "+alice.String()) {
		t.Fatalf("fingerprint alice.key: %q", got)
	}
	if got := fp(bob.String()); got != bob.Fingerprint()+" "+bob.String()+"\n" {
		t.Fatalf("fingerprint KEY: %q", got)
	}
	pa, _ := os.ReadFile(filepath.Join(dir, "keys/alice.pub"))
	pb, _ := os.ReadFile(filepath.Join(dir, "keys/deep/bob.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), append(pa, pb...), 0o644)
	if got := fp("authorized_keys"); strings.Count(got, "\n") != 2 || !strings.Contains(got, bob.Fingerprint()+" "+bob.String()+" bob\n") {
		t.Fatalf("fingerprint authorized_keys: %q", got)
	}
	wantFail(t, runCmd(t, tr, dir, "", "fingerprint", "nope"), 1, "no such file")

	// Imports: a czmq secret certificate, a public one, curve_keygen
	// output on stdin; a mismatched pair and junk are refused.
	fixtures, _ := filepath.Abs("testdata/zmq")
	const serverPub, clientPub = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
	r = mustRun(t, tr, dir, "", "import", filepath.Join(fixtures, "server.cert_secret"), "imported/server")
	if r.stdout != serverPub+"\n" || !strings.Contains(r.stderr, "czmq zcert") {
		t.Fatalf("import zcert: %q %q", r.stdout, r.stderr)
	}
	if got := mustRun(t, tr, dir, "", "pubkey", "imported/server.key").stdout; got != serverPub+"\n" {
		t.Fatalf("pubkey of imported key: %q", got)
	}
	if got := fp("imported/server.pub"); !strings.HasSuffix(got, serverPub+" test server\n") {
		t.Fatalf("imported .pub keeps the zcert name: %q", got)
	}
	mustRun(t, tr, dir, "", "import", "-q", filepath.Join(fixtures, "server.cert"), "imported/server-public")
	if _, err := os.Stat(filepath.Join(dir, "imported/server-public.key")); !os.IsNotExist(err) {
		t.Fatalf("a public certificate made a .key: %v", err)
	}
	if got := fp("imported/server-public.pub"); !strings.Contains(got, serverPub) {
		t.Fatalf("public import: %q", got)
	}
	keygenOut, _ := os.ReadFile(filepath.Join(fixtures, "curve_keygen.txt"))
	r = mustRun(t, tr, dir, string(keygenOut), "import", "--json", "-", "imported/client")
	if err := json.Unmarshal([]byte(r.stdout), &kj); err != nil || kj.PublicKey != clientPub || kj.SecretKeyFile != "imported/client.key" {
		t.Fatalf("import curve_keygen: %q %v", r.stdout, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "imported/client.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("imported key mode %v %v", fi.Mode(), err)
	}
	wantFail(t, runCmd(t, tr, dir, "", "import", filepath.Join(fixtures, "server.cert_secret"), "imported/server"), 1, "already exists")
	wantFail(t, runCmd(t, tr, dir, "", "import", filepath.Join(fixtures, "mismatched.cert_secret"), "bad"), 1, "not the secret key's public key")
	wantFail(t, runCmd(t, tr, dir, "", "import", filepath.Join(fixtures, "README"), "bad"), 1, "neither a czmq zcert certificate nor curve_keygen output")
	if _, err := os.Stat(filepath.Join(dir, "bad.pub")); !os.IsNotExist(err) {
		t.Fatal("a refused import wrote a file")
	}

	// An imported pair serves: libzmq's test server key answers a
	// libzmq test client key.
	rep := start(t, tr, dir, "rep", "--bind", "tcp://127.0.0.1:0", "--key", "imported/server.key", "--authorized", "imported/client.pub", "-D", "zmq keys work")
	m, _ := rep.waitLine(t, 0, listenRE)
	if r := mustRun(t, tr, dir, "", "req", "--connect", m[1], "--server-key", "imported/server.pub", "--key", "imported/client.key", "-D", "x"); r.stdout != "zmq keys work\n" {
		t.Fatalf("imported keys: %q", r.stdout)
	}
	all := tr.String()
	for _, secret := range []string{"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6", "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"} {
		if strings.Contains(all, secret) {
			t.Error("an imported secret key was printed")
		}
	}
}

// get fetches url (loopback) and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

var metricsRE = regexp.MustCompile(`metrics on (http://127\.0\.0\.1:[0-9]+)/metrics`)

func TestRepOperations(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("signals")
	}
	dir, tr := t.TempDir(), &transcript{}
	pub := map[string]secsock.PublicKey{}
	for _, n := range []string{"k0", "k1", "k2", "alice", "bob", "mallory"} {
		k, err := secsock.ParsePublicKey(strings.TrimSpace(mustRun(t, tr, dir, "", "keygen", "-q", n).stdout))
		if err != nil {
			t.Fatal(err)
		}
		pub[n] = k
	}
	pa, _ := os.ReadFile(filepath.Join(dir, "alice.pub"))
	pb, _ := os.ReadFile(filepath.Join(dir, "bob.pub"))
	auth := filepath.Join(dir, "authorized_keys")
	os.WriteFile(auth, append(pa, pb...), 0o644)

	// --print-config: what it would serve, without secrets, and no serving.
	cfgArgs := []string{"rep", "--key", "k1.key", "--previous-key", "k0.key", "--authorized", "authorized_keys", "--bind", "tcp://127.0.0.1:0"}
	r := mustRun(t, tr, dir, "", append(cfgArgs, "--print-config")...)
	for _, want := range []string{
		"server key:      " + pub["k1"].String() + " (fingerprint " + pub["k1"].Fingerprint() + ") from k1.key (secret redacted)",
		"previous key:    " + pub["k0"].String(), "client policy:   authorized keys only; anonymous clients refused",
		"authorized keys: 2 keys from authorized_keys", pub["alice"].Fingerprint() + " " + pub["alice"].String() + " alice",
		"freshness:       2m0s (max clock skew 10s)", "budget:          2048", "epoch keys:", "replay store:", "listen:          tcp://127.0.0.1:0",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "listening") {
		t.Error("--print-config served")
	}
	var rc repConfig
	r = mustRun(t, tr, dir, "", append(cfgArgs, "--print-config", "--json", "--allow-anonymous")...)
	if err := json.Unmarshal([]byte(r.stdout), &rc); err != nil || len(rc.Authorized) != 2 || rc.Authorized[1].Name != "bob" || !rc.AllowAnonymous || rc.ServerKey.Fingerprint != pub["k1"].Fingerprint() {
		t.Fatalf("--print-config --json: %v\n%s", err, r.stdout)
	}

	// A server with -v, metrics and a previous key.
	rep := start(t, tr, dir, append(cfgArgs, "-v", "--metrics", "127.0.0.1:0")...)
	m, _ := rep.waitLine(t, 0, listenRE)
	addr := m[1]
	rep.waitLine(t, 0, regexp.MustCompile(`also serving previous server key `+regexp.QuoteMeta(pub["k0"].String())))
	rep.waitLine(t, 0, regexp.MustCompile(`serving 2 authorized keys from authorized_keys; anonymous clients refused`))
	mm, _ := rep.waitLine(t, 0, metricsRE)
	for _, l := range strings.Split(rep.stderrText(), "\n") {
		if !stampRE.MatchString(l) && !strings.HasPrefix(l, "time=") { // slog's own lines with -v
			t.Errorf("log line without timestamp: %q", l)
		}
	}
	req := func(key, serverKey string, extra ...string) result {
		return runCmd(t, tr, dir, "", append([]string{"req", "--connect", addr, "--server-key", serverKey, "--key", key}, extra...)...)
	}
	for _, sk := range []string{"k1.pub", "k0.pub", "k1.pub"} {
		if r := req("alice.key", sk, "-D", "hi"); r.code != 0 || r.stdout != "hi\n" {
			t.Fatalf("alice via %s: %+v", sk, r)
		}
	}
	// req --check --json, accepted and refused.
	var cr checkResult
	r = req("alice.key", "k1.pub", "--check", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &cr); err != nil || !cr.OK || !cr.Authenticated || cr.ServerFingerprint != pub["k1"].Fingerprint() {
		t.Fatalf("check --json: %q %v", r.stdout, err)
	}
	r = req("mallory.key", "k1.pub", "--check", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &cr); err != nil || cr.OK || cr.Reason != "not-authorized" || !cr.Authenticated || r.code != 1 || r.stderr != "" {
		t.Fatalf("refused check --json: %+v %v %+v", r, err, cr)
	}

	// Metrics: per server key, by fingerprint; no key text anywhere.
	code, body := get(t, mm[1]+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`secsock_server_key_requests_total{role="current",server_key="` + pub["k1"].Fingerprint() + `",socket="rep"} 3`,
		`secsock_server_key_requests_total{role="previous",server_key="` + pub["k0"].Fingerprint() + `",socket="rep"} 1`,
		`secsock_messages_rejected_total{reason="not-authorized",socket="rep"} 1`,
		`secsock_requests_accepted_total{level="vouched",socket="rep"} 4`,
		`secsock_requests_retried_total{socket="rep"} 0`, "secsock_peers_limit", "go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for n, k := range pub {
		if strings.Contains(body, k.String()) {
			t.Errorf("/metrics contains the key text of %s", n)
		}
	}
	if code, body := get(t, mm[1]+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}

	// SIGHUP: rotate k1 -> previous, k2 -> current, drop k0; revoke bob.
	os.Rename(filepath.Join(dir, "k0.key"), filepath.Join(dir, "k0.key.old"))
	os.Rename(filepath.Join(dir, "k1.key"), filepath.Join(dir, "k0.key"))
	os.Rename(filepath.Join(dir, "k2.key"), filepath.Join(dir, "k1.key"))
	os.WriteFile(auth, pa, 0o644)
	from := rep.lines()
	rep.cmd.Process.Signal(syscall.SIGHUP)
	rep.waitLine(t, from, regexp.MustCompile(`reloaded 1 authorized key from authorized_keys and server key `+regexp.QuoteMeta(pub["k2"].String())+` \(fingerprint `+pub["k2"].Fingerprint()+`, 1 previous key\)`))
	for _, sk := range []string{"k2.pub", "k1.pub"} {
		if r := req("alice.key", sk, "-D", "rotated"); r.stdout != "rotated\n" {
			t.Fatalf("after reload, via %s: %+v", sk, r)
		}
	}
	wantFail(t, req("alice.key", "k0.pub", "-D", "x"), 1, "wrong server key")
	// The revoked client's rejection still names it.
	wantFail(t, req("bob.key", "k2.pub", "-D", "x"), 1, "not authorized")
	rep.waitLine(t, from, regexp.MustCompile(`rejected a request from client `+regexp.QuoteMeta(pub["bob"].String())+` \(bob, no longer authorized\): not-authorized`))
	// A reload with a broken key file keeps everything.
	os.WriteFile(filepath.Join(dir, "k1.key"), []byte("garbage"), 0o600)
	from = rep.lines()
	rep.cmd.Process.Signal(syscall.SIGHUP)
	rep.waitLine(t, from, regexp.MustCompile(`reload failed, keeping the previous keys: .*k1.key`))
	if r := req("alice.key", "k2.pub", "-D", "kept"); r.stdout != "kept\n" {
		t.Fatalf("after failed reload: %+v", r)
	}

	// SIGTERM: the counters, formatted, then a clean exit.
	from = rep.lines()
	rep.cmd.Process.Signal(syscall.SIGTERM)
	rep.waitLine(t, from, regexp.MustCompile(`served 6 requests; answered [0-9]+ itself; [0-9]+ retr(y|ies); rejected [0-9]+: forged=[0-9]+ not-authorized=2$`))
	select {
	case <-rep.done:
		if c := rep.cmd.ProcessState.ExitCode(); c != 0 {
			t.Fatalf("exit %d", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("rep did not stop on SIGTERM")
	}
	if strings.Contains(rep.stderrText(), "map[") {
		t.Error("counters printed as a Go map")
	}

	// --json: every line a JSON object; rejections with the reason, the
	// client's key, fingerprint and name.
	jr := start(t, tr, dir, "rep", "--bind", "tcp://127.0.0.1:0", "--key", "k0.key", "--authorized", "authorized_keys", "--json")
	jm, _ := jr.waitLine(t, 0, regexp.MustCompile(`"listen":"(tcp://127\.0\.0\.1:[0-9]+)"`))
	r = runCmd(t, tr, dir, "", "req", "--connect", jm[1], "--server-key", "k1.pub", "--key", "mallory.key", "-D", "x")
	wantFail(t, r, 1, "not authorized")
	lm, _ := jr.waitLine(t, 0, regexp.MustCompile(`^\{.*"reason":"not-authorized".*\}$`))
	var line map[string]any
	if err := json.Unmarshal([]byte(lm[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line["client"] != pub["mallory"].String() || line["client_fingerprint"] != pub["mallory"].Fingerprint() || line["cmd"] != "rep" || line["event"] != "rejected" {
		t.Fatalf("JSON rejection line: %v", line)
	}
	if ts, _ := line["time"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
		t.Fatalf("JSON time %q", ts)
	}
	for _, l := range strings.Split(jr.stderrText(), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("not a JSON line: %q", l)
		}
	}
}

func TestDeviceSidesAndSIGHUP(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("signals")
	}
	dir, tr := t.TempDir(), &transcript{}
	mustRun(t, tr, dir, "", "keygen", "-q", "server")
	dev := start(t, tr, dir, "device", "--front-bind", "tcp://127.0.0.1:0", "--back-bind", "tcp://127.0.0.1:0", "--metrics", "127.0.0.1:0")
	fm, _ := dev.waitLine(t, 0, regexp.MustCompile(`front listening on (tcp://127\.0\.0\.1:[0-9]+) \(REQ clients connect here\)`))
	bm, _ := dev.waitLine(t, 0, regexp.MustCompile(`back listening on (tcp://127\.0\.0\.1:[0-9]+) \(REP servers connect here\)`))
	mm, _ := dev.waitLine(t, 0, metricsRE)
	dev.waitLine(t, 0, regexp.MustCompile(`forwarding`))
	from := dev.lines()
	dev.cmd.Process.Signal(syscall.SIGHUP)
	dev.waitLine(t, from, regexp.MustCompile(`SIGHUP: nothing to reload`))
	worker := start(t, tr, dir, "rep", "--connect", bm[1], "--key", "server.key", "-D", "pong")
	worker.waitLine(t, 0, regexp.MustCompile(`dialed `))
	if r := mustRun(t, tr, dir, "", "req", "--connect", fm[1], "--server-key", "server.pub", "-D", "after SIGHUP"); r.stdout != "pong\n" {
		t.Fatalf("through the device after SIGHUP: %q", r.stdout)
	}
	if code, body := get(t, mm[1]+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("device /healthz: %d %q", code, body)
	}
	for _, l := range strings.Split(dev.stderrText(), "\n") {
		if !stampRE.MatchString(l) {
			t.Errorf("device line without timestamp: %q", l)
		}
	}
	dev.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-dev.done:
		if c := dev.cmd.ProcessState.ExitCode(); c != 0 {
			t.Fatalf("device exit %d", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("device did not stop on SIGTERM")
	}
}

// writeTLSFiles writes a CA certificate and a server certificate and key
// for 127.0.0.1 signed by it, as PEM files in dir.
func writeTLSFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "secsock test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "secsock test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"secsock.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "cert.key")
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{{ca, "CERTIFICATE", caDER, 0o644}, {cert, "CERTIFICATE", srvDER, 0o644}, {key, "EC PRIVATE KEY", keyDER, 0o600}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// TestTLSTransports runs rep and req over tls+tcp:// and wss:// on
// loopback with a certificate the test makes: verified with --tls-ca,
// refused without it, and a listener without a certificate is a usage
// error.
func TestTLSTransports(t *testing.T) {
	dir, tr := t.TempDir(), &transcript{}
	mustRun(t, tr, dir, "", "keygen", "-q", "server")
	ca, cert, key := writeTLSFiles(t, dir)
	tlsListenRE := regexp.MustCompile(`listening on ((tls\+tcp|wss)://127\.0\.0\.1:[0-9]+\S*)`)
	for _, bind := range []string{"tls+tcp://127.0.0.1:0", "wss://127.0.0.1:0/secsock"} {
		t.Run(strings.SplitN(bind, ":", 2)[0], func(t *testing.T) {
			rep := start(t, tr, dir, "rep", "--bind", bind, "--key", "server.key", "--tls-cert", cert, "--tls-key", key, "-D", "over tls")
			m, _ := rep.waitLine(t, 0, tlsListenRE)
			addr := m[1]
			args := []string{"req", "--connect", addr, "--server-key", "server.pub", "-D", "x", "--recv-timeout", "2s", "--send-timeout", "2s"}
			if r := mustRun(t, tr, dir, "", append(args, "--tls-ca", ca)...); r.stdout != "over tls\n" {
				t.Fatalf("with --tls-ca: %q", r.stdout)
			}
			// The certificate's DNS name instead of the address's IP.
			if r := mustRun(t, tr, dir, "", append(args, "--tls-ca", ca, "--tls-server-name", "secsock.test")...); r.stdout != "over tls\n" {
				t.Fatalf("with --tls-server-name: %q", r.stdout)
			}
			if r := runCmd(t, tr, dir, "", append(args, "--tls-ca", ca, "--tls-server-name", "other.test")...); r.code != 1 {
				t.Fatalf("wrong --tls-server-name: exit %d %q", r.code, r.stderr)
			}
			if r := runCmd(t, tr, dir, "", args...); r.code != 1 {
				t.Fatalf("without --tls-ca (unknown CA): exit %d %q", r.code, r.stderr)
			}
		})
	}
	wantFail(t, runCmd(t, tr, dir, "", "rep", "--bind", "tls+tcp://127.0.0.1:0", "--key", "server.key"), 2, "needs --tls-cert and --tls-key")
	r := mustRun(t, tr, dir, "", "rep", "--bind", "tls+tcp://127.0.0.1:0", "--key", "server.key", "--tls-cert", cert, "--tls-key", key, "--print-config")
	if !strings.Contains(r.stdout, "private key "+key+" (redacted)") {
		t.Fatalf("--print-config tls: %q", r.stdout)
	}
	keyPEM, _ := os.ReadFile(key)
	block, _ := pem.Decode(keyPEM)
	if strings.Contains(tr.String(), string(keyPEM)) || strings.Contains(tr.String(), string(block.Bytes)) {
		t.Error("the TLS private key was printed")
	}
}

func TestHideTemp(t *testing.T) {
	err := hideTemp("keys/alice.key", &os.PathError{Op: "open", Path: "keys/.alice.key.tmp-123", Err: syscall.EACCES})
	if strings.Contains(err.Error(), "tmp") || !strings.Contains(err.Error(), "writing keys/alice.key: permission denied (in directory keys)") {
		t.Fatalf("hideTemp: %v", err)
	}
}
