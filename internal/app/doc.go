// Package app is what every Engram binary shares: typed configuration read once from flags
// and environment, logging, and fx modules: Module for the NATS connection and the HTTP server
// with /healthz and /readyz, Neo4jModule for the Neo4j driver of the services that use the
// graph. A binary's main.go only assembles these with its own module and runs.
package app
