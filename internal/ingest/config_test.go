package ingest_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/ingest"
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

func TestModuleGraph(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, true)
	if err := fx.ValidateApp(app.Module(cfg.Common), ingest.Module(cfg), fx.NopLogger); err != nil {
		t.Fatal(err)
	}
}

// TestModuleServes starts the ingestor as main assembles it (on embedded NATS and the local
// Neo4j the app module requires) and writes over real HTTP.
func TestModuleServes(t *testing.T) {
	t.Parallel()
	srv, _, _ := testenv.NATS(t)
	testenv.Neo4j(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg := testConfig(t, true)
	cfg.Common.NATSURL, cfg.Common.HTTPAddr, cfg.Common.LogLevel = srv.ClientURL(), addr, "error"
	n := testenv.Neo4jSettings()
	cfg.Common.Neo4j.URI, cfg.Common.Neo4j.User, cfg.Common.Neo4j.Password = n.URI, n.User, n.Password
	fxApp := fxtest.New(t, app.Module(cfg.Common), ingest.Module(cfg), fx.NopLogger)
	fxApp.RequireStart()
	defer fxApp.RequireStop()

	client := &http.Client{Timeout: 10 * time.Second}
	body := `{"user_identifier":"` + testenv.User(t, "fx") + `","session_id":"s","role":"user","content":"hi"}`
	resp, err := client.Post("http://"+addr+"/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST /v1/messages: %d", resp.StatusCode)
	}
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

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
