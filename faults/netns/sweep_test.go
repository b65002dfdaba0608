package netns

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestSweepStale: a namespace left by a run whose process is gone is
// removed; one whose process still runs (this one's) is kept.
func TestSweepStale(t *testing.T) {
	if why := canNetns(); why != "" {
		t.Skipf("skipped: %s", why)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("ssf%d-sweeptest", dead.Process.Pid)
	live := &lab{t: t, prefix: fmt.Sprintf("ssf%d-", selfPid()), dir: t.TempDir()}
	t.Cleanup(live.teardown)
	live.addNS("sweeptest")
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", stale).Run() })
	sweepStale()
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), stale) {
		t.Errorf("stale namespace %s kept", stale)
	}
	if !strings.Contains(string(out), live.ns("sweeptest")) {
		t.Errorf("live namespace %s removed", live.ns("sweeptest"))
	}
}
