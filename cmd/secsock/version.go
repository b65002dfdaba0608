package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/secsock/secsock"
)

const versionUsage = `Usage: secsock version [--json]

Prints secsock's version, the wire protocol it speaks, and what the Go
build information says about this binary: the module version (a tag
for "go install ...@v0.2.0", "(devel)" for a checkout), the VCS revision
and time, whether the tree had local changes, and the Go version.

Flags:
  --json   print one JSON object

Examples:
  secsock version
  secsock --version
`

type versionInfo struct {
	Version   string `json:"version"`
	Protocol  string `json:"protocol"`
	Module    string `json:"module,omitempty"`
	ModuleVer string `json:"module_version,omitempty"`
	Revision  string `json:"vcs_revision,omitempty"`
	Time      string `json:"vcs_time,omitempty"`
	Modified  bool   `json:"vcs_modified,omitempty"`
	Go        string `json:"go"`
	Platform  string `json:"platform"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: secsock.Version, Protocol: secsock.Protocol, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Module, v.ModuleVer = bi.Main.Path, bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func runVersion(e *env, args []string) error {
	fs := newFlags("version")
	asJSON := fs.Bool("json", false, "")
	if err := parseFlags("version", fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version", "unexpected argument %q", fs.Arg(0))
	}
	v := buildVersion()
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(v)
	}
	fmt.Fprintf(e.stdout, "secsock %s\nprotocol: %s\n", v.Version, v.Protocol)
	if v.Module != "" {
		fmt.Fprintf(e.stdout, "module: %s %s\n", v.Module, v.ModuleVer)
	}
	switch {
	case v.Revision != "":
		mod := ""
		if v.Modified {
			mod = " (with local changes)"
		}
		fmt.Fprintf(e.stdout, "revision: %s %s%s\n", v.Revision, v.Time, mod)
	default:
		fmt.Fprintln(e.stdout, "revision: unknown (built without VCS information, e.g. -buildvcs=false)")
	}
	fmt.Fprintf(e.stdout, "go: %s %s\n", v.Go, v.Platform)
	return nil
}
