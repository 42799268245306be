// Package production_test checks the files of deploy/production: the NATS node configuration
// as nats-server reads it (with the accounts it includes) and each service's environment as
// the service reads it.
package production_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/query"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestMonitoringNotPublic: nats-server.conf, read with its includes, serves monitoring (which
// lists every connection's nkey and subscriptions, without authentication) on the loopback
// interface only, or not at all; clients and routes still listen where the cluster needs them.
func TestMonitoringNotPublic(t *testing.T) {
	o := testenv.CopyProductionConfig(t).Options(t)
	if addr := testenv.MonitorAddr(o); addr != "" {
		host := o.HTTPHost
		if host == "" {
			host = o.Host
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Errorf("monitoring listens on %s: a public interface", addr)
		}
	}
	if o.Cluster.Name != "engram" || len(o.Routes) != 3 || o.MaxPayload != 1<<20 {
		t.Errorf("cluster %q with %d routes, max payload %d", o.Cluster.Name, len(o.Routes), o.MaxPayload)
	}
	// The durability choice of docs/operations.md: every write fsynced before it is acknowledged.
	if !o.SyncAlways {
		t.Errorf("jetstream sync_interval is %s, not always", o.SyncInterval)
	}
	// The accounts came through the include, with every service user.
	users := map[string]bool{}
	for _, u := range o.Users {
		users[u.Username] = u.Password != "" && u.Permissions != nil || u.Username == "engram-admin"
	}
	for _, want := range []string{"engram-admin", "engram-ingestor", "engram-projector", "engram-query"} {
		if !users[want] {
			t.Errorf("user %s missing or without password and permissions", want)
		}
	}
}

// TestServiceEnvFiles: each service accepts engram.env with its own file, with the secrets
// the files leave to the platform (NATS_URL with its user's password, NEO4J_PASSWORD, the
// HS256 secret file) filled in as an operator would.
func TestServiceEnvFiles(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "engram-jwt-hs256")
	if err := os.WriteFile(secret, []byte(strings.Repeat("x", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		svc, file string
		load      func([]string, func(string) string) error
	}{
		{"ingestor", "ingestor.env", func(a []string, g func(string) string) error { _, err := ingest.LoadConfig(a, g); return err }},
		{"projector", "projector.env", func(a []string, g func(string) string) error { _, err := projection.LoadConfig(a, g); return err }},
		{"query", "query.env", func(a []string, g func(string) string) error { _, err := query.LoadConfig(a, g); return err }},
	} {
		svc, fn := c.svc, c.load
		env := testenv.ReadEnvFiles(t, "engram.env", c.file)
		if env["AUTH_ENABLED"] != "true" {
			t.Errorf("%s: authentication is not on", svc)
		}
		if got := env["AUTH_HS256_SECRET_FILE"]; got != "" {
			env["AUTH_HS256_SECRET_FILE"] = secret
		}
		env["NATS_URL"] = "nats://engram-" + svc + ":pw@nats-1:4222,nats://engram-" + svc + ":pw@nats-2:4222"
		env["NEO4J_PASSWORD"] = "from-the-secret-store"
		if err := fn(nil, func(k string) string { return env[k] }); err != nil {
			t.Errorf("%s: %v", c.file, err)
		}
	}
}
