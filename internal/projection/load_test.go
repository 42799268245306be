package projection

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"

	"github.com/engram-memory/engram/internal/events"
)

// loadOptions shape a generated load.
type loadOptions struct {
	erase bool // now and then erase a user, write for them while erased (dropped), re-create them
}

// genState is what the generator knows of one tenant, so every reference it makes is valid.
type genState struct {
	upserted bool
	erased   bool        // erased and not re-created: what it writes now is dropped
	active   []string    // preferences not superseded
	entities []string    // entity ids the tenant created by name
	traces   []*genTrace // open traces
}

type genTrace struct {
	id    string
	steps []string
}

var entityNames = []events.EntityRef{{Name: "Acme", Type: "Company"}, {Name: "Go", Type: "Language"}, {Name: "Berlin", Type: "City"}, {Name: "Tea"}}

// genLoad generates n valid events of the tenants, interleaved at random (seeded, so the same
// arguments give the same events but for their ids).
func genLoad(tenants []tenant, tools []string, n int, seed uint64, o loadOptions) []*events.Event {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	state := map[string]*genState{}
	base := time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)
	out := make([]*events.Event, 0, n)
	for i := 0; len(out) < n; i++ {
		u := tenants[rnd.IntN(len(tenants))]
		st := state[u.user]
		if st == nil {
			st = &genState{}
			state[u.user] = st
		}
		at := base.Add(time.Duration(i) * 1500 * time.Millisecond)
		data := genEvent(rnd, u, st, tools, o, at)
		if data == nil {
			continue
		}
		out = append(out, &events.Event{ID: events.NewID(), Source: "/engram/test", User: u.user, Time: at, Data: data})
	}
	return out
}

