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
	register("nats", "run a NATS server embedded (JetStream on file storage): the dev stack's, or the production configuration", runNATS)
}

// runNATS runs nats-server in-process with a configuration file and applies the streams.
// With a configuration that requires credentials (deploy/production/nats-server.conf, which
// includes deploy/nats/accounts.conf), memctl applies the streams as the admin user:
// -user (default engram-admin) and the plain password from ENGRAM_NATS_ADMIN_PASSWORD_PLAIN
// or -password; the server itself reads its users' bcrypt hashes from its environment.
func runNATS(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("nats", flag.ContinueOnError)
	fs.SetOutput(errOut)
	conf := fs.String("config", "deploy/nats/server.conf", "nats-server configuration file (deploy/production/nats-server.conf: the production accounts)")
	host := fs.String("host", "", "client listen host (empty: the config's)")
	port := fs.Int("port", 0, "client port (0: the config's, -1: any free port)")
	store := fs.String("store-dir", "", "JetStream store directory (empty: the config's)")
	user := fs.String("user", "", "NATS user memctl applies the streams as, when the config has users (e.g. engram-admin)")
	password := fs.String("password", "", "that user's plain password (default: env ENGRAM_NATS_ADMIN_PASSWORD_PLAIN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *password == "" && getenv != nil {
		*password = getenv("ENGRAM_NATS_ADMIN_PASSWORD_PLAIN")
	}
	if *password != "" && *user == "" {
		*user = "engram-admin"
	}
	s, err := natsdev.Start(natsdev.Options{ConfigFile: *conf, Host: *host, Port: *port, StoreDir: *store})
	if err != nil {
		return err
	}
	defer s.Shutdown()
	opts := []nats.Option{nats.Name("memctl")}
	if *user != "" {
		opts = append(opts, nats.UserInfo(*user, *password))
	}
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		return fmt.Errorf("connect to the server to apply the streams (a config with users needs -user and -password or ENGRAM_NATS_ADMIN_PASSWORD_PLAIN): %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = stream.Ensure(sctx, js, 0)
	cancel()
	nc.Close()
	if err != nil {
		return fmt.Errorf("apply the streams: %w", err)
	}
	fmt.Fprintf(out, "nats: ready on %s (JetStream store %s)\n", s.ClientURL(), s.StoreDir())
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	fmt.Fprintln(out, "nats: stopped")
	return nil
}
