package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/secsock/secsock"
)

const fingerprintUsage = `Usage: secsock fingerprint [--json] FILE|KEY...

Prints the fingerprint of each public key in each FILE (a secret key
file, a public key file or an authorized keys file) or key text: the
first 8 bytes of SHA-256 over the key, in hex. Fingerprints name server
keys in rep's log lines and in metrics labels; compare the whole key
(secsock pubkey) where an attacker may choose keys. The secret is never
printed. One line per key: FINGERPRINT KEY [NAME].

Flags:
  --json   print one JSON object per key

Examples:
  secsock fingerprint server.pub
  secsock fingerprint server.key
  secsock fingerprint authorized_keys
`

func runFingerprint(e *env, args []string) error {
	fs := newFlags("fingerprint")
	asJSON := fs.Bool("json", false, "")
	if err := parseFlags("fingerprint", fs, keyTextIsOperand(args)); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("fingerprint", "want at least one FILE (a .key, .pub or authorized keys file) or key text")
	}
	for _, arg := range fs.Args() {
		aks, err := keysIn(arg)
		if err != nil {
			return err
		}
		for _, ak := range aks {
			if *asJSON {
				if err := json.NewEncoder(e.stdout).Encode(keyJSON{PublicKey: ak.Key.String(), Fingerprint: ak.Key.Fingerprint(), Name: ak.Name}); err != nil {
					return err
				}
				continue
			}
			line := ak.Key.Fingerprint() + " " + ak.Key.String()
			if ak.Name != "" {
				line += " " + ak.Name
			}
			fmt.Fprintln(e.stdout, line)
		}
	}
	return nil
}

// keysIn returns the public keys of the file or key text arg.
func keysIn(arg string) (secsock.AuthorizedKeys, error) {
	data, err := os.ReadFile(arg)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		k, kerr := loadPublicKey("fingerprint", arg)
		if kerr != nil {
			return nil, fmt.Errorf("%s: no such file, and not a public key either", quoteIfShort(arg))
		}
		return secsock.AuthorizedKeys{{Key: k}}, nil
	}
	if bytes.HasPrefix(data, []byte("# secsock secret key")) {
		k, err := secsock.LoadSecretKeyFile(arg)
		if err != nil {
			return nil, err
		}
		return secsock.AuthorizedKeys{{Key: k.Public(), Name: "(" + arg + ")"}}, nil
	}
	if c, ok, err := parseZMQ(data); ok {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", arg, err)
		}
		return secsock.AuthorizedKeys{{Key: c.public, Name: c.name}}, nil
	}
	aks, err := secsock.ParseAuthorizedKeys(bytes.NewReader(data))
	if err != nil {
		var fe *secsock.FileError
		if errors.As(err, &fe) {
			fe.Path = arg
		}
		return nil, err
	}
	return aks, nil
}

// quoteIfShort quotes arg unless it could be a secret pasted by mistake
// (40 characters or more).
func quoteIfShort(arg string) string {
	if len(arg) >= 40 {
		return fmt.Sprintf("argument of %d characters", len(arg))
	}
	return fmt.Sprintf("%q", arg)
}

const importUsage = `Usage: secsock import [flags] FILE NAME

Turns ZeroMQ CURVE keys into secsock key files: NAME.pub, and NAME.key
(mode 0600) when FILE holds a secret key. FILE ("-" for stdin) is one of
  - a czmq zcert certificate (zcert_save): the secret file (NAME_secret,
    with curve/public-key and curve/secret-key) or the public one;
  - the output of libzmq's curve_keygen ("== CURVE PUBLIC KEY ==" and
    "== CURVE SECRET KEY ==" each followed by a Z85 key).
The public key is checked against the secret, and both against the
curve25519 rules of SPEC.md §4.1. Files are never overwritten; the
secret is never printed.

Flags:
  --name TEXT   name written after the key in NAME.pub (default: the zcert
                metadata "name", else NAME's base name)
  --public-only write only NAME.pub, even if FILE has the secret key
  -q, --quiet   print only the public key
  --json        print one JSON object: public_key, fingerprint, secret_key_file, public_key_file, name

Examples:
  secsock import ~/.curve/server.cert_secret server
  secsock import client.cert alice             # a public certificate: alice.pub only
  curve_keygen | secsock import - worker
`

