package query

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// fateEnv is a Reader over a fresh JetStream and the shared Neo4j, with a checkpoint group of
// its own, and helpers that play the ingestor (publish) and the projector (apply, reject).
type fateEnv struct {
	t     *testing.T
	r     *Reader
	js    jetstream.JetStream
	pub   *stream.Publisher
	group string
	setCP func(user string, seq uint64)
}

func newFateEnv(t *testing.T) *fateEnv {
	t.Helper()
	d := neo4jDriver(t)
	_, _, js := testenv.NATS(t)
	group := testGroup(t, d)
	log := NewStreamLog(js)
	r, err := NewReader(d, "", WithCheckpointGroup(group), WithPartitionLog(log), WithEventLog(log))
	if err != nil {
		t.Fatal(err)
	}
	e := &fateEnv{t: t, r: r, js: js, pub: stream.NewPublisher(js, 5*time.Second), group: group}
	e.setCP = func(user string, seq uint64) {
		name, _ := r.CheckpointName(user)
		tok, _ := events.TenantToken(user)
		setCheckpoint(t, d, name, events.Partition(tok, natsdeploy.Partitions), int64(seq))
	}
	return e
}

// publish stores an upsert of user (events.NewID) and returns the event with its sequence.
func (e *fateEnv) publish(user string) (*events.Event, uint64) {
	e.t.Helper()
	return e.publishID(user, events.NewID())
}

func (e *fateEnv) publishID(user, id string) (*events.Event, uint64) {
	e.t.Helper()
	ev := &events.Event{ID: id, Source: "/test", User: user, Time: time.Now().UTC(),
		Data: events.UserUpserted{UserID: events.UserID(user), Identifier: user}}
	st, err := e.pub.Publish(e.t.Context(), ev)
	if err != nil {
		e.t.Fatal(err)
	}
	return ev, st.Sequence
}

// reject sends the dead letter the projector of group would send for the event at seq.
func (e *fateEnv) reject(user string, seq uint64, group string, reason projection.Reason, msg string) {
	e.t.Helper()
	subj, _ := events.Subject(user, events.KindUserUpserted)
	tok, _ := events.TenantToken(user)
	subj += "." + strconv.Itoa(events.Partition(tok, natsdeploy.Partitions))
	letter := projection.DeadLetterMsg(projection.DeadLetter{Subject: subj, Sequence: seq, Stored: time.Now(),
		Reason: reason, Err: errors.New(msg)}, group)
	if _, err := e.js.PublishMsg(e.t.Context(), letter, jetstream.WithExpectStream(stream.DeadLetterStream)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fateEnv) fate(user, id string, seq uint64) *Fate {
	e.t.Helper()
	f, err := e.r.Fate(e.t.Context(), user, id, seq)
	if err != nil {
		e.t.Fatalf("fate of %s at %d: %v", id, seq, err)
	}
	if f.EventID != id {
		e.t.Fatalf("fate of %s: %+v", id, f)
	}
	return f
}

// TestFate walks an event through its fates, by sequence and by search: stored until the
// checkpoint passes it, then applied; dead_lettered as soon as its dead letter is stored, with
// the projector's reason and message.
func TestFate(t *testing.T) {
	t.Parallel()
	e := newFateEnv(t)
	user := testenv.User(t, "fate")

	ok, okSeq := e.publish(user)
	bad, badSeq := e.publish(user)
	for _, seq := range []uint64{okSeq, 0} {
		f := e.fate(user, ok.ID, seq)
		if f.Status != FateStored || f.Sequence != okSeq || f.Kind != "user_upserted" || f.StoredAt.IsZero() ||
			f.Reason != nil || f.Error != nil || f.DeadLetteredAt != nil {
			t.Fatalf("before projection (sequence %d): %+v", seq, f)
		}
	}

	// A dead letter decides the fate before the checkpoint passes the event.
	e.reject(user, badSeq, e.group, projection.ReasonMissingReference, "supersede: preference x not found")
	f := e.fate(user, bad.ID, badSeq)
	if f.Status != FateDeadLettered || f.Reason == nil || *f.Reason != "missing_reference" ||
		f.Error == nil || *f.Error != "supersede: preference x not found" || f.DeadLetteredAt == nil {
		t.Fatalf("dead-lettered: %+v", f)
	}

	e.setCP(user, badSeq)
	for _, search := range []bool{false, true} {
		okAt, badAt := okSeq, badSeq
		if search {
			okAt, badAt = 0, 0
		}
		if f := e.fate(user, ok.ID, okAt); f.Status != FateApplied {
			t.Fatalf("checkpoint at %d, event %d (search %v): %+v", badSeq, okSeq, search, f)
		}
		if f := e.fate(user, bad.ID, badAt); f.Status != FateDeadLettered {
			t.Fatalf("dead letter and checkpoint (search %v): %+v", search, f)
		}
	}

	// Another projector group's dead letter (a rebuild's) is not this group's decision.
	other, otherSeq := e.publish(user)
	e.reject(user, otherSeq, "rebuild-x", projection.ReasonInternal, "boom")
	e.setCP(user, otherSeq)
	if f := e.fate(user, other.ID, otherSeq); f.Status != FateApplied {
		t.Fatalf("dead letter of another group: %+v", f)
	}
}

// TestFateNotFound: what the tenant's log does not hold is not found, whoever else holds it —
// another user's event by its own sequence, a wrong sequence, an erased event — and the answer
// is the same in each case.
func TestFateNotFound(t *testing.T) {
	t.Parallel()
	e := newFateEnv(t)
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	own, ownSeq := e.publish(sara)
	foreign, foreignSeq := e.publish(liam)
	// liam's event is dead-lettered: its existence and its reason stay liam's.
	e.reject(liam, foreignSeq, e.group, projection.ReasonSchemaInvalid, "liam's secret")

	tests := []struct {
		name string
		id   string
		seq  uint64
	}{
		{"another user's event by its sequence", foreign.ID, foreignSeq},
		{"another user's event by search", foreign.ID, 0},
		{"own event at a wrong sequence", own.ID, foreignSeq},
		{"another id at own sequence", events.NewID(), ownSeq},
		{"beyond the stream", own.ID, foreignSeq + 100},
		{"never stored", events.NewID(), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := e.r.Fate(t.Context(), sara, tc.id, tc.seq)
			var nf *EventNotFoundError
			if !errors.Is(err, ErrNotFound) || !errors.As(err, &nf) || f != nil {
				t.Fatalf("fate %+v, err %v: want an EventNotFoundError", f, err)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "liam") {
				t.Fatalf("the error tells of liam's event: %v", err)
			}
		})
	}

	// Erasure purges the tenant's events below the tombstone: the event is gone.
	_, tombstone := e.publish(sara)
	if err := stream.PurgeTenant(t.Context(), e.js, sara, tombstone); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{ownSeq, 0} {
		if _, err := e.r.Fate(t.Context(), sara, own.ID, seq); !errors.Is(err, ErrNotFound) {
			t.Fatalf("erased event (sequence %d): err %v", seq, err)
		}
	}
}

