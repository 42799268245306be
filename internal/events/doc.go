// Package events is Engram's public contract on the wire: the event catalogue, the CloudEvents
// envelope, the tenant-prefixed subject scheme, and the encoding and decoding every component
// and every agent shares. See docs/events.md.
package events
