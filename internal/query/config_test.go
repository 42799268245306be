package query

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/app"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Common.HTTPAddr != "127.0.0.1:8081" || c.Common.Service != "query" || c.ConsistencyWait != 5*time.Second ||
		c.ReadTimeout != 5*time.Second || c.CheckpointGroup != "projector" || c.MaxLimit != 1000 {
		t.Fatalf("defaults %+v", c)
	}
	c, err = LoadConfig([]string{"-max-limit", "200"}, env(map[string]string{
		"CONSISTENCY_WAIT": "750ms", "PROJECTOR_GROUP": "proj-blue", "MAX_LIMIT": "50", "HTTP_ADDR": "127.0.0.1:9999",
		"READ_TIMEOUT": "2s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ConsistencyWait != 750*time.Millisecond || c.ReadTimeout != 2*time.Second || c.CheckpointGroup != "proj-blue" || c.MaxLimit != 200 || c.Common.HTTPAddr != "127.0.0.1:9999" {
		t.Fatalf("overrides %+v", c)
	}
	if _, err := LoadConfig([]string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := LoadConfig(nil, env(map[string]string{
		"CONSISTENCY_WAIT": "2h", "PROJECTOR_GROUP": "bad group", "MAX_LIMIT": "0", "HTTP_ADDR": "nope",
		"READ_TIMEOUT": "0s",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"CONSISTENCY_WAIT", "READ_TIMEOUT", "PROJECTOR_GROUP", "MAX_LIMIT", "HTTP_ADDR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
	if _, err := LoadConfig(nil, env(map[string]string{"CONSISTENCY_WAIT": "soon"})); err == nil || !strings.Contains(err.Error(), "CONSISTENCY_WAIT") {
		t.Fatalf("unparsable duration: %v", err)
	}
}

func TestModuleGraph(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.ValidateApp(app.Module(c.Common), app.Neo4jModule(), Module(c)); err != nil {
		t.Fatal(err)
	}
}

func TestNewReaderRejectsBadOptions(t *testing.T) {
	t.Parallel()
	if _, err := NewReader(nil, ""); err == nil {
		t.Fatal("nil driver accepted")
	}
	d := neo4jDriver(t)
	for _, o := range []Option{WithCheckpointGroup(""), WithCheckpointGroup("a.b"), WithMaxLimit(0), WithPartitionLog(nil)} {
		if _, err := NewReader(d, "", o); err == nil {
			t.Fatal("bad option accepted")
		}
	}
}

// TestConfigWriteTimeoutCoversTheLongestRead: the HTTP server's write timeout (issue 12
// finding 12) must not cut a read that waits its full CONSISTENCY_WAIT and READ_TIMEOUT.
func TestConfigWriteTimeoutCoversTheLongestRead(t *testing.T) {
	t.Parallel()
	if _, err := LoadConfig(nil, env(map[string]string{"CONSISTENCY_WAIT": "1m", "READ_TIMEOUT": "1m"})); err != nil {
		t.Fatalf("the longest read with the default write timeout: %v", err)
	}
	_, err := LoadConfig(nil, env(map[string]string{"CONSISTENCY_WAIT": "1m", "READ_TIMEOUT": "30s", "HTTP_WRITE_TIMEOUT": "90s"}))
	if err == nil || !strings.Contains(err.Error(), "HTTP_WRITE_TIMEOUT") {
		t.Fatalf("write timeout equal to the longest read: %v", err)
	}
}