// TestFateSearch: without a sequence the search reads the tenant's events in batches from
// SearchBefore before the id's time, skipping other tenants' events, and stops SearchAfter
// after it.
func TestFateSearch(t *testing.T) {
	t.Parallel()
	e := newFateEnv(t)
	user, noisy := testenv.User(t, "search"), testenv.User(t, "noisy")
	for range searchBatch + 10 {
		e.publish(user)
		e.publish(noisy)
	}
	last, lastSeq := e.publish(user)
	if f := e.fate(user, last.ID, 0); f.Sequence != lastSeq || f.Status != FateStored {
		t.Fatalf("found after %d of the tenant's events: %+v", searchBatch+10, f)
	}

	// An id minted well before it was stored (a clock far behind): outside the bounds.
	early := uuidV7At(t, time.Now().Add(-SearchBefore-SearchAfter-time.Minute))
	e.publishID(user, early)
	_, err := e.r.Fate(t.Context(), user, early, 0)
	var nf *EventNotFoundError
	if !errors.As(err, &nf) || nf.Sequence != 0 || nf.Limited || nf.Until.Sub(nf.From) != SearchBefore+SearchAfter {
		t.Fatalf("event stored beyond the search window: err %v", err)
	}
	if !strings.Contains(err.Error(), "pass the receipt's sequence") {
		t.Fatalf("the error does not tell the way out: %v", err)
	}
}

// uuidV7At returns a random UUIDv7 minted at t.
func uuidV7At(t *testing.T, at time.Time) string {
	t.Helper()
	u := uuid.Must(uuid.NewV7())
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(at.UnixMilli()))
	copy(u[:6], ms[2:])
	return u.String()
}

func TestFateBadArguments(t *testing.T) {
	t.Parallel()
	e := newFateEnv(t)
	user := testenv.User(t, "args")
	tests := []struct {
		name, user, id string
		seq            uint64
		wantField      string
	}{
		{"identifier", "a\x00b", events.NewID(), 1, "identifier"},
		{"empty id", user, "", 1, "event_id"},
		{"search needs a UUIDv7", user, uuid.NewString(), 0, "event_id"},
		{"search needs the canonical form", user, strings.ToUpper(events.NewID()), 0, "event_id"},
		{"sequence beyond int64", user, events.NewID(), 1 << 63, "sequence"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.r.Fate(t.Context(), tc.user, tc.id, tc.seq)
			var arg *ArgumentError
			if !errors.As(err, &arg) || arg.Field != tc.wantField {
				t.Fatalf("err %v, want an ArgumentError for %s", err, tc.wantField)
			}
		})
	}
	if got, err := uuidV7Time("0190b8c4-5e00-7000-8000-000000000000"); err != nil || got.UnixMilli() != 0x0190b8c45e00 {
		t.Fatalf("time of a UUIDv7: %v, %v", got, err)
	}
}

