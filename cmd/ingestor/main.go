// Command ingestor serves Engram's write API: it validates commands, enforces tenancy and
// answers only after JetStream stored the resulting CloudEvents. It needs NATS only: it has no
// Neo4j driver, so it starts and takes writes while Neo4j is down.
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
	// The write path's garbage collector (app.TuneGC says why), unless GOGC or GOMEMLIMIT
	// is set.
	app.TuneGC(os.Getenv, app.HotPathGCPercent, app.HotPathMemoryLimit)
	fx.New(
		app.Module(cfg.Common),
		ingest.Module(cfg),
		app.WithLogger(),
		app.Timeouts(cfg.Common),
	).Run()
}
