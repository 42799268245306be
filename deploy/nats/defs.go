// Package natsdeploy holds the JetStream definitions of the memory stream, the dead-letter
// stream and the projector consumers as files, embedded so that every service applies exactly
// these at start-up (create or update, idempotent).
package natsdeploy

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

//go:embed stream.json
var streamJSON []byte

//go:embed dlq-stream.json
var dlqJSON []byte

//go:embed consumer-projector.json
var projectorJSON []byte

// Partitions is the number of projection partitions the stream's subject transform assigns;
// it must agree with partition(N,1) in stream.json. Changing it re-maps tenants to partitions
// and needs a drained projector (docs/operations.md).
const Partitions = 8

// MemoryStream returns the memory stream's configuration with the duplicate window set to
// dup (zero keeps the file's value).
func MemoryStream(dup time.Duration) (jetstream.StreamConfig, error) {
	var c jetstream.StreamConfig
	if err := json.Unmarshal(streamJSON, &c); err != nil {
		return c, fmt.Errorf("stream.json: %w", err)
	}
	if dup > 0 {
		c.Duplicates = dup
	}
	if c.SubjectTransform == nil || !strings.Contains(c.SubjectTransform.Destination, "partition("+strconv.Itoa(Partitions)+",") {
		return c, fmt.Errorf("stream.json: subject transform does not partition by %d", Partitions)
	}
	return c, nil
}

// DeadLetterStream returns the dead-letter stream's configuration.
func DeadLetterStream() (jetstream.StreamConfig, error) {
	var c jetstream.StreamConfig
	if err := json.Unmarshal(dlqJSON, &c); err != nil {
		return c, fmt.Errorf("dlq-stream.json: %w", err)
	}
	return c, nil
}

// ProjectorConsumer returns the durable consumer of one partition.
func ProjectorConsumer(partition int) (jetstream.ConsumerConfig, error) {
	var c jetstream.ConsumerConfig
	if partition < 0 || partition >= Partitions {
		return c, fmt.Errorf("partition %d out of range [0,%d)", partition, Partitions)
	}
	raw := strings.ReplaceAll(string(projectorJSON), "{{partition}}", strconv.Itoa(partition))
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return c, fmt.Errorf("consumer-projector.json: %w", err)
	}
	return c, nil
}
