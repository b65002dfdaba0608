package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const metricsUsage = `  --metrics ADDR                serve Prometheus metrics on http://ADDR/metrics and a health check on /healthz
                                (for example 127.0.0.1:9464; port 0 picks a free port, printed at start)
`

// webServer serves /metrics and /healthz for --metrics.
type webServer struct {
	srv     *http.Server
	addr    string
	healthy atomic.Bool
}

// serveMetrics listens on addr and serves reg's metrics (with the Go
// runtime's and the process's) and a health check that answers 200 "ok"
// while healthy is set, 503 otherwise.
func serveMetrics(addr string, cs ...prometheus.Collector) (*webServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	w := &webServer{addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) {
		if !w.healthy.Load() {
			http.Error(rw, "not serving", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ok")
	})
	w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := w.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.healthy.Store(false)
		}
	}()
	return w, nil
}

func (w *webServer) close() {
	if w == nil {
		return
	}
	w.healthy.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	w.srv.Shutdown(ctx)
}
