// Command mcp serves Engram's memory to agent hosts over the Model Context Protocol, on stdio
// (a host starts it as a subprocess) or Streamable HTTP (docs/mcp.md). It is a client of the
// ingestor and the query service: it needs neither NATS nor Neo4j.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/mcp"
)

func main() {
	cfg, err := mcp.LoadConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mcp: configuration:\n%v\n", err)
		os.Exit(2)
	}
	fx.New(
		mcp.Module(cfg),
		app.WithLogger(),
		mcp.Timeouts(cfg),
	).Run()
}
