package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/demo"
)

func init() {
	register("demo", "run the seed page's scenario against a running stack and print every answer", runDemo)
}

func runDemo(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(errOut)
	ingestor := fs.String("ingestor-url", envOr(getenv, "INGESTOR_URL", "http://127.0.0.1:8080"), "ingestor base URL")
	queryURL := fs.String("query-url", envOr(getenv, "QUERY_URL", "http://127.0.0.1:8081"), "query service base URL")
	sara := fs.String("sara", demo.SeedUsers.Sara, "first user")
	liam := fs.String("liam", demo.SeedUsers.Liam, "second user")
	token := fs.String("token", getenv("ENGRAM_TOKEN"), "bearer token when auth is on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := client.New(client.WithHTTP(*ingestor, *queryURL), client.WithMultiTenant(true), client.WithBearerToken(*token))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Engram demo: the seed page's multi-tenant scenario against %s and %s\n", *ingestor, *queryURL)
	fmt.Fprintln(out, "(each run adds to what earlier runs wrote for these users)")
	if _, err := demo.Run(ctx, c, demo.Users{Sara: *sara, Liam: *liam}, out); err != nil {
		return err
	}
	return nil
}
