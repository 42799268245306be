package app

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestHTTPServerClosesSlowClients covers issue 12 finding 12: a client that sends its headers
// or its body slowly, or keeps an idle connection, is disconnected by the server; a request
// with oversized headers is refused. Nothing is authenticated here: the limits hold before any
// handler runs.
func TestHTTPServerClosesSlowClients(t *testing.T) {
	t.Parallel()
	c := HTTPServerConfig{
		ReadHeaderTimeout: 200 * time.Millisecond,
		ReadTimeout:       300 * time.Millisecond,
		WriteTimeout:      time.Second,
		IdleTimeout:       300 * time.Millisecond,
		MaxHeaderBytes:    4 << 10,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "slow body", http.StatusRequestTimeout)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := NewHTTPServer(c, mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	// closed reads until the server closes the connection; the deadline is only the test's
	// guard against hanging, far above the server's limits.
	closed := func(t *testing.T, conn net.Conn) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the server kept the connection open")
		}
	}
	dial := func(t *testing.T) net.Conn {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}

	t.Run("slow headers", func(t *testing.T) {
		t.Parallel()
		conn := dial(t)
		_, _ = io.WriteString(conn, "GET /ok HTTP/1.1\r\nHost: engram\r\n")
		closed(t, conn)
	})
	t.Run("slow body", func(t *testing.T) {
		t.Parallel()
		conn := dial(t)
		_, _ = io.WriteString(conn, "POST /echo HTTP/1.1\r\nHost: engram\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":")
		closed(t, conn)
	})
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		conn := dial(t)
		_, _ = io.WriteString(conn, "GET /ok HTTP/1.1\r\nHost: engram\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("first request: %v %v", resp, err)
		}
		_ = resp.Body.Close()
		closed(t, conn)
	})
	t.Run("oversized headers", func(t *testing.T) {
		t.Parallel()
		conn := dial(t)
		_, _ = io.WriteString(conn, "GET /ok HTTP/1.1\r\nHost: engram\r\nX-Big: "+strings.Repeat("a", 16<<10)+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("got %v %v, want 431", resp, err)
		}
		_ = resp.Body.Close()
	})
}

func TestHTTPServerConfigValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultHTTPServerConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := HTTPServerConfig{}.Validate()
	for _, want := range []string{"HTTP_READ_HEADER_TIMEOUT", "HTTP_READ_TIMEOUT", "HTTP_WRITE_TIMEOUT", "HTTP_IDLE_TIMEOUT", "HTTP_MAX_HEADER_BYTES"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("zero config: error does not name %s: %v", want, err)
		}
	}
}