func genEvent(rnd *rand.Rand, u tenant, st *genState, tools []string, o loadOptions, at time.Time) any {
	if st.erased && rnd.IntN(3) == 0 {
		// A new life: what the tenant wrote while erased is dropped, so refer to none of it.
		*st = genState{upserted: true}
		return events.UserRecreated{UserID: events.UserID(u.user), Identifier: u.user}
	}
	if !st.upserted {
		st.upserted = true
		if rnd.IntN(4) > 0 { // sometimes the user is created implicitly by another event
			return events.UserUpserted{UserID: events.UserID(u.user), Identifier: u.user, Attributes: map[string]any{"n": rnd.IntN(100)}}
		}
	}
	x := rnd.IntN(1000)
	switch {
	case x < 350:
		session := fmt.Sprintf("s%d", rnd.IntN(3))
		d := events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(u.user, session), SessionID: session,
			Role: events.Roles[rnd.IntN(2)], Content: fmt.Sprintf("message %d", rnd.IntN(1e6))}
		if rnd.IntN(4) == 0 {
			ts := at.Add(-time.Duration(rnd.IntN(3600)) * time.Second)
			d.Timestamp = &ts
		}
		if rnd.IntN(5) == 0 {
			d.Title = "title " + session
			d.Metadata = map[string]any{"lang": "en", "n": rnd.IntN(10)}
		}
		return d
	case x < 500:
		d := events.PreferenceAdded{PreferenceID: events.NewID(), Category: []string{"tone", "food", "tools"}[rnd.IntN(3)],
			Preference: fmt.Sprintf("pref %d", rnd.IntN(1e6))}
		if rnd.IntN(3) == 0 {
			d.Confidence = ptr(float64(rnd.IntN(100)) / 100)
		}
		if len(st.entities) > 0 && rnd.IntN(4) == 0 {
			d.AppliesTo = append(d.AppliesTo, events.EntityRef{ID: st.entities[rnd.IntN(len(st.entities))]})
		}
		if rnd.IntN(2) == 0 {
			ref := entityNames[rnd.IntN(len(entityNames))]
			d.AppliesTo = append(d.AppliesTo, ref)
			st.entities = append(st.entities, events.EntityID(u.user, ref.Name, ref.Type))
		}
		st.active = append(st.active, d.PreferenceID)
		return d
	case x < 580:
		if len(st.active) < 2 {
			return nil
		}
		i := rnd.IntN(len(st.active) - 1)
		old, newer := st.active[i], st.active[len(st.active)-1]
		st.active = append(st.active[:i], st.active[i+1:]...)
		d := events.PreferenceSuperseded{OldID: old, NewID: newer}
		if rnd.IntN(2) == 0 {
			until := at.Add(time.Hour)
			d.ValidUntil = &until
		}
		return d
	case x < 660:
		tr := &genTrace{id: events.NewID()}
		st.traces = append(st.traces, tr)
		return events.TraceStarted{TraceID: tr.id, SessionID: "s0", Task: "task", Metadata: map[string]any{"k": "v"}}
	case x < 780:
		if len(st.traces) == 0 {
			return nil
		}
		tr := st.traces[rnd.IntN(len(st.traces))]
		d := events.TraceStepAdded{TraceID: tr.id, StepID: events.NewID(), Thought: "thought"}
		if rnd.IntN(3) == 0 {
			d.StepNumber = 100 + len(tr.steps)
		}
		tr.steps = append(tr.steps, d.StepID)
		return d
	case x < 900:
		var withSteps []*genTrace
		for _, tr := range st.traces {
			if len(tr.steps) > 0 {
				withSteps = append(withSteps, tr)
			}
		}
		if len(withSteps) == 0 {
			return nil
		}
		tr := withSteps[rnd.IntN(len(withSteps))]
		status := []string{"success", "success", "error", "timeout", "failure"}[rnd.IntN(5)]
		return events.ToolCallRecorded{TraceID: tr.id, StepID: tr.steps[rnd.IntN(len(tr.steps))], ToolCallID: events.NewID(),
			ToolName: tools[rnd.IntN(len(tools))], Status: status, DurationMS: ptr(int64(rnd.IntN(500))),
			Arguments: map[string]any{"q": rnd.IntN(10)}, Result: "ok"}
	case x < 950:
		if len(st.traces) == 0 {
			return nil
		}
		i := rnd.IntN(len(st.traces))
		tr := st.traces[i]
		if rnd.IntN(2) == 0 { // sometimes completed traces stay usable
			st.traces = append(st.traces[:i], st.traces[i+1:]...)
		}
		return events.TraceCompleted{TraceID: tr.id, Outcome: "outcome", Success: ptr(rnd.IntN(2) == 0)}
	case x < 995:
		return events.UserUpserted{UserID: events.UserID(u.user), Identifier: u.user, Attributes: map[string]any{"n": rnd.IntN(100)}}
	default:
		if !o.erase {
			return nil
		}
		*st = genState{upserted: true, erased: true}
		return events.UserErased{Identifier: u.user, Reason: "test"}
	}
}

// mixedLoad is genLoad as Records of r.
func mixedLoad(r *recorder, tenants []tenant, tools []string, n int, seed uint64) []Record {
	evs := genLoad(tenants, tools, n, seed, loadOptions{erase: true})
	out := make([]Record, len(evs))
	for i, ev := range evs {
		out[i] = r.rec(ev.User, ev.Data)
	}
	return out
}

func nodeProps(t testing.TB, rec *neo4j.Record, key string) map[string]any {
	t.Helper()
	v, _ := rec.Get(key)
	n, ok := v.(dbtype.Node)
	if !ok {
		t.Fatalf("%s is %T, not a node", key, v)
	}
	return n.Props
}

func wantProps(t testing.TB, what string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: no property %s (want %v)", what, k, w)
			continue
		}
		if wt, isTime := w.(time.Time); isTime {
			if gt, ok := g.(time.Time); !ok || !gt.Equal(wt) {
				t.Errorf("%s.%s = %v, want %v", what, k, g, w)
			}
			continue
		}
		if g != w {
			t.Errorf("%s.%s = %#v, want %#v", what, k, g, w)
		}
	}
}
