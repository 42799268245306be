package ctl

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestNATSRunsTheProductionAccounts: memctl nats runs a configuration that includes the
// shipped deploy/nats/accounts.conf, applying the streams as engram-admin; without the admin's
// password it says what is missing instead of an Authorization Violation from nowhere.
func TestNATSRunsTheProductionAccounts(t *testing.T) {
	pc := testenv.CopyProductionConfig(t)
	conf := filepath.Join(pc.Dir, "nats", "server.conf")
	if err := os.WriteFile(conf, []byte("server_name: memctl-nats-test\ninclude \"accounts.conf\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-config", conf, "-host", "127.0.0.1", "-port", "-1", "-store-dir", t.TempDir()}

	var errOut testenv.SyncBuffer
	if err := runNATS(t.Context(), args, &testenv.SyncBuffer{}, &errOut, func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), "ENGRAM_NATS_ADMIN_PASSWORD_PLAIN") {
		t.Fatalf("without the admin's password: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	var out testenv.SyncBuffer
	done := make(chan error, 1)
	getenv := func(k string) string {
		if k == "ENGRAM_NATS_ADMIN_PASSWORD_PLAIN" {
			return pc.Passwords["admin"]
		}
		return ""
	}
	go func() { done <- runNATS(ctx, args, &out, &errOut, getenv) }()
	ready := regexp.MustCompile(`ready on (nats://\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	var url string
	for url == "" {
		if m := ready.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("memctl nats: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("memctl nats not ready: %s %s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The streams are there, and the services' users work with it; anonymous clients do not.
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Error("anonymous client connected")
	}
	nc, err := nats.Connect(url, nats.UserInfo("engram-ingestor", pc.Passwords["ingestor"]), nats.CustomInboxPrefix("_INBOX_ingestor"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := stream.Ping(t.Context(), js); err != nil {
		t.Fatalf("ingestor's readiness check: %v", err)
	}
	if _, err := js.Publish(t.Context(), "mem.sara_40omg_2Ecom.user_upserted", []byte("{}")); err != nil {
		t.Fatalf("ingestor publishes into the stream memctl applied: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
