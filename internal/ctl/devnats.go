package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/natsdev"
	"github.com/engram-memory/engram/internal/stream"
)

func init() {
	register("nats", "run the dev stack's NATS server (embedded nats-server, JetStream on file storage)", runNATS)
}

func runNATS(ctx context.Context, args []string, out, errOut io.Writer, _ func(string) string) error {
	fs := flag.NewFlagSet("nats", flag.ContinueOnError)
	fs.SetOutput(errOut)
	conf := fs.String("config", "deploy/nats/server.conf", "nats-server configuration file")
	port := fs.Int("port", 0, "client port (0: the config's)")
	store := fs.String("store-dir", "", "JetStream store directory (empty: the config's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := natsdev.Start(natsdev.Options{ConfigFile: *conf, Port: *port, StoreDir: *store})
	if err != nil {
		return err
	}
	defer s.Shutdown()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = stream.Ensure(sctx, js, 0)
	cancel()
	nc.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "nats: ready on %s (JetStream store %s)\n", s.ClientURL(), s.StoreDir())
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	fmt.Fprintln(out, "nats: stopped")
	return nil
}
