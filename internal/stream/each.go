package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Each calls fn with every message stored on filter in the stream streamName, in stream
// order, through an ordered consumer (headers only when headersOnly): what an audit, an
// import's resume and a scan of a tenant's dead letters read. It counts the messages first
// (the stream's info with the filter) and ends at the last one stored when it began, not when
// the stream goes quiet. An error of fn ends it. A stream that does not exist is
// jetstream.ErrStreamNotFound, wrapped.
func Each(ctx context.Context, js jetstream.JetStream, streamName, filter string, headersOnly bool, fn func(jetstream.Msg) error) error {
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		return fmt.Errorf("read %s of %s: %w", filter, streamName, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return fmt.Errorf("read %s of %s: %w", filter, streamName, err)
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	if total == 0 {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{filter},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		HeadersOnly:       headersOnly,
		InactiveThreshold: 10 * time.Second, // removed soon after the read, not in five minutes
	})
	if err != nil {
		return fmt.Errorf("read %s of %s: %w", filter, streamName, err)
	}
	for seen := uint64(0); seen < total; {
		batch, err := cons.Fetch(int(min(500, total-seen)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("read %s of %s: %w", filter, streamName, err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			seen++
			if err := fn(msg); err != nil {
				return err
			}
			if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
				seen = total // the last one: messages purged meanwhile are not waited for
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("read %s of %s: %w", filter, streamName, err)
		}
		if got == 0 {
			break
		}
	}
	return nil
}
