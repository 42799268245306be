package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/graph"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Users limits the comparison to these users' tenants; empty: every owner found in either
	// graph.
	Users       []string
	MultiTenant bool
	Database    string // of both graphs
	MaxDiff     int    // differences to report; default 20
	Progress    Options
}

// Verification is the outcome of Verify.
type Verification struct {
	Live, Replayed fingerprint.Fingerprint
	Equal          bool
	Diff           string // the first differences when not Equal
	Replay         Stats
}

// ErrSameDatabase means the scratch graph is the live one.
var ErrSameDatabase = errors.New("the scratch database must not be the live one")

// Verify rebuilds the graph from the whole stream into scratch (wiping it) and compares its
// fingerprint with the live graph's. The live graph is only read; a scratch that is the live
// database by its identity (Distinct), whatever its address, is refused before anything is
// written. For an exact answer the live projector should be caught up and writes quiet
// (docs/replay.md).
func Verify(ctx context.Context, live, scratch neo4j.DriverWithContext, js jetstream.JetStream, o VerifyOptions) (Verification, error) {
	var v Verification
	if err := Distinct(ctx, live, o.Database, scratch, o.Database); err != nil {
		return v, err
	}
	if o.MaxDiff <= 0 {
		o.MaxDiff = 20
	}
	if err := graph.ApplySchema(ctx, scratch, o.Database); err != nil {
		return v, fmt.Errorf("scratch schema: %w", err)
	}
	ro := o.Progress
	ro.Wipe, ro.Force, ro.MultiTenant, ro.Database = true, true, o.MultiTenant, o.Database
	ro.LiveGroup = "verify"
	st, err := Run(ctx, scratch, js, ro)
	if err != nil {
		return v, fmt.Errorf("replay into scratch: %w", err)
	}
	v.Replay = st

	scope := fingerprint.Scope{}
	if len(o.Users) > 0 {
		for _, u := range o.Users {
			tok, err := events.TenantToken(u)
			if err != nil {
				return v, err
			}
			scope.Owners = append(scope.Owners, tok)
		}
	} else {
		for _, d := range []neo4j.DriverWithContext{live, scratch} {
			owners, tools, err := inventory(ctx, d, o.Database)
			if err != nil {
				return v, err
			}
			scope.Owners = append(scope.Owners, owners...)
			scope.Tools = append(scope.Tools, tools...)
		}
		slices.Sort(scope.Owners)
		scope.Owners = slices.Compact(scope.Owners)
		slices.Sort(scope.Tools)
		scope.Tools = slices.Compact(scope.Tools)
	}
	if v.Live, err = fingerprint.Of(ctx, live, o.Database, scope); err != nil {
		return v, fmt.Errorf("live fingerprint: %w", err)
	}
	if v.Replayed, err = fingerprint.Of(ctx, scratch, o.Database, scope); err != nil {
		return v, fmt.Errorf("replayed fingerprint: %w", err)
	}
	v.Equal = v.Live.Equal(v.Replayed)
	if !v.Equal {
		v.Diff = fingerprint.Diff(v.Live, v.Replayed, o.MaxDiff)
	}
	return v, nil
}

// inventory lists every owner and Tool name in a graph, label by label (index-backed).
func inventory(ctx context.Context, d neo4j.DriverWithContext, database string) (owners, tools []string, err error) {
	for _, label := range graph.OwnedLabels {
		res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (n:"+label+") WHERE n.owner IS NOT NULL RETURN DISTINCT n.owner AS o", nil,
			neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(database))
		if err != nil {
			return nil, nil, err
		}
		for _, r := range res.Records {
			if s, ok := r.Values[0].(string); ok {
				owners = append(owners, s)
			}
		}
	}
	res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (t:Tool) RETURN t.name AS n", nil,
		neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(database))
	if err != nil {
		return nil, nil, err
	}
	for _, r := range res.Records {
		if s, ok := r.Values[0].(string); ok {
			tools = append(tools, s)
		}
	}
	return owners, tools, nil
}
