// Package query answers Engram's reads from the projected graph (docs/graph.md): a user's
// preferences with the seed library's get_preferences_for semantics plus transaction-time
// reads, conversations and their messages, reasoning traces, tool statistics and the
// preference audit history, every read scoped to one user (or, with multi-tenant mode off, to
// the shared tenant) but the admin's reads across tenants (global tool statistics, the list of
// users). It can
// wait for a write's consistency token before reading (read-your-writes), tells what became
// of a write (Fate: stored, applied or dead-lettered, from the log and the checkpoint), and
// serves all of it over HTTP (docs/query.md, schemas/query-openapi.yaml).
package query
