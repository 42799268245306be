// Package query answers Engram's reads from the projected graph (docs/graph.md): a user's
// preferences with the seed library's get_preferences_for semantics plus transaction-time
// reads, conversations and their messages, reasoning traces and the preference audit history,
// every read scoped to one user. It can wait for a write's consistency token before reading
// (read-your-writes) and serves all of it over HTTP (docs/query.md, schemas/query-openapi.yaml).
package query
