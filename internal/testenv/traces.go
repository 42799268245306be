package testenv

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// Needles are the strings that betray a user: the identifier, its tenant token and the user
// id (what an erasure must leave nowhere, issue 20).
func Needles(t testing.TB, user string) []string {
	t.Helper()
	tok, err := events.TenantToken(user)
	if err != nil {
		t.Fatal(err)
	}
	return []string{user, tok, events.UserID(user)}
}

// GraphTraces lists the nodes and relationships of the graph with a property (a string, or a
// list of strings) that contains one of needles.
func GraphTraces(ctx context.Context, t testing.TB, d neo4j.DriverWithContext, needles ...string) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`MATCH (n) UNWIND keys(n) AS k WITH n, k, n[k] AS v
		 WHERE any(s IN $needles WHERE (v IS :: STRING AND v CONTAINS s) OR (v IS :: LIST<STRING> AND any(x IN v WHERE x CONTAINS s)))
		 RETURN labels(n)[0] + '.' + k AS at`,
		`MATCH ()-[r]->() UNWIND keys(r) AS k WITH r, k, r[k] AS v
		 WHERE any(s IN $needles WHERE (v IS :: STRING AND v CONTAINS s) OR (v IS :: LIST<STRING> AND any(x IN v WHERE x CONTAINS s)))
		 RETURN type(r) + '.' + k AS at`,
	} {
		res, err := neo4j.ExecuteQuery(ctx, d, q, map[string]any{"needles": needles}, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatalf("scan the graph: %v", err)
		}
		for _, r := range res.Records {
			at, _ := r.Get("at")
			out = append(out, fmt.Sprint(at))
		}
	}
	return out
}

// StreamTraces lists the messages of a stream whose subject, headers or data contain one of
// needles, leaving out those keep accepts (the tombstone, which keeps the identifier by
// design: docs/replay.md).
func StreamTraces(ctx context.Context, t testing.TB, js jetstream.JetStream, name string, keep func(jetstream.RawStreamMsg) bool, needles ...string) []string {
	t.Helper()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted or purged
		}
		if keep != nil && keep(*m) {
			continue
		}
		text := m.Subject
		for k, vs := range m.Header {
			text += "\n" + k + ": " + strings.Join(vs, ",")
		}
		for _, n := range needles {
			if strings.Contains(text, n) || bytes.Contains(m.Data, []byte(n)) {
				out = append(out, fmt.Sprintf("%s seq %d (%s)", name, seq, m.Subject))
				break
			}
		}
	}
	return out
}
