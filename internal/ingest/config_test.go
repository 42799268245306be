package ingest_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cfg, err := ingest.LoadConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Common.HTTPAddr != "127.0.0.1:8080" || cfg.MaxBatch != 1000 || cfg.MaxBodyBytes != 1<<20 ||
		cfg.Source != ingest.DefaultSource || !cfg.Common.MultiTenant || cfg.Common.Service != "ingestor" {
		t.Errorf("defaults %+v", cfg)
	}
	cfg, err = ingest.LoadConfig([]string{"-max-batch", "20"}, env(map[string]string{"MULTI_TENANT": "false", "INGEST_MAX_BATCH": "10"}))
	if err != nil || cfg.MaxBatch != 20 || cfg.Common.MultiTenant {
		t.Errorf("flags over env: %+v, %v", cfg, err)
	}
	_, err = ingest.LoadConfig(nil, env(map[string]string{"INGEST_MAX_BATCH": "2000", "INGEST_MAX_BODY_BYTES": "10", "HTTP_ADDR": "nope"}))
	for _, want := range []string{"INGEST_MAX_BATCH", "INGEST_MAX_BODY_BYTES", "HTTP_ADDR"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// TestModuleGraph checks that cmd/ingestor's modules wire together without
// app.Neo4jModule: nothing on the write path asks for a Neo4j driver.
func TestModuleGraph(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, true)
	if err := fx.ValidateApp(app.Module(cfg.Common), ingest.Module(cfg), app.Timeouts(cfg.Common), fx.NopLogger); err != nil {
		t.Fatal(err)
	}
}

// TestModuleServesWithoutNeo4j starts the ingestor as main assembles it, on embedded NATS and
// with NEO4J_URI pointing at a port nothing listens on: writes need the log only
// (ARCHITECTURE invariant 9). It starts, is ready (checking NATS only, and saying so), and a
// write over real HTTP answers 202 and is in the stream.
func TestModuleServesWithoutNeo4j(t *testing.T) {
	t.Parallel()
	srv, _, js := testenv.NATS(t)
	addr, noNeo4j := freeAddr(t), freeAddr(t)
	cfg, err := ingest.LoadConfig(nil, env(map[string]string{
		"NATS_URL": srv.ClientURL(), "HTTP_ADDR": addr, "LOG_LEVEL": "error",
		"NEO4J_URI": "bolt://" + noNeo4j,
	}))
	if err != nil {
		t.Fatal(err)
	}
	fxApp := fxtest.New(t, app.Module(cfg.Common), ingest.Module(cfg), app.Timeouts(cfg.Common), fx.NopLogger)
	fxApp.RequireStart()
	defer fxApp.RequireStop()

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Status string            `json:"status"`
		Checks []string          `json:"checks"`
		Failed map[string]string `json:"failed"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ready)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || ready.Status != "ready" || !slices.Equal(ready.Checks, []string{"nats"}) {
		t.Fatalf("/readyz with Neo4j down: %d %+v (%v), want 200 ready checking nats only", resp.StatusCode, ready, err)
	}

	user := testenv.User(t, "fx")
	body := `{"user_identifier":"` + user + `","session_id":"s","role":"user","content":"hi"}`
	resp, err = client.Post("http://"+addr+"/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	a := reply{code: resp.StatusCode, body: raw}.accepted(t)
	m := stored(t, js, a.Sequence)
	if m.Header.Get(events.HeaderKey) == "" {
		t.Error("the module's ingestor stored the write unsealed (INGEST_ENCRYPTION is on by default)")
	}
	checkEnvelope(t, openStored(t, js, m), a.EventID, user, events.KindMessageAdded)

	resp, err = client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	if !strings.Contains(b.String(), `engram_ingest_requests_total{code="202",op="add_message"} 1`) {
		t.Errorf("metrics lack the request count:\n%s", grep(b.String(), "engram_ingest"))
	}
}

// freeAddr returns a local address nothing listens on (it was free a moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestConfigFairShareAndKeys: INGEST_MAX_OPEN_BATCHES defaults below the stream's open
// batch limit and must stay below it; INGEST_SIGNING_KEY_FILE is read by Keys, and without it
// the keys are random.
func TestConfigFairShareAndKeys(t *testing.T) {
	t.Parallel()
	cfg, err := ingest.LoadConfig(nil, env(nil))
	if err != nil || cfg.MaxOpenBatches != ingest.DefaultMaxOpenBatches || cfg.MaxOpenBatches >= stream.MaxOpenAtomicBatches {
		t.Fatalf("default max open batches %d, %v", cfg.MaxOpenBatches, err)
	}
	for _, v := range []string{"0", "50", "-1"} {
		if _, err := ingest.LoadConfig(nil, env(map[string]string{"INGEST_MAX_OPEN_BATCHES": v})); err == nil || !strings.Contains(err.Error(), "INGEST_MAX_OPEN_BATCHES") {
			t.Errorf("INGEST_MAX_OPEN_BATCHES=%s: %v", v, err)
		}
	}
	if _, random, err := cfg.Keys(); err != nil || !random {
		t.Errorf("keys without a file: random %v, %v", random, err)
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = ingest.LoadConfig([]string{"-signing-key-file", path}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if ks, random, err := cfg.Keys(); err != nil || random || len(ks) != 1 {
		t.Errorf("keys from %s: %d, random %v, %v", path, len(ks), random, err)
	}
	cfg.SigningKeyFile = filepath.Join(t.TempDir(), "missing")
	if _, _, err := cfg.Keys(); err == nil || !strings.Contains(err.Error(), "INGEST_SIGNING_KEY_FILE") {
		t.Errorf("missing key file: %v", err)
	}
}
