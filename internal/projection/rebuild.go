package projection

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// Rebuild applies the events of one partition during a whole-stream replay into a graph that
// held nothing when the replay started and that nothing else writes meanwhile (replay.Run
// makes sure of both). It is Apply with two things left out that only matter when others
// write too:
//
//   - the look-up of the segment's ids in the graph (cypherLookup): the Rebuild remembers what
//     the partition's transactions committed, which in such a graph is all the look-up would
//     find of the partition's tenants (tenants of other partitions never share a node);
//   - the Tool aggregates: tool calls are linked to their Tool, and RecountTools, run once at
//     the end, sets every aggregate from the calls, as the counting of Apply would have.
//
// The events, checks, statements and resulting graph are Apply's (tests compare the
// fingerprints). An id that another partition's tenant also uses is not seen here: the
// second transaction to create it fails on the unique constraint, and the replay skips that
// event, as the live projector dead-letters one of the two.
//
// A Rebuild is used by one goroutine, for one partition, one transaction at a time: Apply in
// the transaction, then Commit once it committed (a transaction that failed or is retried
// just calls Apply again).
type Rebuild struct {
	mem      *memSource // nil: look up the graph
	maxNodes int
}

// NewRebuild returns a Rebuild that remembers up to maxNodes nodes (about 150 bytes each)
// and then looks ids up in the graph instead; maxNodes 0 looks them up from the start (a
// resumed replay, whose earlier transactions this process did not see).
func NewRebuild(maxNodes int) *Rebuild {
	b := &Rebuild{maxNodes: maxNodes}
	if maxNodes > 0 {
		b.mem = newMemSource()
	}
	return b
}

// Apply is Apply for a rebuild; call Commit after the transaction committed.
func (b *Rebuild) Apply(ctx context.Context, tx neo4j.ManagedTransaction, batch []Record) (Outcome, error) {
	var src stateSource = graphSource{}
	if b.mem != nil {
		b.mem.reset()
		src = b.mem
	}
	return applyBatch(ctx, tx, batch, src, false)
}

// Commit records that the transaction of the last Apply committed.
func (b *Rebuild) Commit() {
	if b.mem == nil {
		return
	}
	b.mem.commit()
	if b.mem.size() > b.maxNodes {
		b.mem = nil // the graph holds it all: look it up from now on
	}
}

// Forget makes the Rebuild look ids up in the graph from now on: the graph holds something
// of the partition that it did not see committed (a commit whose outcome was unknown, and
// the retry found it done).
func (b *Rebuild) Forget() { b.mem = nil }

// WarmRebuild is Warm for a rebuild: it has Neo4j plan the statements a Rebuild runs (the
// look-up too, for a partition that looks its ids up).
func WarmRebuild(ctx context.Context, d neo4j.DriverWithContext, database string) error {
	return warm(ctx, d, database, NewRebuild(0).Apply)
}

// RecountTools sets every Tool's aggregates from its calls (after a rebuild).
func RecountTools(ctx context.Context, tx neo4j.ManagedTransaction) error {
	res, err := tx.Run(ctx, cypherRecountTools, nil)
	if err != nil {
		return fmt.Errorf("recount tools: %w", err)
	}
	if _, err := res.Consume(ctx); err != nil {
		return fmt.Errorf("recount tools: %w", err)
	}
	return nil
}

// memSource is a stateSource that remembers the committed state (known) and what the
// transaction in flight changed (pending, erased).
type memSource struct {
	known   *graphState
	pending *graphState
	erasedT map[string]bool // owners erased by the transaction in flight
	// goneM and goneC are the messages and conversations the transaction in flight deleted
	// (deletions.go): hidden in known, dropped from it on commit.
	goneM, goneC map[string]bool
	// goneE and goneF are the entities and facts it deleted (entities_deleted.go), alike.
	goneE, goneF map[string]bool
	owners       map[string]string
}

func newMemSource() *memSource {
	return &memSource{known: newGraphState(), owners: map[string]string{}}
}

func (m *memSource) reset() {
	m.pending, m.erasedT = newGraphState(), map[string]bool{}
	m.goneM, m.goneC = map[string]bool{}, map[string]bool{}
	m.goneE, m.goneF = map[string]bool{}, map[string]bool{}
}

