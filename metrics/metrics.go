// Package metrics exports the counters of secsock sockets to Prometheus.
// It is a package of its own so that programs that import secsock
// without it do not compile or link the Prometheus client.
//
//	c := metrics.NewCollector()
//	c.Add("api", repSocket)
//	prometheus.MustRegister(c)
//	http.Handle("/metrics", promhttp.Handler())
//
// Metrics (every one has the label socket, the name given to Add):
//
//	secsock_messages_sealed_total                 requests or replies sealed and sent
//	secsock_messages_opened_total                 requests delivered (REP) or replies opened (REQ)
//	secsock_requests_answered_total               requests the REP side answered itself (pings, refusals, hints, cached replies)
//	secsock_messages_rejected_total{reason}       messages rejected, by reason; every reason is listed, retries are not
//	secsock_requests_retried_total                duplicates of requests in progress or answered from the reply cache (normal)
//	secsock_requests_accepted_total{level}        REP: requests accepted, level "anonymous" or "vouched"
//	secsock_server_key_requests_total{server_key,role}  REP: requests accepted per server key (fingerprint), role current, previous or retired
//	secsock_peers, secsock_peers_limit            REP: cached client short-term keys
//	secsock_tombstones, secsock_tombstones_limit  REP: replay state kept for evicted short-term keys
//	secsock_reply_cache_bytes, secsock_reply_cache_bytes_limit  REP: bytes of replies kept for retries
//
// Server keys appear only as their 16-hex-digit PublicKey.Fingerprint;
// client keys never become labels (their number is unbounded): per-client
// detail belongs in events (secsock.OptionEventHook) and logs.
package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.nanomsg.org/mangos/v3"

	"github.com/secsock/secsock"
)

// Collector is a prometheus.Collector over named secsock sockets. It
// reads each socket's Stats and ServerStats at every scrape and keeps no
// state of its own. It is safe for concurrent use.
type Collector struct {
	mu    sync.Mutex
	socks map[string]*secsock.Socket
}

// NewCollector returns a Collector with no sockets.
func NewCollector() *Collector { return &Collector{socks: map[string]*secsock.Socket{}} }

// Add exports s under the label socket="name", replacing a socket added
// under the same name.
func (c *Collector) Add(name string, s *secsock.Socket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.socks[name] = s
}

// Remove stops exporting the socket added as name.
func (c *Collector) Remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.socks, name)
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("secsock_"+name, help, append([]string{"socket"}, labels...), nil)
}

var (
	descSealed    = desc("messages_sealed_total", "Requests or replies sealed and handed to mangos.")
	descOpened    = desc("messages_opened_total", "Requests delivered to the application (REP) or replies opened (REQ).")
	descAnswered  = desc("requests_answered_total", "Requests the REP side answered itself: pings, refusals, hints and cached replies.")
	descRejected  = desc("messages_rejected_total", "Messages rejected, by reason (retries are counted apart).", "reason")
	descRetried   = desc("requests_retried_total", "Duplicates of requests in progress or answered from the reply cache (mangos REQ resends); normal under loss.")
	descAccepted  = desc("requests_accepted_total", "Requests accepted by the REP side (delivered or pings answered), by protection level.", "level")
	descSealing   = desc("requests_accepted_sealed_total", "Requests accepted by the REP side by how they were sealed: forward_secret (an epoch key) or long_term_only; hybrid counts those also sealed in the post-quantum hybrid mode (ML-KEM-768).", "sealing")
	descKey       = desc("server_key_requests_total", "Requests accepted by the REP side under each server key (fingerprint), with its role.", "server_key", "role")
	descPeers     = desc("peers", "Client short-term keys cached by the REP side.")
	descPeersMax  = desc("peers_limit", "Most client short-term keys the REP side caches (SECSOCK-PEER-CACHE-SIZE).")
	descTombs     = desc("tombstones", "Replay state entries kept for evicted client short-term keys.")
	descTombsMax  = desc("tombstones_limit", "Most replay state entries kept for evicted client short-term keys.")
	descReplies   = desc("reply_cache_bytes", "Bytes of replies kept for answering retries.")
	descRepliesMx = desc("reply_cache_bytes_limit", "Most bytes of replies kept for retries (SECSOCK-REPLY-CACHE-BYTES).")
	descStore     = desc("replay_store_total", "Use of the shared replay store (SECSOCK-REPLAY-STORE), by event: claims, hits (a reply another worker stored), waits, in_doubt, quiescent, errors, fallbacks, replies, operations.", "event")
	descStoreTime = desc("replay_store_seconds_total", "Total time of the shared replay store's round trips.")
	allDescs      = []*prometheus.Desc{descSealed, descOpened, descAnswered, descRejected, descRetried, descAccepted, descSealing,
		descKey, descPeers, descPeersMax, descTombs, descTombsMax, descReplies, descRepliesMx, descStore, descStoreTime}
)

// Describe sends the descriptors of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect reads every socket's counters.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.socks))
	for n := range c.socks {
		names = append(names, n)
	}
	socks := make([]*secsock.Socket, len(names))
	sort.Strings(names)
	for i, n := range names {
		socks[i] = c.socks[n]
	}
	c.mu.Unlock()
	for i, s := range socks {
		collect(ch, names[i], s)
	}
}

func collect(ch chan<- prometheus.Metric, name string, s *secsock.Socket) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{name}, labels...)...)
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), name)
	}
	st := s.Stats()
	counter(descSealed, st.Sealed)
	counter(descOpened, st.Opened)
	counter(descAnswered, st.Answered)
	counter(descRetried, st.Retries)
	for _, r := range secsock.Reasons() {
		if r != secsock.ReasonRetry {
			counter(descRejected, st.Rejected[r], r.String())
		}
	}
	if !isServer(s) {
		return
	}
	ss := s.ServerStats()
	counter(descAccepted, ss.Anonymous, "anonymous")
	counter(descAccepted, ss.Vouched, "vouched")
	counter(descSealing, ss.ForwardSecret, "forward_secret")
	counter(descSealing, ss.LongTermOnly, "long_term_only")
	counter(descSealing, ss.Hybrid, "hybrid")
	for _, k := range ss.ServerKeys {
		counter(descKey, k.Accepted, k.Key.Fingerprint(), k.Role)
	}
	gauge(descPeers, ss.Peers)
	gauge(descPeersMax, ss.PeerLimit)
	gauge(descTombs, ss.Tombstones)
	gauge(descTombsMax, ss.TombstoneLimit)
	gauge(descReplies, ss.ReplyBytes)
	gauge(descRepliesMx, ss.ReplyByteLimit)
	rs := ss.ReplayStore
	for _, e := range []struct {
		name string
		v    uint64
	}{{"claims", rs.Claims}, {"hits", rs.Hits}, {"waits", rs.Waits}, {"in_doubt", rs.InDoubt}, {"quiescent", rs.Quiescent},
		{"errors", rs.Errors}, {"fallbacks", rs.Fallbacks}, {"replies", rs.Replies}, {"operations", rs.Operations}} {
		counter(descStore, e.v, e.name)
	}
	ch <- prometheus.MustNewConstMetric(descStoreTime, prometheus.CounterValue, rs.Latency.Seconds(), name)
}

// isServer reports whether s is a REP socket.
func isServer(s *secsock.Socket) bool { return s.Info().Self == mangos.ProtoRep }
