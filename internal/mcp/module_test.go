package mcp

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/testenv"
)

func TestModuleValidates(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{TransportStdio, TransportHTTP} {
		c, err := LoadConfig(nil, env(map[string]string{"MCP_TRANSPORT": transport}))
		if err != nil {
			t.Fatal(err)
		}
		if err := fx.ValidateApp(Module(c), app.WithLogger(), Timeouts(c)); err != nil {
			t.Errorf("%s: %v", transport, err)
		}
	}
}

// TestHTTPModule starts the http transport's app: it binds on start, answers /healthz, and
// /readyz names Engram's APIs and says which do not answer.
func TestHTTPModule(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(nil, env(map[string]string{"MCP_TRANSPORT": "http", "HTTP_ADDR": "127.0.0.1:0",
		"INGESTOR_URL": "http://127.0.0.1:1", "QUERY_URL": "http://127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	a := fxtest.New(t, Module(c), fx.Replace(app.NewLogger(logs, c.common())))
	a.RequireStart()
	defer a.RequireStop()
	m := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no address logged:\n%s", logs.String())
	}
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		return resp.StatusCode, body
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	code, body := get("/readyz")
	failed, _ := body["failed"].(map[string]any)
	if code != http.StatusServiceUnavailable || failed["ingestor"] == nil || failed["query"] == nil {
		t.Errorf("/readyz with Engram down: %d %v", code, body)
	}
	if code, _ := get(Path); code != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d, want 405 (stateless: no standalone stream)", Path, code)
	}
}
