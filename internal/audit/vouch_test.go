package audit_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/audit"
	"github.com/engram-memory/engram/internal/ctl"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestAuditTellsVouchedFromClaimed covers issue 12 finding 10 (c): an agent over NATS could
// publish ce-actor "ops" and ce-source "/engram/ingestor", and the audit showed them as fact.
// Under the production NATS permissions, the ingestor (its own NATS user, with the signing
// key) writes one preference of sara's and sara's agent forges one — the ingestor's source and
// an operator's actor, even the vouch header of the ingestor's event copied. The audit read
// with the ingestors' keys (audit.ReadVerified, memctl audit --signing-key-file) marks the
// first "ingestor" and the forgery "claimed"; read without them, "unchecked".
func TestAuditTellsVouchedFromClaimed(t *testing.T) {
	sara := testenv.User(t, "sara")
	sn := testenv.StartProductionNATS(t, sara)
	sn.OpenDoor(t) // agents' events reach the stream through an ingestor's door
	keyFile := filepath.Join(t.TempDir(), "ingest.keys")
	if err := os.WriteFile(keyFile, []byte("# test key\n"+strings.Repeat("k", 48)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := stream.LoadKeys(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, ijs := sn.Connect(t, "ingestor")
	cfg, err := ingest.LoadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	h, err := ingest.NewHandler(stream.NewPublisher(ijs, 5*time.Second, stream.WithKeys(keys)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"user_identifier":"` + sara + `","category":"food","preference":"vegetarian"}`
	req := httptest.NewRequestWithContext(ingest.WithActor(t.Context(), "agent-7"), http.MethodPost, "/v1/preferences", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("ingestor write: %d %s", rec.Code, rec.Body)
	}

	_, admin := sn.Connect(t, "admin")
	mem, err := admin.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	vouched, err := mem.GetLastMsgForSubject(t.Context(), "mem.*.preference_added.*")
	if err != nil {
		t.Fatal(err)
	}
	_, ajs := sn.ConnectAgent(t, sara)
	forged, err := events.Encode(&events.Event{ID: events.NewID(), Source: "/engram/ingestor", User: sara, Time: time.Now(), Actor: "ops",
		Data: events.PreferenceAdded{PreferenceID: events.NewID(), Category: "food", Preference: "anything"}})
	if err != nil {
		t.Fatal(err)
	}
	forged.Header.Set(stream.VouchHeader, vouched.Header.Get(stream.VouchHeader))
	if _, err := ajs.PublishMsg(t.Context(), forged); err != nil {
		t.Fatalf("agent's publish: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	got, err := audit.ReadVerified(ctx, admin, keys, sara, audit.PreferenceKinds...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("audit has %d entries, want 2: %+v", len(got), got)
	}
	if e := got[0]; e.Vouch != audit.VouchIngestor || e.Actor != "agent-7" || e.Source != ingest.DefaultSource {
		t.Errorf("ingestor's event: %+v, want vouched by the ingestor, actor agent-7", e)
	}
	if e := got[1]; e.Vouch != audit.VouchClaimed || e.Actor != "ops" {
		t.Errorf("agent's forgery: %+v, want claimed (actor ops)", e)
	}
	unchecked, err := audit.Read(ctx, admin, sara, audit.PreferenceKinds...)
	if err != nil || len(unchecked) != 2 || unchecked[0].Vouch != audit.VouchUnchecked {
		t.Errorf("read without keys: %+v, %v, want unchecked", unchecked, err)
	}

	// memctl audit prints the column.
	var out, errOut bytes.Buffer
	env := map[string]string{"NATS_URL": sn.URL("admin"), "INGEST_SIGNING_KEY_FILE": keyFile}
	if code := ctl.Main(ctx, []string{"audit", "--user", sara}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("memctl audit: exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	column := func(line string, i int) string {
		if f := strings.Fields(line); len(f) > i {
			return f[i]
		}
		return ""
	}
	if len(lines) != 3 || column(lines[0], 6) != "VOUCH" || column(lines[1], 6) != "ingestor" || column(lines[2], 5) != "ops" || column(lines[2], 6) != "claimed" {
		t.Errorf("memctl audit output, want VOUCH ingestor then claimed:\n%s", out.String())
	}
	if v := sn.Violations(); len(v) != 0 {
		t.Errorf("permission violations: %v", v)
	}
}
