// Package k8s_test checks the Kubernetes manifests and the NATS chart's values of deploy/k8s
// against deploy/production: every file parses, every service is probed, bounded and given
// the settings and secrets it reads, and the NATS values are the production node's.
package k8s_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/mcp"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/query"
	"github.com/engram-memory/engram/internal/testenv"
)

// doc is one YAML document, as a tree of maps and lists.
type doc = map[string]any

// parseAll parses every YAML file of this directory, each into its documents.
func parseAll(t *testing.T) map[string][]doc {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string][]doc{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var d doc
			if err := dec.Decode(&d); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(d) == 0 {
				t.Errorf("%s: an empty document", f)
				continue
			}
			out[f] = append(out[f], d)
		}
	}
	return out
}

// at walks d along keys (map keys, or list indexes as numbers).
func at(d any, keys ...string) any {
	for _, k := range keys {
		switch v := d.(type) {
		case map[string]any:
			d = v[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(v) {
				return nil
			}
			d = v[i]
		default:
			return nil
		}
	}
	return d
}

func str(d any, keys ...string) string {
	s, _ := at(d, keys...).(string)
	return s
}

func list(d any, keys ...string) []any {
	l, _ := at(d, keys...).([]any)
	return l
}

// shipped names every file of this directory, so that a manifest added without a test, or
// one a test expects and that is gone, fails here.
var shipped = []string{"ingestor.yaml", "mcp.yaml", "nats-values.yaml", "projector.yaml", "query.yaml"}

// TestManifestsParse: the directory holds exactly the shipped files, and every document of
// every manifest names its API version, kind and name.
func TestManifestsParse(t *testing.T) {
	t.Parallel()
	all := parseAll(t)
	var got []string
	for f := range all {
		got = append(got, f)
	}
	slices.Sort(got)
	if !slices.Equal(got, shipped) {
		t.Errorf("manifests %v, want %v (add a new one to shipped and to the test of its kind)", got, shipped)
	}
	for f, docs := range all {
		if strings.HasSuffix(f, "-values.yaml") {
			continue // a chart's values, not a manifest
		}
		for i, d := range docs {
			if str(d, "apiVersion") == "" || str(d, "kind") == "" || str(d, "metadata", "name") == "" {
				t.Errorf("%s document %d: apiVersion %q, kind %q, name %q", f, i, str(d, "apiVersion"), str(d, "kind"), str(d, "metadata", "name"))
			}
		}
	}
}

// TestServiceDeployments: each service's Deployment runs at least two replicas with the
// settings of deploy/production (engram.env and its own file as ConfigMaps), its own NATS
// user from a secret, and every secret file its settings name mounted where they name it
// (the service loads its configuration with them), plus what checkWorkload checks; the
// ingestor and the query service have a Service.
func TestServiceDeployments(t *testing.T) {
	t.Parallel()
	kinds := byKind(t)
	for _, c := range []struct {
		svc     string
		service bool
		load    func([]string, func(string) string) error
	}{
		{"ingestor", true, func(a []string, g func(string) string) error { _, err := ingest.LoadConfig(a, g); return err }},
		{"projector", false, func(a []string, g func(string) string) error { _, err := projection.LoadConfig(a, g); return err }},
		{"query", true, func(a []string, g func(string) string) error { _, err := query.LoadConfig(a, g); return err }},
	} {
		name := "engram-" + c.svc
		dep := kinds["Deployment/"+name]
		if dep == nil {
			t.Errorf("no Deployment %s", name)
			continue
		}
		if r, _ := at(dep, "spec", "replicas").(int); r < 2 {
			t.Errorf("%s: %d replicas, want at least 2 (a loss is survived)", name, r)
		}
		pod := at(dep, "spec", "template", "spec")
		ctr := at(pod, "containers", "0")
		env := testenv.ReadEnvFiles(t, "../production/engram.env", "../production/"+c.svc+".env")

		// Settings: both env files as ConfigMaps (README.md creates them from the files).
		var maps []string
		for _, ef := range list(ctr, "envFrom") {
			maps = append(maps, str(ef, "configMapRef", "name"))
		}
		if !slices.Equal(maps, []string{"engram", name}) {
			t.Errorf("%s: envFrom ConfigMaps %v, want [engram %s]", name, maps, name)
		}
		// Secrets: its NATS user, and the Neo4j password for a service that reads the graph.
		secrets := map[string]string{}
		for _, e := range list(ctr, "env") {
			if s := str(e, "valueFrom", "secretKeyRef", "name"); s != "" {
				secrets[str(e, "name")] = s
			}
		}
		if secrets["NATS_URL"] != "engram-nats-"+c.svc {
			t.Errorf("%s: NATS_URL from secret %q, want engram-nats-%s (its own NATS user)", name, secrets["NATS_URL"], c.svc)
		}
		if c.svc != "ingestor" && secrets["NEO4J_PASSWORD"] == "" {
			t.Errorf("%s: NEO4J_PASSWORD not from a secret", name)
		}
		if c.svc == "ingestor" && secrets["NEO4J_PASSWORD"] != "" {
			t.Errorf("%s: the ingestor gets Neo4j's password; writes need the log only", name)
		}

		checkWorkload(t, kinds, name, env, c.service)

		// Secret files: what the pod mounts under /run/secrets, materialised in a temporary
		// directory; the service then loads its settings with the paths pointing there, so a
		// file it reads and the pod lacks fails the load.
		dir := t.TempDir()
		mounted := map[string]bool{}
		for _, m := range list(ctr, "volumeMounts") {
			if str(m, "mountPath") != "/run/secrets" {
				continue
			}
			for _, v := range list(pod, "volumes") {
				if str(v, "name") != str(m, "name") {
					continue
				}
				for _, src := range list(v, "projected", "sources") {
					for _, it := range list(src, "secret", "items") {
						mounted[str(it, "path")] = true
						if err := os.WriteFile(filepath.Join(dir, str(it, "path")), []byte(strings.Repeat("k", 48)+"\n"), 0o600); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
		for k, v := range env {
			if rest, ok := strings.CutPrefix(v, "/run/secrets/"); ok {
				env[k] = filepath.Join(dir, rest)
				if c.svc == "ingestor" && k == "INGEST_SIGNING_KEY_FILE" && !mounted[rest] {
					t.Errorf("%s: %s=%s is not mounted", name, k, v)
				}
			}
		}
		env["NATS_URL"] = "nats://engram-" + c.svc + ":pw@nats-0.nats-headless:4222,nats://engram-" + c.svc + ":pw@nats-1.nats-headless:4222"
		if c.svc != "ingestor" {
			env["NEO4J_PASSWORD"] = "from-the-secret"
		}
		if err := c.load(nil, func(k string) string { return env[k] }); err != nil {
			t.Errorf("%s with its ConfigMaps and mounted secrets: %v", name, err)
		}
	}
}

// checkWorkload checks what every Deployment of Engram has: its container port where
// HTTP_ADDR (in env) says, liveness on /healthz and readiness on /readyz there, resource
// requests and a memory limit, a grace period beyond SHUTDOWN_TIMEOUT, a selector matching
// its pods, a PodDisruptionBudget and, when service is set, a Service selecting its pods.
func checkWorkload(t *testing.T, byKind map[string]doc, name string, env map[string]string, service bool) {
	t.Helper()
	dep := byKind["Deployment/"+name]
	pod := at(dep, "spec", "template", "spec")
	ctr := at(pod, "containers", "0")
	_, port, err := net.SplitHostPort(env["HTTP_ADDR"])
	if err != nil {
		t.Fatalf("%s: HTTP_ADDR: %v", name, err)
	}
	ports := map[string]string{}
	for _, p := range list(ctr, "ports") {
		n, _ := at(p, "containerPort").(int)
		ports[str(p, "name")] = strconv.Itoa(n)
	}
	if ports["http"] != port {
		t.Errorf("%s: container port http %q, HTTP_ADDR's is %s", name, ports["http"], port)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got, p := str(ctr, probe, "httpGet", "path"), str(ctr, probe, "httpGet", "port"); got != path || ports[p] != port {
			t.Errorf("%s: %s on %s port %q, want %s on the http port", name, probe, got, p, path)
		}
	}
	if sp := at(ctr, "startupProbe"); sp != nil && str(sp, "httpGet", "path") != "/healthz" {
		t.Errorf("%s: startupProbe on %s, want /healthz", name, str(sp, "httpGet", "path"))
	}
	for _, k := range [][]string{{"requests", "cpu"}, {"requests", "memory"}, {"limits", "memory"}} {
		if str(ctr, append([]string{"resources"}, k...)...) == "" {
			t.Errorf("%s: no resources.%s", name, strings.Join(k, "."))
		}
	}
	grace, _ := at(pod, "terminationGracePeriodSeconds").(int)
	shutdown, err := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
	if err != nil || time.Duration(grace)*time.Second <= shutdown {
		t.Errorf("%s: grace period %ds, SHUTDOWN_TIMEOUT %q (%v): the pod is killed before it stops", name, grace, env["SHUTDOWN_TIMEOUT"], err)
	}
	sel := str(dep, "spec", "selector", "matchLabels", "app.kubernetes.io/name")
	if str(dep, "spec", "template", "metadata", "labels", "app.kubernetes.io/name") != sel || sel != name {
		t.Errorf("%s: selector %q does not match its pods' labels", name, sel)
	}
	if svc := byKind["Service/"+name]; service && (svc == nil || str(svc, "spec", "selector", "app.kubernetes.io/name") != name) {
		t.Errorf("%s: no Service selecting its pods", name)
	}
	if pdb := byKind["PodDisruptionBudget/"+name]; pdb == nil || str(pdb, "spec", "selector", "matchLabels", "app.kubernetes.io/name") != name {
		t.Errorf("%s: no PodDisruptionBudget of its pods", name)
	}
}

// byKind indexes the manifests' documents by kind/name.
func byKind(t *testing.T) map[string]doc {
	t.Helper()
	out := map[string]doc{}
	for _, docs := range parseAll(t) {
		for _, d := range docs {
			out[str(d, "kind")+"/"+str(d, "metadata", "name")] = d
		}
	}
	return out
}

// TestMCPDeployment: the MCP server's Deployment serves Streamable HTTP with a token required,
// reaches the ingestor and the query service through their Services, and loads its
// configuration from the environment the Deployment gives it.
func TestMCPDeployment(t *testing.T) {
	t.Parallel()
	kinds := byKind(t)
	dep := kinds["Deployment/engram-mcp"]
	if dep == nil {
		t.Fatal("no Deployment engram-mcp")
	}
	env := map[string]string{}
	for _, e := range list(dep, "spec", "template", "spec", "containers", "0", "env") {
		env[str(e, "name")] = str(e, "value")
	}
	checkWorkload(t, kinds, "engram-mcp", env, true)
	if env["MCP_TRANSPORT"] != "http" || env["MCP_HTTP_REQUIRE_TOKEN"] != "true" {
		t.Errorf("MCP_TRANSPORT %q, MCP_HTTP_REQUIRE_TOKEN %q: want http with a token required", env["MCP_TRANSPORT"], env["MCP_HTTP_REQUIRE_TOKEN"])
	}
	for _, k := range []string{"INGESTOR_URL", "QUERY_URL"} {
		u, err := url.Parse(env[k])
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		svc := kinds["Service/"+u.Hostname()]
		if svc == nil || u.Port() != "" && u.Port() != strconv.Itoa(at(svc, "spec", "ports", "0", "port").(int)) ||
			u.Port() == "" && at(svc, "spec", "ports", "0", "port") != 80 {
			t.Errorf("%s=%s names no Service port of the manifests", k, env[k])
		}
	}
	if _, err := mcp.LoadConfig(nil, func(k string) string { return env[k] }); err != nil {
		t.Errorf("the MCP server with its Deployment's environment: %v", err)
	}
}

// TestNATSValues: the NATS chart's values configure what deploy/production/nats-server.conf
// does: a cluster of its name with three nodes, JetStream, its durability and payload limit,
// deploy/nats/accounts.conf included, and every service user's password hash from a secret.
func TestNATSValues(t *testing.T) {
	// Not parallel: CopyProductionConfig sets the users' hashes in the environment.
	o := testenv.CopyProductionConfig(t).Options(t)
	v := parseAll(t)["nats-values.yaml"]
	if len(v) != 1 {
		t.Fatalf("nats-values.yaml: %d documents", len(v))
	}
	vals := v[0]
	if at(vals, "config", "cluster", "enabled") != true || at(vals, "config", "cluster", "replicas") != 3 {
		t.Errorf("cluster enabled %v with %v replicas, want three nodes", at(vals, "config", "cluster", "enabled"), at(vals, "config", "cluster", "replicas"))
	}
	if got := str(vals, "config", "cluster", "merge", "name"); got != o.Cluster.Name {
		t.Errorf("cluster name %q, nats-server.conf's is %q", got, o.Cluster.Name)
	}
	if at(vals, "config", "jetstream", "enabled") != true {
		t.Error("JetStream not enabled")
	}
	if got := str(vals, "config", "jetstream", "merge", "sync_interval"); got != "always" || !o.SyncAlways {
		t.Errorf("sync_interval %q here, sync always %v in nats-server.conf: want always in both", got, o.SyncAlways)
	}
	if got := str(vals, "config", "merge", "max_payload"); got != "<< 1MB >>" || o.MaxPayload != 1<<20 {
		t.Errorf("max_payload %q here, %d in nats-server.conf", got, o.MaxPayload)
	}
	if got := str(vals, "config", "merge", "00$include"); got != "accounts.conf" {
		t.Errorf("includes %q, want accounts.conf (deploy/nats/accounts.conf by --set-file)", got)
	}
	for svc, envVar := range testenv.ServiceUsers {
		if s := str(vals, "container", "env", envVar, "valueFrom", "secretKeyRef", "name"); s != "engram-nats-server" ||
			str(vals, "container", "env", envVar, "valueFrom", "secretKeyRef", "key") != svc {
			t.Errorf("%s: from secret %q, want engram-nats-server key %s", envVar, s, svc)
		}
	}
}
