// Command ingestor serves Engram's write API: it validates commands, enforces tenancy and
// answers only after JetStream stored the resulting CloudEvents.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/ingest"
)

func main() {
	cfg, err := ingest.LoadConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ingestor: %v\n", err)
		os.Exit(2)
	}
	fx.New(
		app.Module(cfg.Common),
		ingest.Module(cfg),
		app.WithLogger(),
		fx.StopTimeout(cfg.Common.ShutdownTimeout),
	).Run()
}
