package mcp

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Transport != TransportStdio || c.IngestorURL != DefaultIngestorURL || c.QueryURL != DefaultQueryURL || !c.MultiTenant ||
		c.Erasure || c.ApplyWait != DefaultApplyWait || c.CallTimeout != DefaultCallTimeout || c.HTTPAddr != DefaultHTTPAddr {
		t.Errorf("defaults: %+v", c)
	}
	c, err = LoadConfig([]string{"-transport", "http", "-user", "sara@omg.com"}, env(map[string]string{"MCP_ERASURE": "true", "MCP_APPLY_WAIT": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Transport != TransportHTTP || c.User != "sara@omg.com" || !c.Erasure || c.ApplyWait != 0 {
		t.Errorf("flags and environment: %+v", c)
	}
	if _, err := LoadConfig([]string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestLoadConfigToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(nil, env(map[string]string{"ENGRAM_TOKEN_FILE": file}))
	if err != nil || c.Token != "s3cret-token" {
		t.Errorf("token file: %q, %v", c.Token, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing file", map[string]string{"ENGRAM_TOKEN_FILE": filepath.Join(dir, "none")}, "ENGRAM_TOKEN_FILE"},
		{"empty file", map[string]string{"ENGRAM_TOKEN_FILE": empty}, "empty"},
		{"both", map[string]string{"ENGRAM_TOKEN_FILE": file, "ENGRAM_TOKEN": "x"}, "give one of them"},
		{"over http", map[string]string{"ENGRAM_TOKEN": "x", "MCP_TRANSPORT": "http"}, "each request's own bearer token"},
	} {
		_, err := LoadConfig(nil, env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret-token") {
			t.Errorf("%s: the error shows the token: %v", tc.name, err)
		}
	}
}

// TestConfigValidate: every bad setting is named, all of them at once.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good, err := LoadConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"transport", func(c *Config) { c.Transport = "sse" }, "MCP_TRANSPORT"},
		{"ingestor url", func(c *Config) { c.IngestorURL = "ftp://x" }, "INGESTOR_URL"},
		{"query url", func(c *Config) { c.QueryURL = "127.0.0.1:8081" }, "QUERY_URL"},
		{"user", func(c *Config) { c.User = " sara" }, "ENGRAM_USER"},
		{"apply wait", func(c *Config) { c.ApplyWait = time.Hour }, "MCP_APPLY_WAIT"},
		{"apply wait beyond the call", func(c *Config) { c.ApplyWait, c.CallTimeout = time.Minute, time.Minute }, "below MCP_CALL_TIMEOUT"},
		{"call timeout", func(c *Config) { c.CallTimeout = 0 }, "MCP_CALL_TIMEOUT"},
		{"require token over stdio", func(c *Config) { c.RequireToken = true }, "MCP_HTTP_REQUIRE_TOKEN"},
		{"http addr", func(c *Config) { c.Transport, c.HTTPAddr = TransportHTTP, "nowhere" }, "HTTP_ADDR"},
		{"write timeout", func(c *Config) { c.Transport, c.HTTP.WriteTimeout = TransportHTTP, 30*time.Second }, "HTTP_WRITE_TIMEOUT"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "LOG_LEVEL"},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, "LOG_FORMAT"},
		{"shutdown", func(c *Config) { c.ShutdownTimeout = 0 }, "SHUTDOWN_TIMEOUT"},
	} {
		c := good
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s named", tc.name, err, tc.want)
		}
	}
	c := good
	c.Transport, c.LogLevel, c.CallTimeout = "sse", "loud", 0
	err = c.Validate()
	for _, want := range []string{"MCP_TRANSPORT", "LOG_LEVEL", "MCP_CALL_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("all problems at once: %v lacks %s", err, want)
		}
	}
}
