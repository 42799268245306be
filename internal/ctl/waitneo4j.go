package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

func init() {
	register("wait-neo4j", "wait until Neo4j answers on Bolt (driver VerifyConnectivity)", runWaitNeo4j)
}

func runWaitNeo4j(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("wait-neo4j", flag.ContinueOnError)
	fs.SetOutput(errOut)
	uri := fs.String("uri", envOr(getenv, "NEO4J_URI", "bolt://127.0.0.1:7687"), "Bolt URI")
	user := fs.String("user", envOr(getenv, "NEO4J_USER", "neo4j"), "user")
	password := fs.String("password", envOr(getenv, "NEO4J_PASSWORD", "engram-dev-password"), "password")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after")
	pid := fs.Int("pid", 0, "fail at once when this process exits")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := neo4j.NewDriverWithContext(*uri, neo4j.BasicAuth(*user, *password, ""))
	if err != nil {
		return err
	}
	defer d.Close(context.Background())
	deadline := time.Now().Add(*timeout)
	var last error
	for time.Now().Before(deadline) {
		if *pid > 0 {
			if p, _ := os.FindProcess(*pid); p == nil || p.Signal(syscall.Signal(0)) != nil {
				return fmt.Errorf("neo4j process %d exited before it was ready", *pid)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = d.VerifyConnectivity(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(500 * time.Millisecond)
	}
	return errors.Join(fmt.Errorf("neo4j at %s not ready within %s", *uri, *timeout), last)
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
