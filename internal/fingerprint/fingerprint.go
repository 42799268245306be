// Package fingerprint reduces a part of the graph to a canonical, sorted list of lines (every
// node with its labels and properties, every relationship with its type, properties and end
// nodes) and a hash of it, so that two projections of the same events can be compared node
// for node and property for property, and told apart with a readable diff. A Scope limits it
// to some owners (tenant tokens), so tests sharing one database compare only their own data.
package fingerprint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"
)

// Scope says what a fingerprint covers: every node owned by one of Owners, the Tool nodes
// their tool calls are instances of plus those named in Tools, and every relationship that
// touches an owned node in scope.
type Scope struct {
	Owners []string // tenant tokens (events.TenantToken)
	Tools  []string // Tool names to include even when no call in scope links to them
	// IgnoreProperties are left out of every node and relationship (e.g. "recorded_at" when
	// comparing projections of different streams).
	IgnoreProperties []string
}

// Fingerprint is the canonical form of a scope of the graph.
type Fingerprint struct {
	Hash          string   // hex SHA-256 of Lines joined by newlines
	Lines         []string // sorted; "N ..." for nodes, "R ..." for relationships
	Nodes         int
	Relationships int
}

// Equal reports whether f and g describe the same graph.
func (f Fingerprint) Equal(g Fingerprint) bool { return f.Hash == g.Hash }

// String summarises f.
func (f Fingerprint) String() string {
	return fmt.Sprintf("%d nodes, %d relationships, sha256 %s", f.Nodes, f.Relationships, f.Hash)
}

// The owned nodes of one owner, label by label so that each match uses the owner index.
const ownedNodes = `
UNWIND $owners AS o
CALL (o) {
    MATCH (n:User {owner: o}) RETURN n
  UNION ALL MATCH (n:Conversation {owner: o}) RETURN n
  UNION ALL MATCH (n:Message {owner: o}) RETURN n
  UNION ALL MATCH (n:Preference {owner: o}) RETURN n
  UNION ALL MATCH (n:Entity {owner: o}) RETURN n
  UNION ALL MATCH (n:Fact {owner: o}) RETURN n
  UNION ALL MATCH (n:ReasoningTrace {owner: o}) RETURN n
  UNION ALL MATCH (n:ReasoningStep {owner: o}) RETURN n
  UNION ALL MATCH (n:ToolCall {owner: o}) RETURN n
}
WITH DISTINCT n`

const cypherNodes = ownedNodes + `
RETURN elementId(n) AS eid, labels(n) AS labels, properties(n) AS props
UNION
MATCH (t:Tool) WHERE t.name IN $tools
RETURN elementId(t) AS eid, labels(t) AS labels, properties(t) AS props
UNION
UNWIND $owners AS o
MATCH (:ToolCall {owner: o})-[:INSTANCE_OF]->(t:Tool)
RETURN DISTINCT elementId(t) AS eid, labels(t) AS labels, properties(t) AS props`

const cypherRelationships = ownedNodes + `
CALL (n) {
    MATCH (n)-[r]->(m) RETURN r, n AS a, m AS b
  UNION ALL
    MATCH (m)-[r]->(n) RETURN r, m AS a, n AS b
}
WITH DISTINCT r, a, b
RETURN type(r) AS type, properties(r) AS props,
       elementId(a) AS a, labels(a) AS alabels, properties(a) AS aprops,
       elementId(b) AS b, labels(b) AS blabels, properties(b) AS bprops`

