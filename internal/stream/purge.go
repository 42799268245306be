package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
)

// PurgeTenant is the log side of erasing a user: it removes every event of the user's tenant
// stored before the erasure tombstone at sequence tombstone (the tombstone itself and anything
// written after it stay), and every dead letter of the tenant. It is idempotent, so an
// interrupted erasure is finished by running it again. Purging before the projector applied
// the tombstone loses nothing that should stay: the tombstone deletes all the user owns.
func PurgeTenant(ctx context.Context, js jetstream.JetStream, user string, tombstone uint64) error {
	if tombstone == 0 {
		return errors.New("purge tenant: the tombstone's sequence is required")
	}
	filter, err := events.TenantSubjects(user)
	if err != nil {
		return err
	}
	if err := purge(ctx, js, MemoryStream, filter, tombstone); err != nil {
		// Not the filter: it names the tenant, and this error reaches the ingestor's log.
		return fmt.Errorf("purge the tenant's events below %d: %w", tombstone, err)
	}
	return PurgeDeadLetters(ctx, js, user)
}

// PurgeDeadLetters removes every dead letter of user's tenant. The ingestor runs it with the
// erasure; the projector runs it again when it applies the tombstone, because the events of
// the tenant stored before the tombstone may be dead-lettered after the ingestor's purge (the
// projector had fetched them already): only the projector knows when the last of them is
// through.
func PurgeDeadLetters(ctx context.Context, js jetstream.JetStream, user string) error {
	filter, err := events.TenantSubjects(user)
	if err != nil {
		return err
	}
	if err := purge(ctx, js, DeadLetterStream, "dlq."+filter, 0); err != nil {
		return fmt.Errorf("purge the tenant's dead letters: %w", err)
	}
	return nil
}

// PurgeTenant is stream.PurgeTenant on the publisher's JetStream: what the ingestor needs
// to finish an erasure.
func (p *Publisher) PurgeTenant(ctx context.Context, user string, tombstone uint64) error {
	return PurgeTenant(ctx, p.js, user, tombstone)
}

// purge sends JetStream's purge request itself rather than through a jetstream.Stream, which
// would first read the stream's info: the ingestor's NATS user may purge but not read
// (deploy/nats/accounts.conf).
func purge(ctx context.Context, js jetstream.JetStream, streamName, filter string, below uint64) error {
	req, err := json.Marshal(struct {
		Filter   string `json:"filter"`
		Sequence uint64 `json:"seq,omitempty"`
	}{filter, below})
	if err != nil {
		return err
	}
	msg, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+streamName, req)
	if err != nil {
		return classify(err)
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("purge answer: %w", err)
	}
	if resp.Error != nil {
		return classify(&jetstream.APIError{Code: resp.Error.Code, ErrorCode: jetstream.ErrorCode(resp.Error.ErrCode), Description: resp.Error.Description})
	}
	if !resp.Success {
		return errors.New("purge not confirmed")
	}
	return nil
}
