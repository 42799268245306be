// Package migratetest gives the tests of `memctl import` their source: a Neo4j of the test's
// own holding a graph written by the real Python library neo4j-agent-memory, through its own
// API (internal/migrate/testdata/write_library_graph.py), and the library's own reads of a graph.
package migratetest

import (
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// The library releases the tests write and read graphs with: the newest the import supports,
// and the oldest (docs/migration.md says what differs between them).
const (
	Library       = "neo4j-agent-memory==0.8.0"
	OldestLibrary = "neo4j-agent-memory==0.4.0"
)

// Manifest is what write_library_graph.py wrote: the identifiers, session ids and ids the tests
// ask about, and the entries the import is expected to report.
type Manifest struct {
	Users           []string            `json:"users"`
	Sessions        map[string][]string `json:"sessions"`
	Traces          map[string][]string `json:"traces"`
	Preferences     map[string]string   `json:"preferences"`
	OrphanSession   string              `json:"orphan_session"`
	SecondSupersede []string            `json:"second_supersede"`
	Tools           []string            `json:"tools"`
}

// Planned is what the import makes of the graph write_library_graph.py writes: the events per
// kind, over both users. Every library release the import supports writes the same graph for it.
var Planned = map[events.Kind]int{
	events.KindUserUpserted: 2, events.KindMessageAdded: 5, events.KindPreferenceAdded: 7,
	events.KindPreferenceSuperseded: 3, events.KindTraceStarted: 2, events.KindTraceStepAdded: 3,
	events.KindToolCallRecorded: 3, events.KindTraceCompleted: 1,
}

// PlannedTotal is the sum of Planned.
func PlannedTotal() int {
	n := 0
	for _, k := range Planned {
		n += k
	}
	return n
}

// Graph is a library graph in a Neo4j of the test's own.
type Graph struct {
	*testenv.Neo4jProcess
	Python   string // the python of a virtualenv holding the library release
	Suffix   string // makes the graph's identifiers and session ids the test's own
	Manifest Manifest
	Raw      []byte // the manifest as the script printed it (read_library_graph.py's input)
}

// WriteLibraryGraph installs requirement (a pip requirement of neo4j-agent-memory, e.g.
// Library) in a virtualenv, starts a Neo4j for t and writes the test graph into it with the
// library's own API. The Neo4j is stopped when t ends.
func WriteLibraryGraph(t testing.TB, requirement string) *Graph {
	t.Helper()
	py := testenv.PythonVenv(t, requirement)
	proc := testenv.StartNeo4jProcess(t)
	suffix := strings.ReplaceAll(events.NewID()[24:], "-", "")
	raw := testenv.RunPython(t, py, script(t, "write_library_graph.py"), proc.URI, proc.User, proc.Password, suffix)
	g := &Graph{Neo4jProcess: proc, Python: py, Suffix: suffix, Raw: raw}
	if err := json.Unmarshal(raw, &g.Manifest); err != nil {
		t.Fatalf("write_library_graph.py printed %q: %v", raw, err)
	}
	return g
}

// Reads answers the library's own reads (read_library_graph.py: preferences with every as_of
// boundary, conversations, sessions, traces, users) on the graph at uri, for the users and
// sessions of g's manifest: call -> answer.
func (g *Graph) Reads(t testing.TB, uri, user, password string) map[string]any {
	t.Helper()
	out := testenv.RunPython(t, g.Python, script(t, "read_library_graph.py"), uri, user, password, string(g.Raw))
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("read_library_graph.py printed %q: %v", out, err)
	}
	return m
}

// script is the path of one of internal/migrate/testdata's scripts, from this file's location:
// tests of other packages run in their own directory.
func script(t testing.TB, name string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate internal/migrate/testdata")
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata", name)
}
