// Package fuzzcorpus keeps the committed seed corpora of a package's fuzz
// targets honest, for the tests of every package that has them: each
// target has a corpus, and each generated seed is committed as generated.
package fuzzcorpus

import (
	"bytes"
	"fmt"
	"go/build"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Seeds are a package's generated seeds: target, then seed name, then
// the arguments of f.Add.
type Seeds map[string]map[string][]any

// File is one seed in Go's corpus file format ("go test fuzz v1").
func File(args []any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		default:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		}
	}
	return []byte(b.String())
}

// Targets lists the Fuzz functions declared in the test files of dir that
// the default build context compiles (a file behind a build tag declares
// no target that go test -fuzz could run).
func Targets(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	var names []string
	for _, f := range files {
		if ok, err := build.Default.MatchFile(dir, filepath.Base(f)); err != nil || !ok {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			names = append(names, string(m[1]))
		}
	}
	return names
}

// Check fails when a fuzz target of the package in the current directory
// has an empty or missing corpus under testdata/fuzz, or when a seed is
// not committed as it is generated (so that the corpus cannot drift from
// the seeds f.Add uses). With update it first rewrites the seed-* files
// (findings under other names stay).
func Check(t *testing.T, seeds Seeds, update bool) {
	t.Helper()
	if update {
		for target, byName := range seeds {
			dir := filepath.Join("testdata", "fuzz", target)
			old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
			for _, f := range old {
				os.Remove(f)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, args := range byName {
				if err := os.WriteFile(filepath.Join(dir, "seed-"+name), File(args), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	targets := Targets(t, ".")
	if len(targets) == 0 {
		t.Fatal("no fuzz targets found")
	}
	for _, target := range targets {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		if len(files) == 0 {
			t.Errorf("%s: corpus testdata/fuzz/%s is empty or missing", target, target)
		}
	}
	for target, byName := range seeds {
		for name, args := range byName {
			got, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, "seed-"+name))
			if err != nil || !bytes.Equal(got, File(args)) {
				t.Errorf("%s: seed %s missing or stale (run go test -run TestFuzzCorpora -update-fuzz)", target, name)
			}
		}
	}
}
