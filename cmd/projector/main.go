// Command projector applies the memory stream to the Neo4j graph (docs/projector.md): batched,
// exactly once, in per-tenant order, with dead letters for events it cannot apply. Run several
// processes of one group to share the partitions.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/projection"
)

func main() {
	cfg, err := projection.LoadConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "projector: configuration:\n%v\n", err)
		os.Exit(2)
	}
	fx.New(
		app.Module(cfg.Common),
		app.Neo4jModule(),
		projection.Module(cfg),
		app.WithLogger(),
		app.Timeouts(cfg.Common),
	).Run()
}
