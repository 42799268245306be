// Package client is Engram's Go client. It mirrors the API of the Python library
// neo4j-agent-memory (v0.4's multi-tenant page): Users.UpsertUser, ShortTerm.AddMessage,
// LongTerm.AddPreference / GetPreferencesFor / SupersedePreference, and Reasoning.StartTrace /
// AddStep / RecordToolCall / CompleteTrace, each scoped to a user with ForUser.
//
// Writes go to the ingestor over HTTP (answered once JetStream stored them) or, with
// WithNATS, straight to JetStream asynchronously (fire-and-forget; Wait reports failures).
// Reads go to the query service over HTTP. By default a read about a user waits until
// everything this client wrote for that user is projected (read-your-writes), using the
// consistency token each HTTP write returned. With multi-tenant mode off, a write without
// ForUser belongs to the shared tenant; read it back with the identifier "" (the query
// service's /v1/shared routes).
//
// A write the log acknowledged may still be refused by the projector (dead-lettered):
// Client.Fate tells what became of a Receipt, and Client.WaitApplied waits for the decision
// and returns a *RejectedError (ErrRejected) with the reason when it was refused.
//
// Every write is validated and its ids are minted in the client before anything is sent, so
// a retried request carries the same event id and is stored once; with WithMultiTenant a
// write without ForUser fails before sending anything (ErrUserRequired).
package client
