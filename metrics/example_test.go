package metrics_test

import (
	"bufio"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.nanomsg.org/mangos/v3"
	_ "go.nanomsg.org/mangos/v3/transport/inproc"

	"github.com/secsock/secsock"
	"github.com/secsock/secsock/metrics"
)

// fixedKey makes a deterministic key, so that the fingerprints in the
// output do not change between runs. Use secsock.GenerateKey in real code.
func fixedKey(b byte) secsock.SecretKey {
	seed := make([]byte, secsock.KeySize)
	for i := range seed {
		seed[i] = b + byte(i)
	}
	k, err := secsock.NewSecretKey(seed)
	if err != nil {
		log.Fatal(err)
	}
	return k
}

// A REP socket in the middle of a key rotation, exported to Prometheus
// and served by promhttp on a loopback port: one client still uses the
// previous server key, two use the new one, and the per-key counters
// show how far the rotation has got.
func Example() {
	oldKey, newKey := fixedKey(1), fixedKey(100)
	server, err := secsock.NewRepSocket()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	for _, o := range []struct {
		name string
		v    any
	}{
		{secsock.OptionMechanism, secsock.MechanismCurve},
		{secsock.OptionSecretKey, newKey},
		{secsock.OptionPreviousSecretKeys, []secsock.SecretKey{oldKey}},
	} {
		if err := server.SetOption(o.name, o.v); err != nil {
			log.Fatal(err)
		}
	}
	if err := server.Listen("inproc://metrics-example"); err != nil {
		log.Fatal(err)
	}
	go func() {
		for {
			req, err := server.Recv()
			if err != nil {
				return
			}
			if err := server.Send(req); err != nil {
				return
			}
		}
	}()

	// The collector and the HTTP endpoint.
	c := metrics.NewCollector()
	c.Add("api", server)
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		log.Fatal(err)
	}
	web := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer web.Close()

	for _, serverKey := range []secsock.PublicKey{oldKey.Public(), newKey.Public(), newKey.Public()} {
		client, err := secsock.NewReqSocket()
		if err != nil {
			log.Fatal(err)
		}
		if err := client.SetOption(secsock.OptionMechanism, secsock.MechanismCurve); err != nil {
			log.Fatal(err)
		}
		if err := client.SetOption(secsock.OptionServerKey, serverKey); err != nil {
			log.Fatal(err)
		}
		if err := client.SetOption(mangos.OptionRecvDeadline, 10*time.Second); err != nil {
			log.Fatal(err)
		}
		if err := client.Dial("inproc://metrics-example"); err != nil {
			log.Fatal(err)
		}
		if err := client.Send([]byte("hi")); err != nil {
			log.Fatal(err)
		}
		if _, err := client.Recv(); err != nil {
			log.Fatal(err)
		}
		if err := client.Close(); err != nil {
			log.Fatal(err)
		}
	}

	resp, err := http.Get(web.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "secsock_server_key_requests_total") ||
			strings.HasPrefix(line, "secsock_requests_accepted_total") ||
			strings.HasPrefix(line, "secsock_peers") {
			fmt.Println(line)
		}
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// secsock_peers{socket="api"} 3
	// secsock_peers_limit{socket="api"} 4096
	// secsock_requests_accepted_total{level="anonymous",socket="api"} 3
	// secsock_requests_accepted_total{level="vouched",socket="api"} 0
	// secsock_server_key_requests_total{role="current",server_key="7574198efee49ade",socket="api"} 2
	// secsock_server_key_requests_total{role="previous",server_key="aaa8fff703b50b22",socket="api"} 1
}
