// Command query serves Engram's reads over HTTP (docs/query.md): preferences with the seed's
// get_preferences_for semantics and bi-temporal reads, conversations, traces and the
// preference history, with read-your-writes through consistency tokens.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/query"
)

func main() {
	cfg, err := query.LoadConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "query: configuration:\n%v\n", err)
		os.Exit(2)
	}
	fx.New(
		app.Module(cfg.Common),
		app.Neo4jModule(),
		query.Module(cfg),
		app.WithLogger(),
		app.Timeouts(cfg.Common),
	).Run()
}
