package main

import (
	"fmt"
	"time"

	"github.com/secsock/secsock"
)

const epochSeedUsage = `Usage: secsock epoch-seed new [--length D] FILE
       secsock epoch-seed advance FILE

Epoch seeds give forward secrecy to requests (SPEC.md §14): every REP
worker of a service holds a copy of the same seed file (secsock rep
--epoch-seed FILE), derives the epoch keys from it alone and ratchets it
forward as epochs pass, so a thief of the server's key and of the workers'
state cannot read traffic of epochs that have ended.

  new      write a new seed file (mode 0600, never replacing a file); the
           chain starts now. --length is the epoch length (default 1h, at
           least the server's freshness window plus its clock skew).
  advance  ratchet FILE to the oldest epoch still accepted (the one
           before the current) and rewrite it; idempotent.
           Run it from a timer on every stored copy (backups, provisioning
           copies, stopped workers' disks): a copy left behind voids
           forward secrecy for the epochs it still holds. Keep seed files
           on tmpfs: rewriting a file does not wipe old disk blocks.

Examples:
  secsock epoch-seed new service.seed
  secsock rep --bind tcp://:5555 --key server.key --epoch-seed service.seed --echo
  secsock epoch-seed advance /backup/service.seed    # from cron, hourly
`

func runEpochSeed(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("epoch-seed", "want new or advance")
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("epoch-seed")
	length := fs.Duration("length", secsock.DefaultEpochLength, "")
	if err := parseFlags("epoch-seed", fs, rest); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("epoch-seed", "want one FILE argument")
	}
	path := fs.Arg(0)
	switch sub {
	case "new":
		s, err := secsock.NewEpochSeed(*length)
		if err != nil {
			return err
		}
		if _, err := makeParent(path); err != nil {
			return err
		}
		if err := secsock.WriteEpochSeedFile(path, s); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: epoch seed, chain %s, epochs of %v\n", path, s.Chain(), s.Length())
	case "advance":
		n, err := secsock.AdvanceEpochSeedFile(path, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: ratcheted %d epochs\n", path, n)
	default:
		return usagef("epoch-seed", "unknown subcommand %q (want new or advance)", sub)
	}
	return nil
}
