package stream

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/events"
)

// VouchHeader carries the ingestor's vouch for an event it published: an HMAC, with a key
// only the ingestors (and the auditors) hold, over the event's tenant, kind, every ce-
// header and the data. Anyone can publish a ce-actor or ce-source; only a key holder can
// make a vouch that verifies, so the audit tells what the ingestor vouched for from what a
// publisher over NATS claimed (docs/security.md, issue 12 finding 10).
const VouchHeader = "Engram-Vouch"

// MinKeyBytes is the shortest signing key accepted.
const MinKeyBytes = 32

// ErrNoKey is returned by LoadKeys for a file without a key.
var ErrNoKey = errors.New("no signing key")

// Key is one secret of the ingestors: it keys their Nats-Msg-Id (so no publisher without it
// can make an id that collides with one of theirs) and their vouch.
type Key struct {
	id     string // the first 8 hex digits of the secret's SHA-256: names the key in a vouch
	secret []byte
	macs   *sync.Pool // of *macState keyed with secret; nil in a zero Key
}

// macState is a keyed HMAC and a buffer for its input. An HMAC once keyed is Reset to its
// key's state without hashing the key's pads again, and the input is written in one Write:
// a vouch cost the ingestor about 16 µs of CPU per write with a fresh hmac.New and a map of
// headers (session 16, docs/BENCHMARKS.md).
type macState struct {
	h   hash.Hash
	buf []byte
}

// Keys are the ingestors' keys: the first signs, every one verifies (rotation: put the new
// key first, keep the old ones for the audit of what they vouched for).
type Keys []Key

// NewKey returns the key of secret (at least MinKeyBytes bytes).
func NewKey(secret []byte) (Key, error) {
	if len(secret) < MinKeyBytes {
		return Key{}, fmt.Errorf("signing key: %d bytes, at least %d required", len(secret), MinKeyBytes)
	}
	sum := sha256.Sum256(secret)
	k := Key{id: hex.EncodeToString(sum[:4]), secret: bytes.Clone(secret)}
	k.macs = &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, k.secret)} }}
	return k, nil
}

// RandomKeys returns one random key: what an ingestor signs with when no key file is
// configured. Its vouches verify nowhere else, and another ingestor (or this one after a
// restart) derives other Nats-Msg-Ids from the same event ids.
func RandomKeys() Keys {
	b := make([]byte, MinKeyBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	k, _ := NewKey(b)
	return Keys{k}
}

// LoadKeys reads a key file: one key per line (its bytes as written, e.g. the output of
// `openssl rand -base64 48`), blank lines and lines starting with # ignored, trailing white
// space trimmed. The first key signs. The file's content never appears in an error.
func LoadKeys(path string) (Keys, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key file: %w", err)
	}
	var ks Keys
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimRight(line, " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := NewKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("signing key file %s line %d: %w", path, i+1, err)
		}
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("signing key file %s: %w", path, ErrNoKey)
	}
	return ks, nil
}

func (k Key) mac(parts ...string) []byte {
	m, _ := k.macOf(func(b []byte) ([]byte, error) {
		for _, p := range parts {
			b = append(append(b, p...), 0)
		}
		return b, nil
	})
	return m
}

// macOf returns the HMAC of the input input appends to its argument, or input's error.
func (k Key) macOf(input func([]byte) ([]byte, error)) ([]byte, error) {
	var st *macState
	if k.macs != nil {
		st = k.macs.Get().(*macState)
		defer k.macs.Put(st)
		st.h.Reset()
	} else {
		st = &macState{h: hmac.New(sha256.New, k.secret)}
	}
	in, err := input(st.buf[:0])
	if err != nil {
		return nil, err
	}
	st.buf = in[:0]
	st.h.Write(in)
	return st.h.Sum(nil), nil
}

// MsgID is the Nats-Msg-Id the ingestors give the event eventID of tenant token:
// <token>:k<key id>.<HMAC>. It is deterministic (a retry of the same event id with the same
// key is a duplicate) and scoped to the tenant, and no one without the key can compute it,
// so no other tenant — not even one choosing its own Nats-Msg-Id over NATS — can make the
// stream take one of these events for a duplicate of its own.
func (k Key) MsgID(token, eventID string) string {
	return token + ":k" + k.id + "." + base64.RawURLEncoding.EncodeToString(k.mac("engram-msg-id/1", token, eventID)[:18])
}

