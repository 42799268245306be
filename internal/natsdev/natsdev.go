// Package natsdev runs nats-server in-process with JetStream on file storage: the dev stack's
// NATS (memctl nats) and the per-test server of integration tests. Production runs
// nats-server itself (deploy/nats/server.conf, a built binary or the official image).
package natsdev

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure an embedded server. Port -1 picks a free port.
type Options struct {
	Host       string
	Port       int
	HTTPPort   int // monitoring; 0 disables it
	StoreDir   string
	ConfigFile string // optional nats-server config file; Host/Port/StoreDir override it when set
}

// Start runs a server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	opts := &server.Options{}
	if o.ConfigFile != "" {
		fo, err := server.ProcessConfigFile(o.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("read nats config %s: %w", o.ConfigFile, err)
		}
		opts = fo
	}
	if o.Host != "" {
		opts.Host = o.Host
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if o.Port != 0 {
		opts.Port = o.Port
	}
	if o.HTTPPort != 0 {
		opts.HTTPPort = o.HTTPPort
	}
	if o.StoreDir != "" {
		opts.StoreDir = o.StoreDir
	}
	if opts.StoreDir == "" {
		return nil, errors.New("nats store directory is required")
	}
	opts.JetStream = true
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server on %s:%d not ready within 10s (port in use?)", opts.Host, opts.Port)
	}
	return s, nil
}
