// Command secsock makes secsock keys and talks to sealed REQ/REP sockets
// from the shell: a secure counterpart of nanocat and mangos macat.
//
//	go install github.com/secsock/secsock/cmd/secsock@latest
//
//	secsock keygen server              # writes server.key (0600) and server.pub
//	secsock keygen alice
//	secsock rep --bind tcp://127.0.0.1:5555 --key server.key --authorized alice.pub --echo
//	secsock req --connect tcp://127.0.0.1:5555 --key alice.key --server-key server.pub -D hello
//	secsock device --front-bind tcp://:5555 --back-bind tcp://:5556
//
// Run "secsock help COMMAND" for each command's flags. Errors are one line
// on stderr ("secsock: ...") with exit status 1, or 2 for usage errors.
// Secret keys are never printed. rep and device log with timestamps on
// stderr (--json for JSON lines), and serve Prometheus metrics and a
// health check with --metrics ADDR.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

const mainUsage = `secsock: end-to-end encrypted nanomsg (SP) REQ/REP and PUSH/PULL from the shell

Usage:
  secsock COMMAND [flags] [args]

Commands:
  keygen       write a new key pair: NAME.key (secret, mode 0600) and NAME.pub
  pubkey       print the public key of a secret key file
  fingerprint  print the short fingerprints of keys in key files
  import       turn czmq zcert files or curve_keygen output into secsock key files
  req          send sealed requests and print the replies (like nanocat --req)
  rep          answer sealed requests: echo or fixed data (like nanocat --rep)
  push         send sealed one-way messages to pull workers (like nanocat --push)
  pull         receive sealed one-way messages and print them (like nanocat --pull)
  pub          publish sealed, signed messages on a topic and serve their keys (like nanocat --pub)
  sub          receive sealed messages of a publisher's topics and print them (like nanocat --sub)
  device       forward between two addresses with raw sockets (needs no keys)
  epoch-seed   make or ratchet an epoch seed file (forward secrecy for rep)
  replay-store init a new Redis replay store (rep --replay-store: at most once across workers)
  version      print the version, protocol and build information
  help         show help for a command

Examples:
  secsock keygen server
  secsock keygen alice
  secsock rep --bind tcp://127.0.0.1:5555 --key server.key --authorized alice.pub --echo
  secsock req --connect tcp://127.0.0.1:5555 --key alice.key --server-key server.pub -D hello

Addresses are any mangos address: tcp://HOST:PORT, ipc:///path, inproc://name,
ws://HOST:PORT/path, and with the --tls-* flags tls+tcp://HOST:PORT and
wss://HOST:PORT/path. Run "secsock help COMMAND" for a command's flags.
`

const helpUsage = `Usage: secsock help [COMMAND]

Shows the flags and examples of COMMAND, or the list of commands.
"secsock COMMAND -h" does the same.

Examples:
  secsock help
  secsock help rep
`

// exit statuses
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is an error in the command line; it exits with status 2.
type usageError struct {
	cmd string
	msg string
}

func (e *usageError) Error() string {
	if e.cmd == "" {
		return e.msg + " (see 'secsock help')"
	}
	return fmt.Sprintf("%s (see 'secsock help %s')", e.msg, e.cmd)
}

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// env is what a command may touch; tests could swap it, main uses the
// process's.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	usage string
	run   func(e *env, args []string) error
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"keygen":       {keygenUsage, runKeygen},
		"pubkey":       {pubkeyUsage, runPubkey},
		"fingerprint":  {fingerprintUsage, runFingerprint},
		"import":       {importUsage, runImport},
		"req":          {reqUsage, runReq},
		"rep":          {repUsage, runRep},
		"push":         {pushUsage, runPush},
		"pull":         {pullUsage, runPull},
		"pub":          {pubUsage, runPub},
		"sub":          {subUsage, runSub},
		"device":       {deviceUsage, runDevice},
		"version":      {versionUsage, runVersion},
		"epoch-seed":   {epochSeedUsage, runEpochSeed},
		"replay-store": {replayStoreUsage, runReplayStore},
		"help":         {helpUsage, nil},
	}
}

func main() {
	os.Exit(run(&env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

func run(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, mainUsage)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 2 {
			return fail(e, usagef("help", "want at most one COMMAND"))
		}
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fmt.Fprint(e.stdout, c.usage)
				return exitOK
			}
			return fail(e, usagef("", "unknown command %q", args[1]))
		}
		fmt.Fprint(e.stdout, mainUsage)
		return exitOK
	case "-V", "-version", "--version":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		return fail(e, usagef("", "unknown command %q", name))
	}
	err := c.run(e, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, c.usage)
		return exitOK
	}
	return fail(e, err)
}

// fail prints err as one line "secsock: ..." and returns the exit status.
func fail(e *env, err error) int {
	if err == nil {
		return exitOK
	}
	var silent silentError
	if errors.As(err, &silent) {
		return exitError
	}
	msg := err.Error()
	for strings.HasPrefix(msg, "secsock: ") { // library errors carry the prefix already
		msg = strings.TrimPrefix(msg, "secsock: ")
	}
	msg = strings.Join(strings.Fields(msg), " ") // one line
	fmt.Fprintln(e.stderr, "secsock: "+msg)
	var u *usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitError
}

// newFlags returns a flag set that reports errors instead of printing.
func newFlags(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// ("keygen alice -q"); everything after "--" is positional.
func parseFlags(cmd string, fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usagef(cmd, "%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// fs.Parse consumed a "--" if the remaining args are shorter
		// than what followed the last flag.
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// strList is a repeatable string flag.
type strList []string

func (l *strList) String() string     { return strings.Join(*l, ",") }
func (l *strList) Set(v string) error { *l = append(*l, v); return nil }

// seconds is a duration flag that takes nanocat-style seconds ("1.5") or
// a Go duration ("1500ms").
type seconds time.Duration

func (d *seconds) String() string { return time.Duration(*d).String() }
func (d *seconds) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 {
			return errors.New("negative duration")
		}
		*d = seconds(f * float64(time.Second))
		return nil
	}
	t, err := time.ParseDuration(v)
	if err != nil || t < 0 {
		return errors.New("want seconds (1.5) or a duration (1500ms)")
	}
	*d = seconds(t)
	return nil
}
