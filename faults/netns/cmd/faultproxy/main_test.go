package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// TestCaptureAndCommands: a proxy made by command forwards to its
// upstream, the capture toxic records exactly the client's bytes in a file
// of the connection's own, and bad commands are answered err.
func TestCaptureAndCommands(t *testing.T) {
	captureDir = t.TempDir()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		c, err := up.Accept()
		if err == nil {
			io.Copy(c, c) // echo
			c.Close()
		}
	}()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	defer server.Collection.Clear()
	cmd := func(line string) string {
		if err := run(server, line); err != nil {
			return "err " + err.Error()
		}
		return "ok"
	}
	if got := cmd("proxy p 127.0.0.1:0 " + up.Addr().String()); got != "ok" {
		t.Fatalf("proxy: %s", got)
	}
	if got := cmd(`toxic p {"name":"cap","type":"capture","stream":"upstream","attributes":{"prefix":"t"}}`); got != "ok" {
		t.Fatalf("toxic: %s", got)
	}
	for _, bad := range []string{"proxy p", "toxic nosuch {}", `toxic p {"type":"nosuch"}`, "frobnicate"} {
		if got := cmd(bad); !strings.HasPrefix(got, "err ") {
			t.Errorf("%q answered %q, want err", bad, got)
		}
	}
	p, err := server.Collection.Get("p")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Listen)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("\x00SP\x00\x00\x30\x00\x00sealed bytes")
	c.Write(msg)
	echo := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, echo); err != nil || !bytes.Equal(echo, msg) {
		t.Fatalf("through the proxy: %q, %v", echo, err)
	}
	c.Close()
	var files []string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if files, _ = filepath.Glob(filepath.Join(captureDir, "t-*.bin")); len(files) == 1 {
			if b, _ := os.ReadFile(files[0]); bytes.Equal(b, msg) {
				// serve answers each line, stops at quit and clears the proxies.
				var out bytes.Buffer
				if err := serve(server, strings.NewReader("untoxic p cap\nnosuch\nquit\nproxy q 127.0.0.1:0 127.0.0.1:1\n"), &out); err != nil {
					t.Fatal(err)
				}
				if got := out.String(); !strings.HasPrefix(got, "ok\nerr ") || !strings.HasSuffix(got, "\nok\n") || strings.Count(got, "\n") != 3 {
					t.Errorf("serve answered %q", got)
				}
				if len(server.Collection.Proxies()) != 0 {
					t.Error("proxies kept after quit")
				}
				return
			}
		}
	}
	t.Fatalf("capture files %v do not hold exactly the client's bytes", files)
}
