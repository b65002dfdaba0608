package server

// Reading and writing the vector files of SPEC.md §12: a header block,
// then step blocks, as "name: value" lines.

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/secsock/secsock/internal/vectorfile"
)

// fields is one block of a vector file.
type fields = vectorfile.Fields

// readVectorFile returns the header block and the step blocks of path.
func readVectorFile(t *testing.T, path string) (fields, []fields) {
	t.Helper()
	head, steps, err := vectorfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return head, steps
}

// vectorWriter writes one vector file.
type vectorWriter struct{ b strings.Builder }

func (w *vectorWriter) comment(s string) {
	for _, l := range strings.Split(s, "\n") {
		fmt.Fprintf(&w.b, "# %s\n", l)
	}
}

func (w *vectorWriter) field(k string, v any) {
	if b, ok := v.([]byte); ok {
		v = hex.EncodeToString(b)
	}
	fmt.Fprintf(&w.b, "%s: %v\n", k, v)
}
