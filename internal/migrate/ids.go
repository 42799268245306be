package migrate

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/google/uuid"

	"github.com/engram-memory/engram/internal/events"
)

// EventID is the id of the event that imports one thing of the library's graph: a UUIDv7 (the
// envelope requires one) whose time is the library's time of it (milliseconds since the Unix
// epoch, 0 before it) and whose random bits are a SHA-256 of the kind, the user and the
// library's ids. The same graph therefore always yields the same events, which is what makes
// an import resumable: the ids already in the log are skipped (publish.go), for as long as the
// log keeps them, not only within JetStream's duplicate window.
func EventID(at time.Time, kind events.Kind, user string, ids ...string) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(user))
	for _, id := range ids {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	sum := h.Sum(nil)
	var u uuid.UUID
	ms := max(at.UnixMilli(), 0)
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(ms))
	copy(u[:6], ts[2:])
	copy(u[6:], sum[:10])
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}
