// Command memctl is Engram's operator CLI: the dev stack's NATS server, waiting for Neo4j,
// the seed demo, and (as they land) replay, verify, audit, erase, dlq and bench.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/engram-memory/engram/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