func (m *memSource) size() int {
	k := m.known
	return len(k.users) + len(k.messages) + len(k.conversations) + len(k.preferences) + len(k.entities) +
		len(k.facts) + len(k.traces) + len(k.steps) + len(k.toolCalls)
}

// intern keeps one copy of each owner string.
func (m *memSource) intern(o owned) owned {
	if !o.hasOwner {
		return o
	}
	s, ok := m.owners[o.owner]
	if !ok {
		m.owners[o.owner] = o.owner
		return o
	}
	o.owner = s
	return o
}

// visible is whether a node of owner o, as the transaction in flight saw it before its
// writes, still exists (not erased by it).
func (m *memSource) visible(o owned) bool { return !o.hasOwner || !m.erasedT[o.owner] }

// get returns the state of key in tbl: pending first (written by the transaction in flight),
// else known (unless the transaction erased its owner).
func get[V any](m *memSource, pending, known map[string]V, key string, own func(V) owned) (V, bool) {
	if v, ok := pending[key]; ok {
		return v, true
	}
	v, ok := known[key]
	if ok && m.visible(own(v)) {
		return v, true
	}
	var zero V
	return zero, false
}

func ownedOf(o owned) owned { return o }

func (m *memSource) lookup(_ context.Context, _ neo4j.ManagedTransaction, k *lookupKeys) (*graphState, error) {
	st := newGraphState()
	p, kn := m.pending, m.known
	for id := range k.users {
		if v, ok := get(m, p.users, kn.users, id, ownedOf); ok {
			st.users[id] = v
		}
	}
	for id := range k.messages {
		if _, ok := p.messages[id]; !ok && m.goneM[id] {
			continue
		}
		if v, ok := get(m, p.messages, kn.messages, id, ownedOf); ok {
			st.messages[id] = v
		}
	}
	for id := range k.conversations {
		if _, ok := p.conversations[id]; !ok && m.goneC[id] {
			continue
		}
		if v, ok := get(m, p.conversations, kn.conversations, id, func(c *convNode) owned { return c.owned }); ok {
			c := *v
			st.conversations[id] = &c
		}
	}
	for id := range k.preferences {
		if v, ok := get(m, p.preferences, kn.preferences, id, func(n *prefNode) owned { return n.owned }); ok {
			n := *v
			n.supersededBy = slices.Clone(v.supersededBy)
			st.preferences[id] = &n
		}
	}
	for id := range k.entities {
		if _, ok := p.entities[id]; !ok && m.goneE[id] {
			continue
		}
		if v, ok := get(m, p.entities, kn.entities, id, ownedOf); ok {
			st.entities[id] = v
			if into := m.survivor(id); into != id {
				st.merged[id] = into
			}
		}
	}
	for id := range k.facts {
		if _, ok := p.facts[id]; !ok && m.goneF[id] {
			continue
		}
		if v, ok := get(m, p.facts, kn.facts, id, ownedOf); ok {
			st.facts[id] = v
		}
	}
	for id := range k.traces {
		if v, ok := get(m, p.traces, kn.traces, id, func(n *traceNode) owned { return n.owned }); ok {
			n := *v
			st.traces[id] = &n
		}
	}
	for id := range k.steps {
		if v, ok := get(m, p.steps, kn.steps, id, func(n *stepNode) owned { return n.owned }); ok {
			n := *v
			n.traces = slices.Clone(v.traces)
			st.steps[id] = &n
		}
	}
	for id := range k.toolCalls {
		if v, ok := get(m, p.toolCalls, kn.toolCalls, id, ownedOf); ok {
			st.toolCalls[id] = v
		}
	}
	return st, nil
}

// survivor is the entity id reaches through the merges the transaction in flight and the
// committed ones recorded (the graph keeps one hop; this follows the chain).
func (m *memSource) survivor(id string) string {
	for range 64 {
		into, ok := m.pending.merged[id]
		if !ok {
			if into, ok = m.known.merged[id]; !ok || m.goneE[id] {
				return id
			}
		}
		id = into
	}
	return id
}

