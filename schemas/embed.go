// Package schemas carries the JSON Schemas of the events' data (events/<kind>.v1.json) and the
// HTTP API's OpenAPI document, embedded so that binaries validate against exactly the files in
// this directory.
package schemas

import "embed"

// Events holds events/<kind>.v1.json, one JSON Schema per event kind.
//
//go:embed events/*.json
var Events embed.FS

// QueryOpenAPI is the OpenAPI 3.1 document of the query service's HTTP API.
//
//go:embed query-openapi.yaml
var QueryOpenAPI []byte

// OpenAPI is openapi.yaml: the OpenAPI 3.1 document of the ingestor's /v1 HTTP API.
//
//go:embed openapi.yaml
var OpenAPI []byte
