package ingest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/schemas"
)

// routes are the handler's routes and the op each serves ("" for none).
var routes = []struct{ method, path, op, schema string }{
	{"GET", "/v1/openapi.yaml", "", ""},
	{"POST", "/v1/users", ingest.OpUpsertUser, "UpsertUser"},
	{"PUT", "/v1/users/{identifier}", ingest.OpUpsertUser, "UpsertUserBody"},
	{"DELETE", "/v1/users/{identifier}", ingest.OpEraseUser, "EraseUserBody"},
	{"POST", "/v1/users/{identifier}/recreate", ingest.OpRecreateUser, "RecreateUserBody"},
	{"POST", "/v1/messages", ingest.OpAddMessage, "AddMessage"},
	{"POST", "/v1/preferences", ingest.OpAddPreference, "AddPreference"},
	{"POST", "/v1/preferences/{old_id}/supersede", ingest.OpSupersedePreference, "SupersedePreferenceBody"},
	{"POST", "/v1/traces", ingest.OpStartTrace, "StartTrace"},
	{"POST", "/v1/traces/{trace_id}/steps", ingest.OpAddTraceStep, "AddTraceStepBody"},
	{"POST", "/v1/traces/{trace_id}/tool-calls", ingest.OpRecordToolCall, "RecordToolCallBody"},
	{"POST", "/v1/traces/{trace_id}/complete", ingest.OpCompleteTrace, "CompleteTraceBody"},
	{"POST", "/v1/entities", ingest.OpAddEntity, "AddEntity"},
	{"POST", "/v1/entities/merge", ingest.OpMergeEntities, "MergeEntities"},
	{"POST", "/v1/relationships", ingest.OpAddRelationship, "AddRelationship"},
	{"POST", "/v1/facts", ingest.OpAddFact, "AddFact"},
	{"DELETE", "/v1/messages/{message_id}", ingest.OpDeleteMessage, "DeleteMessageBody"},
	{"DELETE", "/v1/users/{identifier}/messages/{message_id}", ingest.OpDeleteMessage, "DeleteMessageBody"},
	{"DELETE", "/v1/users/{identifier}/conversations/{session_id}/messages/{message_id}", ingest.OpDeleteMessage, "DeleteMessageBody"},
	{"DELETE", "/v1/conversations/{session_id}", ingest.OpClearSession, "ClearSessionBody"},
	{"DELETE", "/v1/users/{identifier}/conversations/{session_id}", ingest.OpClearSession, "ClearSessionBody"},
	{"DELETE", "/v1/entities/{entity_id}", ingest.OpDeleteEntity, "DeleteEntityBody"},
	{"DELETE", "/v1/users/{identifier}/entities/{entity_id}", ingest.OpDeleteEntity, "DeleteEntityBody"},
	{"POST", "/v1/batch", "", "Batch"},
}

// opSchemas names each command's schema (the batch entry's).
var opSchemas = map[string]string{
	ingest.OpUpsertUser: "UpsertUser", ingest.OpEraseUser: "EraseUser", ingest.OpRecreateUser: "RecreateUser", ingest.OpAddMessage: "AddMessage",
	ingest.OpAddPreference: "AddPreference", ingest.OpSupersedePreference: "SupersedePreference",
	ingest.OpStartTrace: "StartTrace", ingest.OpAddTraceStep: "AddTraceStep",
	ingest.OpRecordToolCall: "RecordToolCall", ingest.OpCompleteTrace: "CompleteTrace",
	ingest.OpAddEntity: "AddEntity", ingest.OpAddRelationship: "AddRelationship", ingest.OpMergeEntities: "MergeEntities",
	ingest.OpAddFact: "AddFact", ingest.OpDeleteMessage: "DeleteMessage", ingest.OpClearSession: "ClearSession",
	ingest.OpDeleteEntity: "DeleteEntity",
}

func openAPI(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(schemas.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi version %v, want 3.1.0", doc["openapi"])
	}
	return doc
}

