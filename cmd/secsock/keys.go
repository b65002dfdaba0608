package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/secsock/secsock"
)

const keygenUsage = `Usage: secsock keygen [flags] NAME

Writes a new curve25519 key pair: the secret key to NAME.key (mode 0600,
never overwritten) and the public key to NAME.pub, and prints the public
key. Give NAME.pub to peers; keep NAME.key private. A .pub file is also a
valid line of an authorized keys file:

  cat alice.pub >> authorized_keys

A directory in NAME that does not exist yet is made (mode 0700).

Flags:
  --name TEXT   name written after the key in NAME.pub (default: NAME's base name)
  -q, --quiet   print only the public key
  --json        print one JSON object: public_key, fingerprint, secret_key_file, public_key_file, name

Examples:
  secsock keygen server
  secsock keygen --name "alice@laptop" keys/alice
`

func runKeygen(e *env, args []string) error {
	fs := newFlags("keygen")
	name := fs.String("name", "", "")
	var quiet bool
	fs.BoolVar(&quiet, "q", false, "")
	fs.BoolVar(&quiet, "quiet", false, "")
	asJSON := fs.Bool("json", false, "")
	if err := parseFlags("keygen", fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("keygen", "want one NAME argument (files NAME.key and NAME.pub)")
	}
	base := strings.TrimSuffix(fs.Arg(0), ".key")
	if *name == "" {
		*name = filepath.Base(base)
	}
	secPath, pubPath := base+".key", base+".pub"
	for _, p := range []string{secPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s already exists; not overwriting it (choose another NAME)", p)
		}
	}
	k, err := secsock.GenerateKey()
	if err != nil {
		return err
	}
	made, err := makeParent(secPath)
	if err != nil {
		return err
	}
	if err := writeKeyPair(secPath, pubPath, k, *name); err != nil {
		return err
	}
	if *asJSON {
		return printKeyJSON(e, k.Public(), secPath, pubPath, *name)
	}
	if !quiet {
		if made != "" {
			fmt.Fprintf(e.stderr, "secsock keygen: made directory %s (mode 0700)\n", made)
		}
		fmt.Fprintf(e.stderr, "secsock keygen: wrote %s (secret: keep private) and %s (public)\n", secPath, pubPath)
	}
	fmt.Fprintln(e.stdout, k.Public())
	return nil
}

// makeParent makes the directory of path (mode 0700) if it does not
// exist, and returns its name if it made it.
func makeParent(path string) (string, error) {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return "", nil
	case err == nil:
		return "", fmt.Errorf("%s is not a directory", dir)
	case !errors.Is(err, os.ErrNotExist):
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("making directory %s: %w", dir, err)
	}
	return dir, nil
}

// writeKeyPair writes a secret key file (unless secPath is empty) and a
// public key file: both or neither.
func writeKeyPair(secPath, pubPath string, k secsock.SecretKey, name string) error {
	if secPath != "" {
		if err := secsock.WriteSecretKeyFile(secPath, k); err != nil {
			return hideTemp(secPath, err)
		}
	}
	if err := secsock.WritePublicKeyFile(pubPath, k.Public(), name); err != nil {
		if secPath != "" {
			os.Remove(secPath) // both or neither
		}
		return hideTemp(pubPath, err)
	}
	return nil
}

// hideTemp rewrites an error about the temporary file that key files are
// written through into one about path and its directory.
func hideTemp(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && strings.Contains(filepath.Base(pe.Path), ".tmp-") {
		return fmt.Errorf("writing %s: %v (in directory %s)", path, pe.Err, filepath.Dir(path))
	}
	return err
}

type keyJSON struct {
	PublicKey     string `json:"public_key"`
	Fingerprint   string `json:"fingerprint"`
	SecretKeyFile string `json:"secret_key_file,omitempty"`
	PublicKeyFile string `json:"public_key_file,omitempty"`
	Name          string `json:"name,omitempty"`
}

func printKeyJSON(e *env, k secsock.PublicKey, secPath, pubPath, name string) error {
	return json.NewEncoder(e.stdout).Encode(keyJSON{PublicKey: k.String(), Fingerprint: k.Fingerprint(),
		SecretKeyFile: secPath, PublicKeyFile: pubPath, Name: name})
}

const pubkeyUsage = `Usage: secsock pubkey FILE

Prints the public key of the secret key file FILE (which must not be
readable by group or others: chmod 600 FILE). The secret is never printed.

Example:
  secsock pubkey server.key > server.pub.txt
`

func runPubkey(e *env, args []string) error {
	fs := newFlags("pubkey")
	if err := parseFlags("pubkey", fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("pubkey", "want one FILE argument (a secret key file)")
	}
	k, err := secsock.LoadSecretKeyFile(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, k.Public())
	return nil
}

// loadPublicKey reads v as a public key file if one exists there, else
// as key text. The error never repeats v (it could be a secret pasted by
// mistake).
func loadPublicKey(flagName, v string) (secsock.PublicKey, error) {
	if v == "" {
		return secsock.PublicKey{}, fmt.Errorf("--%s is empty", flagName)
	}
	if _, err := os.Stat(v); err == nil {
		return secsock.LoadPublicKeyFile(v)
	}
	k, err := secsock.ParsePublicKey(v)
	if err != nil {
		if errors.Is(err, secsock.ErrWeakKey) {
			return k, fmt.Errorf("--%s: weak (small-order) public key, refused", flagName)
		}
		// ParsePublicKey's messages never include the input (at most
		// its length), so saying why is safe.
		why := strings.TrimSuffix(strings.TrimPrefix(err.Error(), "secsock: "), ": "+secsock.ErrBadKey.Error())
		return k, fmt.Errorf("--%s: no such file, and not a public key either (want a .pub file or 40-character Z85 key text): %s", flagName, why)
	}
	return k, nil
}
