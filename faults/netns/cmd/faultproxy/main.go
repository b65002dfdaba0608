// Command faultproxy is the fault suite's TCP fault proxy: Toxiproxy's
// proxies and toxics (latency with jitter, reset_peer, timeout, bandwidth)
// run as a library, driven by one command per line on stdin, so that the
// suite controls a proxy that lives in its own network namespace without
// any address outside it. It also has a "capture" toxic that writes every
// connection's bytes in one direction to its own file: the attacker on the
// wire, whose recordings the suite replays.
//
// Commands (one per line; each is answered "ok" or "err TEXT" on stdout):
//
//	proxy NAME LISTEN UPSTREAM   start a proxy (LISTEN and UPSTREAM are host:port)
//	toxic PROXY JSON             add a toxic, as Toxiproxy's API takes it
//	untoxic PROXY NAME           remove a toxic
//	quit                         stop every proxy and exit
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "--capture-dir" {
		captureDir = os.Args[2]
	}
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	if err := serve(server, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "faultproxy:", err)
		os.Exit(1)
	}
}

// serve runs commands from in until quit or end of input.
func serve(server *toxiproxy.ApiServer, in io.Reader, out io.Writer) error {
	defer server.Collection.Clear()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "quit" {
			fmt.Fprintln(out, "ok")
			return nil
		}
		if err := run(server, line); err != nil {
			fmt.Fprintln(out, "err", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintln(out, "ok")
		}
	}
	return sc.Err()
}

func run(server *toxiproxy.ApiServer, line string) error {
	f := strings.SplitN(line, " ", 3)
	switch {
	case f[0] == "proxy" && len(f) == 3:
		lu := strings.Fields(f[2])
		if len(lu) != 2 {
			return fmt.Errorf("want proxy NAME LISTEN UPSTREAM")
		}
		return server.Collection.Add(toxiproxy.NewProxy(server, f[1], lu[0], lu[1]), true)
	case f[0] == "toxic" && len(f) == 3:
		p, err := server.Collection.Get(f[1])
		if err != nil {
			return err
		}
		_, err = p.Toxics.AddToxicJson(strings.NewReader(f[2]))
		return err
	case f[0] == "untoxic" && len(f) == 3:
		p, err := server.Collection.Get(f[1])
		if err != nil {
			return err
		}
		return p.Toxics.RemoveToxic(context.Background(), strings.TrimSpace(f[2]))
	}
	return fmt.Errorf("unknown command %q", line)
}
