// Package projection applies the memory stream to the Neo4j graph of docs/graph.md: Apply
// holds the Cypher of every event kind (shared with replay), and the Projector consumes the
// stream's partitions in batches with exactly-once effects, a per-partition checkpoint written
// in the same transaction, and dead letters for events that cannot be applied. See
// docs/projector.md.
package projection
