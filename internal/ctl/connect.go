package ctl

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/stream"
)

// connectJS opens a short-lived connection for an operator command.
func connectJS(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("memctl"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats at %s (set --nats-url or NATS_URL): %w", stream.RedactURL(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
