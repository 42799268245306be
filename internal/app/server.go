package app

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// HTTPServerConfig bounds what one client may hold of an HTTP server: how long it may take to
// send its headers and its body, how long the server spends answering, how long an idle
// keep-alive connection stays open, and how large the headers may be. Without them a client
// that sends slowly holds a connection (and a goroutine) for ever, authenticated or not.
type HTTPServerConfig struct {
	ReadHeaderTimeout time.Duration // HTTP_READ_HEADER_TIMEOUT: the request line and headers
	ReadTimeout       time.Duration // HTTP_READ_TIMEOUT: the whole request, body included
	// WriteTimeout (HTTP_WRITE_TIMEOUT) runs from the end of the headers to the end of the
	// answer, so it covers the handler: the query service requires it above
	// CONSISTENCY_WAIT + READ_TIMEOUT, its longest read.
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration // HTTP_IDLE_TIMEOUT: a keep-alive connection between requests
	MaxHeaderBytes int           // HTTP_MAX_HEADER_BYTES: request line and headers; more is 431
}

// Defaults of HTTPServerConfig. The write timeout covers the query service's longest
// configurable read (CONSISTENCY_WAIT at most 1m, READ_TIMEOUT at most 1m) with a margin.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 150 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
)

// DefaultHTTPServerConfig returns the defaults.
func DefaultHTTPServerConfig() HTTPServerConfig {
	return HTTPServerConfig{
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
	}
}

// Validate reports every problem at once. Every limit must be set: zero means "none" to
// net/http, which is what this configuration exists to prevent.
func (c HTTPServerConfig) Validate() error {
	var errs []error
	for _, d := range []struct {
		env string
		v   time.Duration
	}{
		{"HTTP_READ_HEADER_TIMEOUT", c.ReadHeaderTimeout},
		{"HTTP_READ_TIMEOUT", c.ReadTimeout},
		{"HTTP_WRITE_TIMEOUT", c.WriteTimeout},
		{"HTTP_IDLE_TIMEOUT", c.IdleTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", d.env, d.v))
		}
	}
	if c.ReadHeaderTimeout > 0 && c.ReadTimeout > 0 && c.ReadHeaderTimeout > c.ReadTimeout {
		errs = append(errs, fmt.Errorf("HTTP_READ_HEADER_TIMEOUT %s: at most HTTP_READ_TIMEOUT %s", c.ReadHeaderTimeout, c.ReadTimeout))
	}
	if c.MaxHeaderBytes < 4<<10 || c.MaxHeaderBytes > 1<<20 {
		errs = append(errs, fmt.Errorf("HTTP_MAX_HEADER_BYTES %d: want 4096 to 1048576", c.MaxHeaderBytes))
	}
	return errors.Join(errs...)
}

// bindHTTPServer binds the settings with their defaults.
func bindHTTPServer(f *Flags, c *HTTPServerConfig) {
	d := DefaultHTTPServerConfig()
	f.Duration(&c.ReadHeaderTimeout, "http-read-header-timeout", "HTTP_READ_HEADER_TIMEOUT", d.ReadHeaderTimeout, "longest a client may take to send a request's headers")
	f.Duration(&c.ReadTimeout, "http-read-timeout", "HTTP_READ_TIMEOUT", d.ReadTimeout, "longest a client may take to send a whole request, body included")
	f.Duration(&c.WriteTimeout, "http-write-timeout", "HTTP_WRITE_TIMEOUT", d.WriteTimeout, "longest from a request's headers to the end of its answer")
	f.Duration(&c.IdleTimeout, "http-idle-timeout", "HTTP_IDLE_TIMEOUT", d.IdleTimeout, "how long an idle keep-alive connection stays open")
	f.Int(&c.MaxHeaderBytes, "http-max-header-bytes", "HTTP_MAX_HEADER_BYTES", d.MaxHeaderBytes, "largest request line and headers (431 beyond)")
}

// NewHTTPServer returns an http.Server for h with c's limits. A zero limit takes its default
// (a Common built in code rather than by BindCommon still gets limits), never "none".
func NewHTTPServer(c HTTPServerConfig, h http.Handler) *http.Server {
	d := DefaultHTTPServerConfig()
	for _, p := range []struct{ v, def *time.Duration }{
		{&c.ReadHeaderTimeout, &d.ReadHeaderTimeout}, {&c.ReadTimeout, &d.ReadTimeout},
		{&c.WriteTimeout, &d.WriteTimeout}, {&c.IdleTimeout, &d.IdleTimeout},
	} {
		if *p.v <= 0 {
			*p.v = *p.def
		}
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
	}
}