// written keeps the segment's state as the transaction's.
func (m *memSource) written(st *graphState) {
	p := m.pending
	for id, v := range st.users {
		p.users[id] = m.intern(v)
	}
	for id, v := range st.messages {
		p.messages[id] = m.intern(v)
	}
	for id, v := range st.conversations {
		v.owned = m.intern(v.owned)
		p.conversations[id] = v
	}
	for id, v := range st.preferences {
		v.owned = m.intern(v.owned)
		p.preferences[id] = v
	}
	for id, v := range st.entities {
		p.entities[id] = m.intern(v)
	}
	maps.Copy(p.merged, st.merged)
	for id, v := range st.facts {
		p.facts[id] = m.intern(v)
	}
	for id, v := range st.traces {
		v.owned = m.intern(v.owned)
		p.traces[id] = v
	}
	for id, v := range st.steps {
		v.owned = m.intern(v.owned)
		p.steps[id] = v
	}
	for id, v := range st.toolCalls {
		p.toolCalls[id] = m.intern(v)
	}
}

// deleted forgets the deleted messages, conversations, entities and facts, and sets the new
// tails.
func (m *memSource) deleted(d deletion) {
	for _, id := range d.messages {
		delete(m.pending.messages, id)
		m.goneM[id] = true
	}
	for _, id := range d.conversations {
		delete(m.pending.conversations, id)
		m.goneC[id] = true
	}
	for _, id := range d.entities {
		delete(m.pending.entities, id)
		delete(m.pending.merged, id)
		m.goneE[id] = true
	}
	for _, id := range d.facts {
		delete(m.pending.facts, id)
		m.goneF[id] = true
	}
	for id, tail := range d.tails {
		c, ok := m.pending.conversations[id]
		if !ok {
			k, known := m.known.conversations[id]
			if !known || m.goneC[id] || !m.visible(k.owned) {
				continue // not remembered: nothing to correct
			}
			cp := *k
			c = &cp
		}
		c.tail = tail
		m.pending.conversations[id] = c
	}
}

// erased forgets every node of owner, in what the transaction wrote and in what it sees.
func (m *memSource) erased(owner string) {
	m.erasedT[owner] = true
	dropOwner(m.pending, owner)
}

// commit makes the transaction's state the known one.
func (m *memSource) commit() {
	for owner := range m.erasedT {
		dropOwner(m.known, owner)
	}
	p, k := m.pending, m.known
	for id := range m.goneM {
		delete(k.messages, id)
	}
	for id := range m.goneC {
		delete(k.conversations, id)
	}
	for id := range m.goneE {
		delete(k.entities, id)
		delete(k.merged, id)
	}
	for id := range m.goneF {
		delete(k.facts, id)
	}
	maps.Copy(k.users, p.users)
	maps.Copy(k.messages, p.messages)
	maps.Copy(k.conversations, p.conversations)
	maps.Copy(k.preferences, p.preferences)
	maps.Copy(k.entities, p.entities)
	maps.Copy(k.merged, p.merged)
	maps.Copy(k.facts, p.facts)
	maps.Copy(k.traces, p.traces)
	maps.Copy(k.steps, p.steps)
	maps.Copy(k.toolCalls, p.toolCalls)
	m.reset()
}

// dropOwner deletes every node of owner from st.
func dropOwner(st *graphState, owner string) {
	is := func(o owned) bool { return o.hasOwner && o.owner == owner }
	maps.DeleteFunc(st.users, func(_ string, v owned) bool { return is(v) })
	maps.DeleteFunc(st.messages, func(_ string, v owned) bool { return is(v) })
	maps.DeleteFunc(st.conversations, func(_ string, v *convNode) bool { return is(v.owned) })
	maps.DeleteFunc(st.preferences, func(_ string, v *prefNode) bool { return is(v.owned) })
	maps.DeleteFunc(st.merged, func(id string, _ string) bool { v, ok := st.entities[id]; return ok && is(v) })
	maps.DeleteFunc(st.entities, func(_ string, v owned) bool { return is(v) })
	maps.DeleteFunc(st.facts, func(_ string, v owned) bool { return is(v) })
	maps.DeleteFunc(st.traces, func(_ string, v *traceNode) bool { return is(v.owned) })
	maps.DeleteFunc(st.steps, func(_ string, v *stepNode) bool { return is(v.owned) })
	maps.DeleteFunc(st.toolCalls, func(_ string, v owned) bool { return is(v) })
}
