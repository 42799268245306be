// Package migrate moves a graph written by the Python library neo4j-agent-memory (0.4 to 0.8)
// into Engram: it reads the library's graph strictly read-only and turns it into Engram events
// — users, conversations and messages in order, preferences with their validity and supersede
// chains, reasoning traces with steps and tool calls — with the library's ids and times, to be
// published into the log like any other write. Whatever the library's graph holds that Engram
// cannot represent is reported as an Issue, never dropped silently (docs/migration.md).
package migrate
