package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// mcpBinary is the built cmd/mcp (testenv.Binaries builds every command).
func mcpBinary(t *testing.T) string {
	t.Helper()
	return filepath.Join(testenv.Binaries(t), "mcp")
}

// serverEnv is the environment of an MCP server of the stack: Engram's URLs, and a patient
// wait for the projector (the tests share the machine with Neo4j and each other).
func serverEnv(stack *testenv.Stack, extra ...string) []string {
	env := []string{
		"INGESTOR_URL=" + stack.IngestorURL, "QUERY_URL=" + stack.QueryURL,
		"MCP_APPLY_WAIT=60s", "MCP_CALL_TIMEOUT=2m", "HTTP_WRITE_TIMEOUT=3m", "LOG_LEVEL=info",
		// Not inherited from whoever runs the tests.
		"ENGRAM_USER=", "ENGRAM_TOKEN=", "ENGRAM_TOKEN_FILE=", "MCP_TRANSPORT=", "MCP_ERASURE=", "MULTI_TENANT=",
	}
	return append(env, extra...)
}

// connectStdio starts the MCP server binary as a host does, over stdio, and connects the Go
// SDK's client to it. The server's log is kept for failures.
func connectStdio(t *testing.T, env []string) *session {
	t.Helper()
	cmd := exec.Command(mcpBinary(t))
	cmd.Env = append(os.Environ(), env...)
	logs := &testenv.SyncBuffer{}
	cmd.Stderr = logs
	c := sdk.NewClient(&sdk.Implementation{Name: "engram-test", Version: "v0"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cs, err := c.Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect over stdio: %v\nserver log:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		_ = cs.Close()
		if t.Failed() {
			t.Logf("mcp server log:\n%s", logs.String())
		}
	})
	return &session{t: t, cs: cs, logs: logs}
}

// bearer adds a bearer token to every request, as an MCP host configured with one does.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// connectHTTP connects the Go SDK's client over Streamable HTTP with token ("" for none),
// offering protocol (the SDK's latest when "").
func connectHTTP(t *testing.T, endpoint, token, protocol string) (*session, error) {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "engram-test", Version: "v0"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: bearer{token}}},
		&sdk.ClientSessionOptions{ProtocolVersion: protocol})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = cs.Close() })
	return &session{t: t, cs: cs}, nil
}

var listening = regexp.MustCompile(`msg="http listening" .*addr=http://(127\.0\.0\.1:\d+)`)

// startHTTP runs the MCP server binary with the http transport and returns its base URL
// once /readyz answers (Engram's two APIs are ready).
func startHTTP(t *testing.T, env []string) (string, *testenv.SyncBuffer) {
	t.Helper()
	cmd := exec.Command(mcpBinary(t))
	cmd.Env = append(os.Environ(), append(env, "MCP_TRANSPORT=http", "HTTP_ADDR=127.0.0.1:0")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	logs := &testenv.SyncBuffer{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			_, _ = logs.Write([]byte(sc.Text() + "\n"))
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(time.Minute):
		t.Fatalf("mcp server did not listen within a minute; log:\n%s", logs.String())
	}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("mcp server not ready: %s", body)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mcp server log:\n%s", logs.String())
		}
	})
	return base, logs
}

// session is a connected MCP client with the helpers the tests call tools with.
type session struct {
	t    *testing.T
	cs   *sdk.ClientSession
	logs *testenv.SyncBuffer
}

// call calls a tool that must succeed and decodes its structured output into out.
func (s *session) call(name string, args map[string]any, out any) {
	s.t.Helper()
	res, err := s.cs.CallTool(s.t.Context(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		s.t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		s.t.Fatalf("%s(%v): tool error: %s", name, args, text(res))
	}
	if res.StructuredContent == nil {
		s.t.Fatalf("%s: no structured content", name)
	}
	// The text content is the same JSON, for clients without structured output.
	var fromText any
	if err := json.Unmarshal([]byte(text(res)), &fromText); err != nil {
		s.t.Fatalf("%s: text content is not the JSON of the output: %v", name, err)
	}
	if out != nil {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s: decode %s: %v", name, b, err)
		}
	}
}

// callErr calls a tool that must fail with a tool error (not a protocol error) and returns
// its text.
func (s *session) callErr(name string, args map[string]any) string {
	s.t.Helper()
	res, err := s.cs.CallTool(s.t.Context(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		s.t.Fatalf("%s: protocol error %v, want a tool error", name, err)
	}
	if !res.IsError {
		b, _ := json.Marshal(res.StructuredContent)
		s.t.Fatalf("%s(%v) succeeded (%s), want a tool error", name, args, b)
	}
	return text(res)
}

func text(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// tools lists the server's tools by name.
func (s *session) tools() map[string]*sdk.Tool {
	s.t.Helper()
	out := map[string]*sdk.Tool{}
	for tool, err := range s.cs.Tools(s.t.Context(), nil) {
		if err != nil {
			s.t.Fatal(err)
		}
		out[tool.Name] = tool
	}
	return out
}

// storedEvents counts the events of the stack's log: a refused call must not change it.
func storedEvents(t *testing.T, stack *testenv.Stack) uint64 {
	t.Helper()
	nc, err := nats.Connect(stack.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// schemaProps returns the property names and the required ones of a tool's input schema.
func schemaProps(t *testing.T, tool *sdk.Tool) (props map[string]bool, required map[string]bool) {
	t.Helper()
	b, err := json.Marshal(tool.InputSchema)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	props, required = map[string]bool{}, map[string]bool{}
	for k := range s.Properties {
		props[k] = true
	}
	for _, k := range s.Required {
		required[k] = true
	}
	return props, required
}
