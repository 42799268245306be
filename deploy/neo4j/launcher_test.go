// Package neo4j_test runs deploy/neo4j's launcher, which the development stack and every test
// use, and checks the settings it gives Neo4j and its refusal of a bad one.
package neo4j_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/testenv"
)

// settings reads Neo4j's values of the named settings.
func settings(t *testing.T, p *testenv.Neo4jProcess, names ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := neo4j.ExecuteQuery(ctx, p.Driver(t),
		"SHOW SETTINGS YIELD name, value WHERE name IN $names RETURN name, value",
		map[string]any{"names": names}, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatalf("SHOW SETTINGS: %v", err)
	}
	got := map[string]string{}
	for _, rec := range res.Records {
		name, _ := rec.Get("name")
		value, _ := rec.Get("value")
		got[name.(string)] = value.(string)
	}
	return got
}

const retention = "db.tx_log.rotation.retention_policy"

// TestLauncherSettings: the launcher's defaults are what it documents (its own transaction
// log retention rather than Neo4j's two days, Bolt on the loopback port it was given), and
// NEO4J_TX_LOG_RETENTION replaces the retention.
func TestLauncherSettings(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		p := testenv.StartNeo4jProcess(t, "NEO4J_TX_LOG_RETENTION=")
		got := settings(t, p, retention, "db.transaction.timeout", "server.bolt.listen_address", "dbms.security.auth_enabled")
		want := map[string]string{
			retention:                    "512M size",
			"db.transaction.timeout":     "5m",
			"server.bolt.listen_address": strings.TrimPrefix(p.URI, "bolt://"),
			"dbms.security.auth_enabled": "true",
		}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("%s = %q, want %q (all: %v)", name, got[name], w, got)
			}
		}
	})
	t.Run("retention from the environment", func(t *testing.T) {
		p := testenv.StartNeo4jProcess(t, "NEO4J_TX_LOG_RETENTION=2 days")
		if got := settings(t, p, retention)[retention]; got != "2 days" {
			t.Errorf("%s = %q, want %q", retention, got, "2 days")
		}
	})
}

// TestLauncherRefusesABadSetting: a retention Neo4j cannot parse stops the launcher with a
// one-line cause naming the setting, before it creates a store.
func TestLauncherRefusesABadSetting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	cmd := testenv.LauncherCommand(t, "NEO4J_BOLT_PORT="+port, "NEO4J_DATA_DIR="+t.TempDir(),
		"NEO4J_TX_LOG_RETENTION=forever")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Minute
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("launcher ended with %v, want exit status 2; output:\n%s", err, out.String())
	}
	msg := strings.TrimSpace(out.String())
	if !strings.HasPrefix(msg, "engram-neo4j: bad setting: ") || !strings.Contains(msg, retention) ||
		!strings.Contains(msg, "forever") || strings.Contains(msg, "\n") {
		t.Errorf("output %q, want one line naming %s and the value", msg, retention)
	}
}
