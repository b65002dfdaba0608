package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"go.nanomsg.org/mangos/v3"
)

// tlsFlags configure the tls+tcp:// and wss:// transports, like nngcat's
// --cert, --key, --cacert.
type tlsFlags struct {
	cert, key, ca, serverName string
}

const tlsUsage = `  --tls-cert FILE               PEM certificate (chain) for tls+tcp:// and wss://: the listener's, or the dialer's client certificate
  --tls-key FILE                PEM private key of --tls-cert
  --tls-ca FILE                 PEM CA certificates: a dialer verifies the server with them (default: the system's);
                                a listener then requires and verifies client certificates
  --tls-server-name NAME        name the server's certificate must have (default: the host of the address)
`

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert", "", "")
	fs.StringVar(&t.key, "tls-key", "", "")
	fs.StringVar(&t.ca, "tls-ca", "", "")
	fs.StringVar(&t.serverName, "tls-server-name", "", "")
}

func (t *tlsFlags) set() bool { return t.cert != "" || t.key != "" || t.ca != "" || t.serverName != "" }

// isTLS reports whether addr uses a TLS transport.
func isTLS(addr string) bool {
	return strings.HasPrefix(addr, "tls+tcp://") || strings.HasPrefix(addr, "wss://")
}

func (t *tlsFlags) certificate() ([]tls.Certificate, error) {
	if (t.cert == "") != (t.key == "") {
		return nil, errors.New("give --tls-cert and --tls-key together")
	}
	if t.cert == "" {
		return nil, nil
	}
	c, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		// The error may quote PEM block types, never the key itself.
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", t.cert, t.key, err)
	}
	return []tls.Certificate{c}, nil
}

func (t *tlsFlags) pool() (*x509.CertPool, error) {
	if t.ca == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(t.ca)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", t.ca)
	}
	return p, nil
}

// options returns the listener or dialer options for addr: a TLS
// configuration for tls+tcp:// and wss://, nil otherwise.
func (t *tlsFlags) options(addr string, listen bool) (map[string]any, error) {
	if !isTLS(addr) {
		return nil, nil
	}
	certs, err := t.certificate()
	if err != nil {
		return nil, err
	}
	pool, err := t.pool()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: certs}
	if listen {
		if certs == nil {
			return nil, fmt.Errorf("listen %s: a TLS listener needs --tls-cert and --tls-key", addr)
		}
		if pool != nil {
			cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	} else {
		cfg.RootCAs = pool
		cfg.ServerName = t.serverName
		if cfg.ServerName == "" {
			if u, err := url.Parse(addr); err == nil {
				if h, _, err := net.SplitHostPort(u.Host); err == nil {
					cfg.ServerName = h
				}
			}
		}
	}
	return map[string]any{mangos.OptionTLSConfig: cfg}, nil
}

// describe says how TLS is configured, for --print-config (the private
// key file is named, never read out).
func (t *tlsFlags) describe() string {
	if !t.set() {
		return "none (no --tls-* flags)"
	}
	var parts []string
	if t.cert != "" {
		parts = append(parts, "certificate "+t.cert, "private key "+t.key+" (redacted)")
	}
	if t.ca != "" {
		parts = append(parts, "CA "+t.ca)
	}
	if t.serverName != "" {
		parts = append(parts, "server name "+t.serverName)
	}
	return strings.Join(parts, ", ")
}
