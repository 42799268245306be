// Package stream connects to NATS JetStream, applies the stream and consumer definitions of
// deploy/nats, and publishes events so that a caller hears success only after JetStream
// stored the event.
package stream