func runImport(e *env, args []string) error {
	fs := newFlags("import")
	name := fs.String("name", "", "")
	publicOnly := fs.Bool("public-only", false, "")
	var quiet bool
	fs.BoolVar(&quiet, "q", false, "")
	fs.BoolVar(&quiet, "quiet", false, "")
	asJSON := fs.Bool("json", false, "")
	if err := parseFlags("import", fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef("import", "want FILE and NAME (files NAME.pub and NAME.key)")
	}
	src, base := fs.Arg(0), strings.TrimSuffix(strings.TrimSuffix(fs.Arg(1), ".key"), ".pub")
	var data []byte
	var err error
	if src == "-" {
		data, err = io.ReadAll(io.LimitReader(e.stdin, 1<<16))
	} else {
		data, err = os.ReadFile(src)
	}
	if err != nil {
		return err
	}
	c, ok, err := parseZMQ(data)
	if !ok {
		return fmt.Errorf("%s: neither a czmq zcert certificate nor curve_keygen output (want a \"curve\" section with public-key, or \"== CURVE PUBLIC KEY ==\")", src)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if *name == "" {
		*name = c.name
	}
	if *name == "" {
		*name = filepath.Base(base)
	}
	secPath, pubPath := base+".key", base+".pub"
	if c.secret.IsZero() || *publicOnly {
		secPath = ""
	}
	for _, p := range []string{secPath, pubPath} {
		if _, err := os.Lstat(p); p != "" && err == nil {
			return fmt.Errorf("%s already exists; not overwriting it (choose another NAME)", p)
		}
	}
	if _, err := makeParent(pubPath); err != nil {
		return err
	}
	k := c.secret
	if k.IsZero() || *publicOnly {
		if err := secsock.WritePublicKeyFile(pubPath, c.public, *name); err != nil {
			return err
		}
	} else if err := writeKeyPair(secPath, pubPath, k, *name); err != nil {
		return err
	}
	if *asJSON {
		return printKeyJSON(e, c.public, secPath, pubPath, *name)
	}
	if !quiet {
		if secPath != "" {
			fmt.Fprintf(e.stderr, "secsock import: wrote %s (secret: keep private) and %s (public) from %s\n", secPath, pubPath, c.format)
		} else {
			fmt.Fprintf(e.stderr, "secsock import: wrote %s (public) from %s\n", pubPath, c.format)
		}
	}
	fmt.Fprintln(e.stdout, c.public)
	return nil
}

// zmqKeys are the keys found in a ZeroMQ key file.
type zmqKeys struct {
	format string // "a czmq zcert certificate" or "curve_keygen output"
	public secsock.PublicKey
	secret secsock.SecretKey // zero if the file has none
	name   string            // zcert metadata name
}

// parseZMQ reads a czmq zcert file (ZPL, RFC 4/ZPL) or curve_keygen
// output. ok is false when data is neither; err says what is wrong
// with one, without quoting key text.
func parseZMQ(data []byte) (k zmqKeys, ok bool, err error) {
	var pubTxt, secTxt string
	if bytes.Contains(data, []byte("== CURVE PUBLIC KEY ==")) {
		k.format, ok = "curve_keygen output", true
		pubTxt, secTxt = keygenValue(data, "== CURVE PUBLIC KEY =="), keygenValue(data, "== CURVE SECRET KEY ==")
	} else {
		vals := zpl(data)
		var found bool
		pubTxt, found = vals["curve/public-key"]
		if !found {
			return k, false, nil
		}
		k.format, ok = "a czmq zcert certificate", true
		secTxt, k.name = vals["curve/secret-key"], vals["metadata/name"]
	}
	if pubTxt == "" {
		return k, ok, errors.New("no public key")
	}
	if k.public, err = secsock.ParsePublicKey(pubTxt); err != nil {
		return k, ok, fmt.Errorf("public key: %w", err)
	}
	if secTxt != "" {
		if k.secret, err = secsock.ParseSecretKey(secTxt); err != nil {
			return k, ok, errors.New("secret key: not a valid key (the text is not shown)")
		}
		if k.secret.Public() != k.public {
			return k, ok, errors.New("the public key is not the secret key's public key")
		}
	}
	if k.name != "" && (strings.ContainsAny(k.name, "\r\n") || strings.TrimSpace(k.name) != k.name) {
		k.name = ""
	}
	return k, ok, nil
}

// keygenValue returns the first non-blank line after the line marker.
func keygenValue(data []byte, marker string) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != marker {
			continue
		}
		for sc.Scan() {
			if v := strings.TrimSpace(sc.Text()); v != "" {
				return v
			}
		}
	}
	return ""
}

// zpl parses the subset of ZPL (ZeroMQ property language) that czmq's
// zcert writes: "#" comments, sections named on their own line and
// nested by four spaces of indentation, and "name = value" properties,
// values optionally in double or single quotes. It returns the values by
// path ("curve/public-key").
func zpl(data []byte) map[string]string {
	vals := map[string]string{}
	var path []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		depth := (len(line) - len(trimmed)) / 4
		if depth < len(path) {
			path = path[:depth]
		}
		key, value, isProp := strings.Cut(trimmed, "=")
		key = strings.TrimSpace(key)
		if !isProp {
			if depth == len(path) {
				path = append(path, key)
			}
			continue
		}
		value = strings.TrimSpace(value)
		if n := len(value); n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n-1] == value[0] {
			value = value[1 : n-1]
		} else if i := strings.Index(value, " #"); i >= 0 {
			value = strings.TrimSpace(value[:i])
		}
		vals[strings.Join(append(append([]string{}, path[:min(depth, len(path))]...), key), "/")] = value
	}
	return vals
}

// keyTextIsOperand ends the flags before the first argument that is key
// text beginning with '-' (a Z85 key may), so that it is read as the key
// and not as an unknown flag. Only flags may come before it.
func keyTextIsOperand(args []string) []string {
	for i, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			return args // the flags end here anyway
		}
		if _, err := secsock.ParsePublicKey(a); err == nil {
			return append(append(args[:i:i], "--"), args[i:]...)
		}
	}
	return args
}