// Of computes the fingerprint of s in the database (empty: the default one).
func Of(ctx context.Context, d neo4j.DriverWithContext, database string, s Scope) (Fingerprint, error) {
	params := map[string]any{"owners": toAny(s.Owners), "tools": toAny(s.Tools)}
	ignore := map[string]bool{}
	for _, p := range s.IgnoreProperties {
		ignore[p] = true
	}
	res, err := neo4j.ExecuteQuery(ctx, d, cypherNodes, params, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(database), neo4j.ExecuteQueryWithReadersRouting())
	if err != nil {
		return Fingerprint{}, fmt.Errorf("fingerprint nodes: %w", err)
	}
	var lines []string
	seen := map[string]bool{}
	for _, rec := range res.Records {
		eid, _, _ := neo4j.GetRecordValue[string](rec, "eid")
		if seen[eid] {
			continue
		}
		seen[eid] = true
		labels, props, err := labelsAndProps(rec, "labels", "props")
		if err != nil {
			return Fingerprint{}, err
		}
		lines = append(lines, "N "+nodeKey(labels, props)+" "+strings.Join(labels, ":")+" "+formatProps(props, ignore))
	}
	nodes := len(lines)
	res, err = neo4j.ExecuteQuery(ctx, d, cypherRelationships, params, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(database), neo4j.ExecuteQueryWithReadersRouting())
	if err != nil {
		return Fingerprint{}, fmt.Errorf("fingerprint relationships: %w", err)
	}
	for _, rec := range res.Records {
		typ, _, err := neo4j.GetRecordValue[string](rec, "type")
		if err != nil {
			return Fingerprint{}, fmt.Errorf("fingerprint relationships: %w", err)
		}
		rprops, _ := rec.Get("props")
		rp, _ := rprops.(map[string]any)
		al, ap, err := labelsAndProps(rec, "alabels", "aprops")
		if err != nil {
			return Fingerprint{}, err
		}
		bl, bp, err := labelsAndProps(rec, "blabels", "bprops")
		if err != nil {
			return Fingerprint{}, err
		}
		lines = append(lines, "R "+nodeKey(al, ap)+" -["+typ+" "+formatProps(rp, ignore)+"]-> "+nodeKey(bl, bp))
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return Fingerprint{Hash: hex.EncodeToString(h[:]), Lines: lines, Nodes: nodes, Relationships: len(lines) - nodes}, nil
}

// Diff describes how a differs from b: the lines only one of them has, in order, at most max
// of each (all when max <= 0). It is empty when they are equal.
func Diff(a, b Fingerprint, max int) string {
	if a.Equal(b) {
		return ""
	}
	onlyA, onlyB := difference(a.Lines, b.Lines), difference(b.Lines, a.Lines)
	var sb strings.Builder
	fmt.Fprintf(&sb, "a: %s\nb: %s\n", a, b)
	write := func(title string, lines []string) {
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(&sb, "%d lines only in %s:\n", len(lines), title)
		for i, l := range lines {
			if max > 0 && i == max {
				fmt.Fprintf(&sb, "  ... %d more\n", len(lines)-max)
				break
			}
			sb.WriteString("  " + l + "\n")
		}
	}
	write("a", onlyA)
	write("b", onlyB)
	return sb.String()
}

// difference returns the lines of x that y lacks (both sorted), as multisets.
func difference(x, y []string) []string {
	var out []string
	i, j := 0, 0
	for i < len(x) {
		switch {
		case j >= len(y) || x[i] < y[j]:
			out = append(out, x[i])
			i++
		case x[i] > y[j]:
			j++
		default:
			i++
			j++
		}
	}
	return out
}

func labelsAndProps(rec *neo4j.Record, lk, pk string) ([]string, map[string]any, error) {
	rawLabels, _ := rec.Get(lk)
	list, ok := rawLabels.([]any)
	if !ok {
		return nil, nil, fmt.Errorf("fingerprint: %s is %T", lk, rawLabels)
	}
	labels := make([]string, 0, len(list))
	for _, l := range list {
		s, _ := l.(string)
		labels = append(labels, s)
	}
	slices.Sort(labels)
	rawProps, _ := rec.Get(pk)
	props, ok := rawProps.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("fingerprint: %s is %T", pk, rawProps)
	}
	return labels, props, nil
}

// nodeKey names a node by what identifies it in the graph contract: its id, or for a Tool its
// name; never by the database's element id, which differs between two projections.
func nodeKey(labels []string, props map[string]any) string {
	l := strings.Join(labels, ":")
	switch {
	case props["id"] != nil:
		return "(" + l + " " + formatValue(props["id"]) + ")"
	case props["name"] != nil:
		return "(" + l + " name=" + formatValue(props["name"]) + ")"
	case props["identifier"] != nil:
		return "(" + l + " identifier=" + formatValue(props["identifier"]) + ")"
	}
	h := sha256.Sum256([]byte(formatProps(props, nil)))
	return "(" + l + " #" + hex.EncodeToString(h[:6]) + ")"
}

func formatProps(props map[string]any, ignore map[string]bool) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		if !ignore[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(k + ": " + formatValue(props[k]))
	}
	sb.WriteByte('}')
	return sb.String()
}

// formatValue writes a property value so that different values, or equal values of different
// types, never read the same.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		switch {
		case math.IsNaN(x):
			return "NaN"
		case math.IsInf(x, 0):
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return s
	case time.Time:
		return "datetime(" + x.UTC().Format(time.RFC3339Nano) + ")"
	case dbtype.Date:
		return "date(" + x.String() + ")"
	case dbtype.LocalDateTime:
		return "localdatetime(" + x.String() + ")"
	case dbtype.LocalTime:
		return "localtime(" + x.String() + ")"
	case dbtype.Time:
		return "time(" + x.String() + ")"
	case dbtype.Duration:
		return "duration(" + x.String() + ")"
	case []byte:
		return "bytes(" + hex.EncodeToString(x) + ")"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		return formatProps(x, nil)
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// ErrDiffers is returned by Compare when the fingerprints differ.
var ErrDiffers = errors.New("graphs differ")

// Compare returns nil when a and b are equal, else ErrDiffers with the first max differences.
func Compare(a, b Fingerprint, max int) error {
	if a.Equal(b) {
		return nil
	}
	return fmt.Errorf("%w:\n%s", ErrDiffers, Diff(a, b, max))
}
