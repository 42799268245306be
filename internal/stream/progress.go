package stream

import (
	"strconv"
	"strings"
)

// ProgressRoot is the root of the projectors' progress notifications: after each commit, a
// projector publishes the partition's new checkpoint (the stream sequence, in decimal) on
// engram.progress.<group>.<partition> with core NATS. They are hints, at most once: a reader
// waiting for a consistency token reads the checkpoint from the graph when one arrives instead
// of at its next poll, and still polls for the ones that are lost. Nothing is decided on them.
const ProgressRoot = "engram.progress"

// ProgressSubject is the subject of a group's notifications for one partition.
func ProgressSubject(group string, partition int) string {
	return ProgressRoot + "." + group + "." + strconv.Itoa(partition)
}

// ProgressFilter subscribes to every partition of a group.
func ProgressFilter(group string) string { return ProgressRoot + "." + group + ".*" }

// ParseProgress reads the partition and sequence of a notification; ok is false for anything
// else.
func ParseProgress(subject string, data []byte) (partition int, seq uint64, ok bool) {
	i := strings.LastIndexByte(subject, '.')
	if i < 0 {
		return 0, 0, false
	}
	p, err := strconv.Atoi(subject[i+1:])
	if err != nil || p < 0 {
		return 0, 0, false
	}
	s, err := strconv.ParseUint(string(data), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return p, s, true
}