func get(m any, keys ...string) any {
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

// TestOpenAPIRoutes: the document describes exactly the routes the handler serves, and the
// handler serves the document.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	doc := openAPI(t)
	var documented, served []string
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	for _, r := range routes {
		served = append(served, r.method+" "+r.path)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Errorf("documented routes %v\nserved routes %v", documented, served)
	}
	h := newHarness(t, true)
	r := h.do("GET", "/v1/openapi.yaml", "")
	if r.code != http.StatusOK || !bytes.Equal(r.body, schemas.OpenAPI) || r.header.Get("Content-Type") != "application/yaml" {
		t.Errorf("GET /v1/openapi.yaml: %d %s", r.code, r.header.Get("Content-Type"))
	}
	for _, rt := range routes[1:] {
		path := strings.NewReplacer("{identifier}", "sara", "{old_id}", "x", "{trace_id}", "x", "{message_id}", "x", "{session_id}", "s", "{entity_id}", "x").Replace(rt.path)
		if r := h.do(rt.method, path, "{"); r.code == http.StatusNotFound || r.code == http.StatusMethodNotAllowed {
			t.Errorf("%s %s is documented but not served: %d", rt.method, path, r.code)
		}
	}
}

// TestOpenAPISchemas: each command's schema lists exactly the command's JSON fields, and the
// document's examples and the fuzz seeds are valid by the schemas and accepted by the code.
func TestOpenAPISchemas(t *testing.T) {
	t.Parallel()
	doc := openAPI(t)
	for op, name := range opSchemas {
		cmd, err := ingest.DecodeCommand(op, []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		want := jsonFields(reflect.TypeOf(cmd).Elem())
		props, ok := get(doc, "components", "schemas", name+"Fields", "properties").(map[string]any)
		if !ok {
			t.Errorf("schema %sFields missing", name)
			continue
		}
		var got []string
		for p := range props {
			got = append(got, p)
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("schema %sFields properties %v, command fields %v", name, got, want)
		}
		for _, schema := range []string{name, name + "Body"} {
			s, ok := get(doc, "components", "schemas", schema).(map[string]any)
			if !ok {
				if schema == name {
					t.Errorf("schema %s missing", schema)
				}
				continue
			}
			if s["unevaluatedProperties"] != false {
				t.Errorf("schema %s allows unknown properties; the API refuses them", schema)
			}
		}
	}

	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("https://engram.dev/openapi.json", parsed); err != nil {
		t.Fatal(err)
	}
	compile := func(name string) *jsonschema.Schema {
		s, err := c.Compile("https://engram.dev/openapi.json#/components/schemas/" + name)
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		return s
	}
	valid := func(name string, body any) {
		t.Helper()
		b, _ := json.Marshal(body)
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err := compile(name).Validate(v); err != nil {
			t.Errorf("%s refuses %s: %v", name, b, err)
		}
	}
	for _, rt := range routes {
		ex := get(doc, "paths", rt.path, strings.ToLower(rt.method), "requestBody", "content", "application/json", "example")
		if rt.schema == "" {
			continue
		}
		if ex == nil {
			t.Errorf("%s %s has no request example", rt.method, rt.path)
			continue
		}
		valid(rt.schema, ex)
		b, _ := json.Marshal(ex)
		if rt.op == "" {
			if _, err := ingest.DecodeBatch(b, 1000); err != nil {
				t.Errorf("batch example refused by the code: %v", err)
			}
			continue
		}
		if _, err := ingest.DecodeCommand(rt.op, b); err != nil {
			t.Errorf("%s %s example refused by the code: %v", rt.method, rt.path, err)
		}
	}
	for op, bodies := range seedBodies {
		for _, b := range bodies {
			cmd, err := ingest.DecodeCommand(op, []byte(b))
			if err != nil {
				continue
			}
			if _, _, err := ingest.Build(cmd, ingest.Settings{}); err != nil {
				continue
			}
			var v any
			_ = json.Unmarshal([]byte(b), &v)
			valid(opSchemas[op], v)
		}
	}
}

func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
