// Package ingest is Engram's write path: the commands an agent sends (upsert a user, add a
// message or a preference, supersede a preference, record a reasoning trace, erase a user),
// their validation and the multi-tenant guardrail, the ids minted at ingest, and the two ways
// to publish the resulting CloudEvents: the ingestor's HTTP API (answering only after
// JetStream stored the event) and an asynchronous direct-NATS publisher for agents.
//
// Build turns a command into an event; Handler serves the /v1 HTTP API; AsyncPublisher
// publishes fire-and-forget with a bounded number in flight.
package ingest