// TestFateHeadersAreTheProjectors holds the headers the query service reads to the ones the
// projector writes.
func TestFateHeadersAreTheProjectors(t *testing.T) {
	t.Parallel()
	for ours, theirs := range map[string]string{
		dlqReasonHeader: projection.HeaderDlqReason, dlqErrorHeader: projection.HeaderDlqError,
		dlqStreamHeader: projection.HeaderDlqStream, dlqSeqHeader: projection.HeaderDlqSeq,
		dlqGroupHeader: projection.HeaderDlqGroup, dlqSubjectPrefix: projection.DeadLetterSubjectPrefix,
	} {
		if ours != theirs {
			t.Errorf("query reads %q, the projector writes %q", ours, theirs)
		}
	}
}

// TestFateHTTP: the route, its parameters and its answers.
func TestFateHTTP(t *testing.T) {
	t.Parallel()
	e := newFateEnv(t)
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	NewHandler(e.r, time.Second, 50, nil, m).Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	srv := hs.URL
	user := testenv.User(t, "fatehttp")
	ev, seq := e.publish(user)
	e.reject(user, seq, e.group, projection.ReasonConflict, "already superseded")
	base := userURL(srv, user) + "/events/" + ev.ID

	var f Fate
	for _, target := range []string{base, base + "?sequence=" + strconv.FormatUint(seq, 10)} {
		if code, body := get(t, target, nil, &f); code != http.StatusOK || f.Status != FateDeadLettered || *f.Reason != "conflict" || f.Sequence != seq {
			t.Fatalf("%s: %d %s", target, code, body)
		}
	}
	// With its own sequence as the consistency token, the read waits until the projector
	// decided.
	ok, okSeq := e.publish(user)
	e.setCP(user, okSeq)
	target := fmt.Sprintf("%s/events/%s?sequence=%d&consistency=%d", userURL(srv, user), ok.ID, okSeq, okSeq)
	if code, body := get(t, target, nil, &f); code != http.StatusOK || f.Status != FateApplied {
		t.Fatalf("%s: %d %s", target, code, body)
	}

	for _, tc := range []struct {
		query, wantField string
	}{
		{"sequence=0", "sequence"},
		{"sequence=x", "sequence"},
		{"sequence=1&sequence=2", "sequence"},
		{"seq=1", "seq"},
	} {
		code, body := get(t, base+"?"+tc.query, nil, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(body), `"field":"`+tc.wantField+`"`) {
			t.Errorf("?%s: %d %s", tc.query, code, body)
		}
	}
	code, body := get(t, userURL(srv, user)+"/events/"+events.NewID(), nil, nil)
	if code != http.StatusNotFound || !strings.Contains(string(body), "not found") || !strings.Contains(string(body), user) {
		t.Errorf("unknown event: %d %s", code, body)
	}
}

// TestFateRefusedAfterErasure: an event stored after its user's last tombstone and before the
// first re-creation after it is refused (user_erased), whatever the checkpoint says, by
// sequence and by search; one after the re-creation is not, nor the tombstone and the
// re-creation themselves.
func TestFateRefusedAfterErasure(t *testing.T) {
	t.Parallel()
	e := newFateEnv(t)
	user := testenv.User(t, "refused")
	store := func(data any) (*events.Event, uint64) {
		t.Helper()
		ev := &events.Event{ID: events.NewID(), Source: "/test", User: user, Time: time.Now().UTC(), Data: data}
		st, err := e.pub.Publish(t.Context(), ev)
		if err != nil {
			t.Fatal(err)
		}
		return ev, st.Sequence
	}
	before, beforeSeq := e.publish(user)
	tomb, tombSeq := store(events.UserErased{Identifier: user})
	dropped, droppedSeq := e.publish(user)
	again, againSeq := store(events.UserRecreated{UserID: events.UserID(user), Identifier: user})
	after, afterSeq := e.publish(user)
	e.setCP(user, afterSeq)
	for _, search := range []bool{false, true} {
		at := func(seq uint64) uint64 {
			if search {
				return 0
			}
			return seq
		}
		f := e.fate(user, dropped.ID, at(droppedSeq))
		if f.Status != FateRefused || f.Reason == nil || *f.Reason != RefusedErased || f.Error == nil ||
			!strings.Contains(*f.Error, fmt.Sprintf("erasure (stream sequence %d)", tombSeq)) || f.DeadLetteredAt != nil {
			t.Fatalf("between the tombstone and the re-creation (search %v): %+v", search, f)
		}
		for _, ev := range []struct {
			id  string
			seq uint64
		}{{before.ID, beforeSeq}, {tomb.ID, tombSeq}, {again.ID, againSeq}, {after.ID, afterSeq}} {
			if f := e.fate(user, ev.id, at(ev.seq)); f.Status != FateApplied {
				t.Errorf("event %d (search %v): %+v, want applied", ev.seq, search, f)
			}
		}
	}
	// Without a re-creation after the last tombstone, everything after it is refused.
	_, tomb2 := store(events.UserErased{Identifier: user})
	late, lateSeq := e.publish(user)
	if f := e.fate(user, late.ID, lateSeq); f.Status != FateRefused || lateSeq < tomb2 {
		t.Fatalf("after a second tombstone: %+v", f)
	}
}
