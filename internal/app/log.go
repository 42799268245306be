package app

import (
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns the service's logger: constant messages, data in attributes.
func NewLogger(w io.Writer, c Common) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(c.LogLevel)))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("service", c.Service)
}
