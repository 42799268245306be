package mcp

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/events"
)

// Transports the server speaks.
const (
	TransportStdio = "stdio"
	TransportHTTP  = "http"
)

// Defaults of the MCP server's settings.
const (
	DefaultHTTPAddr    = "127.0.0.1:8083"
	DefaultIngestorURL = "http://127.0.0.1:8080"
	DefaultQueryURL    = "http://127.0.0.1:8081"
	DefaultApplyWait   = 10 * time.Second
	DefaultCallTimeout = time.Minute
	// Path is where the Streamable HTTP endpoint is served.
	Path = "/mcp"
)

// maxApplyWait bounds MCP_APPLY_WAIT: a tool call that holds the model longer than this is
// better answered "stored" (the write is in the log) than kept waiting.
const maxApplyWait = 2 * time.Minute

// Config is the MCP server's configuration, read once by LoadConfig.
type Config struct {
	// Transport is stdio (a host starts the server as a subprocess) or http (Streamable
	// HTTP on HTTPAddr at Path); MCP_TRANSPORT.
	Transport string
	// IngestorURL and QueryURL are Engram's write and read APIs (INGESTOR_URL, QUERY_URL).
	IngestorURL, QueryURL string
	// Token is the bearer credential sent to Engram over stdio (ENGRAM_TOKEN or the file
	// ENGRAM_TOKEN_FILE names). Over HTTP each request's own Authorization header is passed
	// through instead, so a token here is refused.
	Token     string
	TokenFile string
	// User, when set, is the one user this process acts for (ENGRAM_USER): tools take no
	// user_identifier then, and refuse one naming someone else.
	User string
	// MultiTenant is the seed's multi_tenant guardrail (MULTI_TENANT, default true): without
	// User every call must name its user_identifier. Off, a call without one uses the shared
	// tenant.
	MultiTenant bool
	// Erasure registers memory_erase_user (MCP_ERASURE, default false). Engram still requires
	// the admin scope for it.
	Erasure bool
	// ApplyWait is how long a write waits for the projector's decision before it answers
	// "stored" (MCP_APPLY_WAIT, default 10s; 0: do not wait).
	ApplyWait time.Duration
	// CallTimeout bounds each tool call's requests to Engram (MCP_CALL_TIMEOUT, default 1m).
	CallTimeout time.Duration
	// RequireToken makes the HTTP endpoint answer 401 to a request without a bearer token
	// (MCP_HTTP_REQUIRE_TOKEN, default false), so hosts ask for credentials up front.
	RequireToken bool
	// HTTPAddr and HTTP are the HTTP listener and its limits (HTTP_ADDR, HTTP_*), used with
	// the http transport only.
	HTTPAddr string
	HTTP     app.HTTPServerConfig
	// LogLevel and LogFormat as in every service; logs go to stderr (stdout is the stdio
	// transport's).
	LogLevel, LogFormat string
	ShutdownTimeout     time.Duration
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	switch c.Transport {
	case TransportStdio, TransportHTTP:
	default:
		errs = append(errs, fmt.Errorf("MCP_TRANSPORT %q: want stdio or http", c.Transport))
	}
	for _, u := range []struct{ env, v string }{{"INGESTOR_URL", c.IngestorURL}, {"QUERY_URL", c.QueryURL}} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q: want an http(s) URL such as http://127.0.0.1:8080", u.env, u.v))
		}
	}
	if c.Transport == TransportHTTP && (c.Token != "" || c.TokenFile != "") {
		errs = append(errs, errors.New("ENGRAM_TOKEN / ENGRAM_TOKEN_FILE: not with MCP_TRANSPORT=http, where each request's own bearer token is passed to Engram (a server-wide credential would let every caller act with it)"))
	}
	if c.Transport == TransportStdio && c.RequireToken {
		errs = append(errs, errors.New("MCP_HTTP_REQUIRE_TOKEN: only with MCP_TRANSPORT=http"))
	}
	if c.User != "" {
		if err := events.ValidateIdentifier(c.User); err != nil {
			errs = append(errs, fmt.Errorf("ENGRAM_USER: %w", err))
		}
	}
	if c.ApplyWait < 0 || c.ApplyWait > maxApplyWait {
		errs = append(errs, fmt.Errorf("MCP_APPLY_WAIT %s: want 0 to %s", c.ApplyWait, maxApplyWait))
	}
	if c.CallTimeout <= 0 || c.CallTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("MCP_CALL_TIMEOUT %s: want more than 0 and at most 10m", c.CallTimeout))
	}
	if c.ApplyWait >= c.CallTimeout && c.CallTimeout > 0 {
		errs = append(errs, fmt.Errorf("MCP_APPLY_WAIT %s: must be below MCP_CALL_TIMEOUT %s", c.ApplyWait, c.CallTimeout))
	}
	if c.Transport == TransportHTTP {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			errs = append(errs, fmt.Errorf("HTTP_ADDR %q: %w", c.HTTPAddr, err))
		}
		if err := c.HTTP.Validate(); err != nil {
			errs = append(errs, err)
		}
		if c.HTTP.WriteTimeout > 0 && c.HTTP.WriteTimeout <= c.CallTimeout {
			errs = append(errs, fmt.Errorf("HTTP_WRITE_TIMEOUT %s: must exceed MCP_CALL_TIMEOUT %s, the longest tool call", c.HTTP.WriteTimeout, c.CallTimeout))
		}
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT %q: want text or json", c.LogFormat))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT %s: must be positive", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// LoadConfig reads the configuration from args and the environment (getenv), each setting as
// -flag or ENV, reads ENGRAM_TOKEN_FILE, and validates the whole. -h returns flag.ErrHelp
// after printing the settings.
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("mcp", flag.ContinueOnError)
	f := app.NewFlags(fs, getenv)
	f.String(&c.Transport, "transport", "MCP_TRANSPORT", TransportStdio, "stdio or http (Streamable HTTP at "+Path+")")
	f.String(&c.IngestorURL, "ingestor-url", "INGESTOR_URL", DefaultIngestorURL, "Engram's ingestor (write API) base URL")
	f.String(&c.QueryURL, "query-url", "QUERY_URL", DefaultQueryURL, "Engram's query service (read API) base URL")
	f.String(&c.Token, "engram-token", "ENGRAM_TOKEN", "", "bearer token sent to Engram over stdio (prefer the environment or ENGRAM_TOKEN_FILE to the flag)")
	f.String(&c.TokenFile, "engram-token-file", "ENGRAM_TOKEN_FILE", "", "file holding the bearer token sent to Engram over stdio")
	f.String(&c.User, "user", "ENGRAM_USER", "", "the one user identifier this process acts for (tools then take no user_identifier)")
	f.Bool(&c.MultiTenant, "multi-tenant", "MULTI_TENANT", true, "require a user on every call")
	f.Bool(&c.Erasure, "erasure", "MCP_ERASURE", false, "offer memory_erase_user (Engram still requires the admin scope)")
	f.Duration(&c.ApplyWait, "apply-wait", "MCP_APPLY_WAIT", DefaultApplyWait, "how long a write waits for the projector's decision before answering \"stored\" (0: do not wait)")
	f.Duration(&c.CallTimeout, "call-timeout", "MCP_CALL_TIMEOUT", DefaultCallTimeout, "longest a tool call waits for Engram")
	f.Bool(&c.RequireToken, "http-require-token", "MCP_HTTP_REQUIRE_TOKEN", false, "http: answer 401 to requests without a bearer token")
	f.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", DefaultHTTPAddr, "http: listen address")
	bindHTTPServer(f, &c.HTTP)
	f.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	f.String(&c.LogFormat, "log-format", "LOG_FORMAT", "text", "text or json (logs go to stderr)")
	f.Duration(&c.ShutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 15*time.Second, "graceful shutdown limit")
	if err := f.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, errors.New("ENGRAM_TOKEN and ENGRAM_TOKEN_FILE: give one of them"))
	}
	if c.TokenFile != "" && c.Token == "" {
		b, err := os.ReadFile(c.TokenFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("ENGRAM_TOKEN_FILE: %w", err))
		case strings.TrimSpace(string(b)) == "":
			errs = append(errs, fmt.Errorf("ENGRAM_TOKEN_FILE %s: empty", c.TokenFile))
		default:
			c.Token = strings.TrimSpace(string(b))
		}
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// bindHTTPServer binds the HTTP server's limits under the names every service uses.
func bindHTTPServer(f *app.Flags, c *app.HTTPServerConfig) {
	d := app.DefaultHTTPServerConfig()
	f.Duration(&c.ReadHeaderTimeout, "http-read-header-timeout", "HTTP_READ_HEADER_TIMEOUT", d.ReadHeaderTimeout, "longest a client may take to send a request's headers")
	f.Duration(&c.ReadTimeout, "http-read-timeout", "HTTP_READ_TIMEOUT", d.ReadTimeout, "longest a client may take to send a whole request, body included")
	f.Duration(&c.WriteTimeout, "http-write-timeout", "HTTP_WRITE_TIMEOUT", d.WriteTimeout, "longest from a request's headers to the end of its answer")
	f.Duration(&c.IdleTimeout, "http-idle-timeout", "HTTP_IDLE_TIMEOUT", d.IdleTimeout, "how long an idle keep-alive connection stays open")
	f.Int(&c.MaxHeaderBytes, "http-max-header-bytes", "HTTP_MAX_HEADER_BYTES", d.MaxHeaderBytes, "largest request line and headers (431 beyond)")
}

// common is the part of app.Common the logger reads.
func (c Config) common() app.Common {
	return app.Common{Service: "mcp", LogLevel: c.LogLevel, LogFormat: c.LogFormat}
}
