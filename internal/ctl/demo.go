package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/demo"
)

func init() {
	register("demo", "run the seed page's scenario against a running stack and print every answer", runDemo)
}

func runDemo(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(errOut)
	ingestor := fs.String("ingestor-url", envOr(getenv, "INGESTOR_URL", "http://127.0.0.1:8080"), "ingestor base URL")
	queryURL := fs.String("query-url", envOr(getenv, "QUERY_URL", "http://127.0.0.1:8081"), "query service base URL")
	projector := fs.String("projector-url", envOr(getenv, "PROJECTOR_URL", "http://127.0.0.1:8082"), "projector base URL, for its readiness (empty: not checked)")
	wait := fs.Duration("wait", 3*time.Minute, "how long to wait for the services' /readyz before the scenario (0: do not wait)")
	readRetry := fs.Duration("read-retry", time.Minute, "how long a read answered 503 or 504 is retried (0: not retried)")
	sara := fs.String("sara", demo.SeedUsers.Sara, "first user")
	liam := fs.String("liam", demo.SeedUsers.Liam, "second user")
	token := fs.String("token", getenv("ENGRAM_TOKEN"), "bearer token when auth is on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	hc := &http.Client{Transport: &retryReads{next: http.DefaultTransport, within: *readRetry, errOut: errOut}}
	c, err := client.New(client.WithHTTP(*ingestor, *queryURL), client.WithMultiTenant(true), client.WithBearerToken(*token),
		client.WithHTTPClient(hc))
	if err != nil {
		return err
	}
	if *wait > 0 {
		services := []struct{ name, url string }{{"ingestor", *ingestor}, {"projector", *projector}, {"query", *queryURL}}
		for _, s := range services {
			if s.url == "" {
				continue
			}
			if err := waitReady(ctx, s.name, strings.TrimSuffix(s.url, "/")+"/readyz", *wait, errOut); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(out, "Engram demo: the seed page's multi-tenant scenario against %s and %s\n", *ingestor, *queryURL)
	fmt.Fprintln(out, "(each run adds to what earlier runs wrote for these users)")
	if _, err := demo.Run(ctx, c, demo.Users{Sara: *sara, Liam: *liam}, out); err != nil {
		return err
	}
	return nil
}

// waitReady polls a service's /readyz until it answers 200, so that a demo started right
// after `make run` (or while a cold stack still warms up) does not fail on its first calls.
// It says what it waits for, at most every 5 s.
func waitReady(ctx context.Context, name, url string, within time.Duration, errOut io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	hc := &http.Client{Timeout: 5 * time.Second}
	var said time.Time
	for {
		why := ""
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			why = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			why = err.Error() + " (is the stack running? start it with `make run`)"
		}
		if time.Since(said) >= 5*time.Second {
			fmt.Fprintf(errOut, "demo: waiting for %s at %s: %s\n", name, url, why)
			said = time.Now()
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s at %s not ready within %s: %s", name, url, within, why)
			}
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// retryReads retries a read (GET) that the query service answered 503 (Neo4j unavailable) or
// 504 (the projection has not reached the consistency token yet), for at most within: both
// are documented as safe to retry with the same token, and on a stack that has just started
// the first events of a partition can take longer than the service's consistency wait. Each
// retry is said on errOut, so a slow projection shows instead of hiding.
type retryReads struct {
	next   http.RoundTripper
	within time.Duration
	errOut io.Writer
}

func (t *retryReads) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if req.Method != http.MethodGet || req.Body != nil || t.within <= 0 {
		return resp, err
	}
	deadline := time.Now().Add(t.within)
	for err == nil && (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout) &&
		time.Now().Before(deadline) {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		delay := time.Second
		if s, convErr := strconv.Atoi(resp.Header.Get("Retry-After")); convErr == nil && s > 0 {
			delay = time.Duration(s) * time.Second
		}
		fmt.Fprintf(t.errOut, "demo: %s answered %d (%s); retrying in %s\n", req.URL.Path, resp.StatusCode, strings.TrimSpace(string(body)), delay)
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(delay):
		}
		resp, err = t.next.RoundTrip(req)
	}
	return resp, err
}
