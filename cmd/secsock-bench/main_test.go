package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuick runs the command in quick mode, restricted further, to prove
// that every measure and both outputs work.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sockets for a few seconds")
	}
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "out.json")
	var out, errOut bytes.Buffer
	args := []string{"-quick", "-q", "-reps", "2", "-d", "20ms", "-fresh", "2",
		"-transports", "inproc,ipc,tcp", "-payloads", "64,64K", "-modes", "tput,lat,alloc,fresh,pipe", "-json", jsonFile}
	if err := run(args, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	md := out.String()
	for _, want := range []string{"### Throughput", "### Sequential round-trip latency p50", "### Heap allocations",
		"### Fresh socket to first reply", "### PUSH/PULL: messages/s", "### PUSH/PULL: bytes added", "| tcp | 64 B |", "secsock/plain", "secsock/tls"} {
		if !strings.Contains(md, want) {
			t.Errorf("output lacks %q:\n%s", want, md)
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Summaries) == 0 || len(rep.Ratios) == 0 || rep.Machine.NumCPU == 0 {
		t.Fatalf("JSON report incomplete: %d summaries, %d ratios", len(rep.Summaries), len(rep.Ratios))
	}
	for _, s := range rep.Summaries {
		if s.Metric == "tput_rps" && s.Median <= 0 {
			t.Errorf("%+v: no throughput", s.seriesKey)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"64": 64, "1K": 1024, "64K": 65536, "1M": 1 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseSize("x"); err == nil {
		t.Error("parseSize(x) succeeded")
	}
}
