// Package client is Engram's Go client. It mirrors the API of the Python library
// neo4j-agent-memory (v0.4's multi-tenant page): Users.UpsertUser, ShortTerm.AddMessage,
// LongTerm.AddPreference / GetPreferencesFor / SupersedePreference, and Reasoning.StartTrace /
// AddStep / RecordToolCall / CompleteTrace, each scoped to a user with ForUser.
//
// Writes go to the ingestor over HTTP (answered once JetStream stored them) or, with
// WithNATS, straight to JetStream asynchronously (fire-and-forget; Wait reports failures).
// Reads go to the query service over HTTP. By default a read about a user waits until
// everything this client wrote for that user is projected (read-your-writes), using the
// consistency token each HTTP write returned.
//
// Every write is validated and its ids are minted in the client before anything is sent, so
// a retried request carries the same event id and is stored once; with WithMultiTenant a
// write without ForUser fails before sending anything (ErrUserRequired).
package client
