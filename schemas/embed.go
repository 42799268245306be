// Package schemas carries the JSON Schemas of the events' data (events/<kind>.v1.json) and the
// HTTP API's OpenAPI document, embedded so that binaries validate against exactly the files in
// this directory.
package schemas

import "embed"

// Events holds events/<kind>.v1.json, one JSON Schema per event kind.
//
//go:embed events/*.json
var Events embed.FS
