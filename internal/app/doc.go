// Package app is what every Engram binary shares: typed configuration read once from flags
// and environment, logging, and fx modules for the NATS connection, the Neo4j driver and the
// HTTP server with /healthz and /readyz. A binary's main.go only assembles these with its own
// module and runs.
package app
