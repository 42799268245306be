package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// An acknowledged write is stored in the log; the projector may still refuse to apply it
// (an id of another user, a supersede of a preference that does not exist…) and dead-letter
// it. Fate asks the query service which happened (GET …/events/{event_id}, docs/query.md).

// FateStatus is what became of a write.
type FateStatus string

// The fates of a write.
const (
	// FateStored: in the log; the projector has not decided yet.
	FateStored FateStatus = "stored"
	// FateApplied: projected into the graph; reads see it.
	FateApplied FateStatus = "applied"
	// FateDeadLettered: the projector refused it (Fate.Err says why).
	FateDeadLettered FateStatus = "dead_lettered"
	// FateRefused: stored after its user's erasure and dropped by the projector: nothing
	// applied, no dead letter (Fate.Err is a *GoneError, Reason user_erased).
	FateRefused FateStatus = "refused"
)

// Fate is what became of one write.
type Fate struct {
	EventID  string     `json:"event_id"`
	Sequence uint64     `json:"sequence"`
	Kind     string     `json:"kind"`
	StoredAt time.Time  `json:"stored_at"`
	Status   FateStatus `json:"status"`
	// Reason and Message say why a dead-lettered write was refused; empty otherwise.
	Reason         string     `json:"reason"`
	Message        string     `json:"error"`
	DeadLetteredAt *time.Time `json:"dead_lettered_at"`
}

// Err is nil unless the write was dead-lettered or refused: a *RejectedError (ErrRejected)
// or a *GoneError (ErrGone).
func (f *Fate) Err() error {
	switch f.Status {
	case FateDeadLettered:
		return &RejectedError{EventID: f.EventID, Sequence: f.Sequence, Kind: f.Kind, Reason: f.Reason, Message: f.Message}
	case FateRefused:
		return &GoneError{EventID: f.EventID, Sequence: f.Sequence, Kind: f.Kind, Reason: f.Reason, Message: f.Message}
	}
	return nil
}

// Fate asks what became of the write of r, as it stands now: stored, applied or
// dead-lettered (a dead letter is Fate.Err, not an error of the call). ErrNotFound when the
// log does not hold it: never stored, erased since, or — for a write sent over NATS, whose
// receipt has no sequence — not yet acknowledged or not within the time the service searches.
func (c *Client) Fate(ctx context.Context, r Receipt) (*Fate, error) {
	return c.fate(ctx, r, r.Sequence, false)
}

// WaitApplied waits until the projector decided about the write of r: nil once it is
// applied, a *RejectedError (errors.Is ErrRejected) when it was dead-lettered, a *GoneError
// (errors.Is ErrGone) when it was dropped for its user's erasure, ctx's error
// when ctx ends first. The query service waits for the projector's checkpoint (the receipt's
// sequence as a consistency token), so the wait costs a request per CONSISTENCY_WAIT. A
// receipt of a write sent over NATS has no sequence: WaitApplied looks for the write until
// the log holds it, so give ctx a deadline.
func (c *Client) WaitApplied(ctx context.Context, r Receipt) (*Fate, error) {
	seq := r.Sequence
	backoff := 10 * time.Millisecond
	for {
		f, err := c.fate(ctx, r, seq, seq > 0)
		switch {
		case err == nil && f.Status != FateStored:
			return f, f.Err()
		case err == nil:
			seq = f.Sequence
		case errors.Is(err, ErrNotCaughtUp) && seq > 0:
			continue // the service waited as long as it may; ask again
		case errors.Is(err, ErrNotFound) && r.Sequence == 0:
			// Sent over NATS: the acknowledgement may still be on its way.
		default:
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// fate reads the fate of r's event, found at seq (0: searched by its id); wait makes the
// service wait until the projector's checkpoint passed seq.
func (c *Client) fate(ctx context.Context, r Receipt, seq uint64, wait bool) (*Fate, error) {
	if r.EventID == "" {
		return nil, fmt.Errorf("engram fate: %w: the receipt has no event id", ErrInvalid)
	}
	q := url.Values{}
	if seq > 0 {
		q.Set("sequence", strconv.FormatUint(seq, 10))
		if wait {
			q.Set("consistency", strconv.FormatUint(seq, 10))
		}
	}
	u := c.o.queryURL + readPath(r.User) + "/events/" + url.PathEscape(r.EventID)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var f Fate
	if err := c.do(ctx, "fate", http.MethodGet, u, nil, &f, 0); err != nil {
		return nil, err
	}
	return &f, nil
}