// Vouch returns the VouchHeader value for a message on subject (mem.<token>.<kind>, with or
// without the partition token) with header h and data.
func (k Key) Vouch(subject string, h nats.Header, data []byte) (string, error) {
	m, err := k.macOf(func(b []byte) ([]byte, error) { return appendVouchInput(b, subject, h, data) })
	if err != nil {
		return "", err
	}
	return "v1." + k.id + "." + base64.RawURLEncoding.EncodeToString(m), nil
}

// Verify reports whether the message carries a vouch of one of the keys.
func (ks Keys) Verify(subject string, h nats.Header, data []byte) bool {
	vs := headerValues(h, VouchHeader)
	if len(vs) != 1 {
		return false
	}
	parts := strings.Split(vs[0], ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	for _, k := range ks {
		if k.id != parts[1] {
			continue
		}
		m, err := k.macOf(func(b []byte) ([]byte, error) { return appendVouchInput(b, subject, h, data) })
		if err == nil && hmac.Equal(got, m) {
			return true
		}
	}
	return false
}

// appendVouchInput appends to b what a vouch covers, each part followed by a zero byte: the
// version, tenant and kind of the subject, every ce- header as name=value (name lower-cased,
// sorted by name; a name present twice or with two values cannot be vouched for), and the
// SHA-256 of the data in hex. TestVouchInputIsStable holds it to the bytes every stored vouch
// was made over.
func appendVouchInput(b []byte, subject string, h nats.Header, data []byte) ([]byte, error) {
	mem, rest, _ := strings.Cut(subject, ".")
	tenant, rest, ok1 := strings.Cut(rest, ".")
	kind, part, _ := strings.Cut(rest, ".")
	if mem != "mem" || !ok1 || strings.Contains(part, ".") {
		return nil, fmt.Errorf("vouch: subject %q is not mem.<tenant>.<kind>", subject)
	}
	type member struct{ name, value string }
	var arr [16]member
	ce := arr[:0]
	for name, vs := range h {
		if len(name) < 3 || !strings.EqualFold(name[:3], "ce-") {
			continue
		}
		if len(vs) != 1 {
			return nil, fmt.Errorf("vouch: header %s repeated", name)
		}
		ce = append(ce, member{strings.ToLower(name), vs[0]})
	}
	slices.SortFunc(ce, func(a, b member) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(ce); i++ {
		if ce[i].name == ce[i-1].name {
			return nil, fmt.Errorf("vouch: header %s repeated", ce[i].name)
		}
	}
	b = append(append(b, "engram-vouch/1"...), 0)
	b = append(append(b, tenant...), 0)
	b = append(append(b, kind...), 0)
	for _, m := range ce {
		b = append(append(append(append(b, m.name...), '='), m.value...), 0)
	}
	sum := sha256.Sum256(data)
	return append(hex.AppendEncode(b, sum[:]), 0), nil
}

// headerValues returns the values of a header whatever the case of its name.
func headerValues(h nats.Header, name string) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

// sign sets the Nats-Msg-Id of an event's message (and, with keys, its vouch): the ingestors'
// keyed id when the publisher has keys, else events.MsgID's tenant-scoped one.
func (p *Publisher) sign(eventID string, m *nats.Msg) (string, error) {
	parts := strings.Split(m.Subject, ".")
	if len(parts) != 3 || parts[0] != "mem" {
		return "", fmt.Errorf("publish %s: %w: subject %q is not mem.<tenant>.<kind>", eventID, ErrRejected, m.Subject)
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	if len(p.keys) == 0 {
		id := events.MsgID(parts[1], eventID)
		m.Header.Set(nats.MsgIdHdr, id)
		return id, nil
	}
	k := p.keys[0]
	for name := range m.Header {
		if strings.EqualFold(name, VouchHeader) {
			delete(m.Header, name)
		}
	}
	v, err := k.Vouch(m.Subject, m.Header, m.Data)
	if err != nil {
		return "", fmt.Errorf("publish %s: %w: %w", eventID, ErrRejected, err)
	}
	m.Header.Set(VouchHeader, v)
	id := k.MsgID(parts[1], eventID)
	m.Header.Set(nats.MsgIdHdr, id)
	return id, nil
}
