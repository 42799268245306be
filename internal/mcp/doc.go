// Package mcp is Engram's Model Context Protocol server: the memory's tools, resources and
// prompt for agent hosts, over stdio or Streamable HTTP (docs/mcp.md). It is a client of the
// ingestor and the query service (package client), so every write is a CloudEvent in the log
// and every call is validated and authorized as Engram's other routes are.
package mcp
