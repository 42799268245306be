package events

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Crypto-shredding (docs/security.md): the ingestor seals each user's event with the user's
// data key before it publishes it, and every reader opens it here, in Codec, before Decode.
// Sealed are the data and the ce- headers that carry the user's identifier or the writer's
// own ids (SealedHeaders); the subject, its tenant token and the other headers stay in clear,
// because routing, per-tenant order, permissions, the erasure's purge and the erasure rule
// read them without a key. Tombstones and re-creations are never sealed: they are the proof
// of the erasure and must outlive the key. Events without HeaderKey are plaintext (written
// before sealing, by an agent over NATS, or with ENCRYPTION=off) and decode as before.

// HeaderKey names the data key that sealed an event: <key set id>.<version>.
const HeaderKey = "Engram-Key"

// SealedHeaders are the ce- headers moved into the sealed body.
var SealedHeaders = []string{"ce-subject", "ce-" + ExtCorrelation, "ce-" + ExtCausation}

// ErrShredded: the event's data key was destroyed (its user was erased), so it cannot be
// opened. It also wraps ErrUndecodable; readers skip such events and count them.
var ErrShredded = errors.New("event data key destroyed (crypto-shredded)")

// ErrSealed: a sealed event reached Decode without being opened (a reader without keys).
var ErrSealed = errors.New("event is sealed: open it with the data keys")

// KeyRef names one version of one user's data keys.
type KeyRef struct {
	ID      string
	Version int
}

// String is the HeaderKey value.
func (r KeyRef) String() string { return r.ID + "." + strconv.Itoa(r.Version) }

// ParseKeyRef reads a HeaderKey value.
func ParseKeyRef(s string) (KeyRef, error) {
	id, v, ok := strings.Cut(s, ".")
	n, err := strconv.Atoi(v)
	if !ok || id == "" || err != nil || n < 1 {
		return KeyRef{}, fmt.Errorf("%w: %s %q is not <id>.<version>", ErrUndecodable, HeaderKey, s)
	}
	return KeyRef{ID: id, Version: n}, nil
}

// Keyring gives the data keys of users (keys.Ring). Users are named by identifier.
type Keyring interface {
	// SealKey returns the key the user's new events are sealed with, created on their first
	// write.
	SealKey(ctx context.Context, user string) (KeyRef, []byte, error)
	// OpenKey returns ref's key, or an error wrapping ErrShredded when it was destroyed.
	OpenKey(ctx context.Context, user string, ref KeyRef) ([]byte, error)
}

// Forgetter is a Keyring with a cache: Codec forgets a user's keys when it decodes their
// tombstone.
type Forgetter interface{ Forget(user string) }

// Sealable reports whether events of kind k for user are sealed: every kind of a user but
// the tombstone and the re-creation; the shared tenant, which no erasure concerns, never.
func Sealable(user string, k Kind) bool {
	return user != "" && k != KindUserErased && k != KindUserRecreated
}

// Codec seals and opens events with a Keyring. The zero Codec has no keys: Seal leaves
// events as they are, and opening a sealed event is ErrSealed.
type Codec struct {
	Keys Keyring
}

// openTimeout bounds a key look-up of a reader whose caller gives no context (the
// projector's decode).
const openTimeout = 10 * time.Second

// Seal encrypts msg, an encoded event of user (Encode's output), in place with the user's
// current key: the body becomes nonce ‖ AES-256-GCM(frame), the frame holding
// SealedHeaders' values and the data; those headers are removed and HeaderKey added. The
// additional data binds the ciphertext to the event's tenant, kind and id, so it cannot be
// moved onto another event. Events Sealable refuses, and every event with no Keys, are left
// as they are.
func (c Codec) Seal(ctx context.Context, user string, msg *nats.Msg) error {
	if c.Keys == nil {
		return nil
	}
	tok, kind, err := ParseSubject(msg.Subject)
	if err != nil {
		return err
	}
	if !Sealable(user, kind) {
		return nil
	}
	ref, key, err := c.Keys.SealKey(ctx, user)
	if err != nil {
		return fmt.Errorf("seal event: %w", err)
	}
	aead, err := gcm(key)
	if err != nil {
		return err
	}
	frame := make([]byte, 0, len(msg.Data)+64)
	for _, h := range SealedHeaders {
		v := msg.Header.Get(h)
		frame = binary.AppendUvarint(frame, uint64(len(v)))
		frame = append(frame, v...)
	}
	frame = append(frame, msg.Data...)
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(frame)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return fmt.Errorf("seal event: %w", err)
	}
	id := msg.Header.Get("ce-id")
	msg.Data = aead.Seal(out, out, frame, additional(tok, kind, id, ref))
	for _, h := range SealedHeaders {
		msg.Header.Del(h)
	}
	msg.Header.Set(HeaderKey, ref.String())
	return nil
}

// Open returns the header and data of a stored message as they were before Seal: for a
// plaintext message, header and data themselves. An event whose key was destroyed is an
// error wrapping ErrShredded (and ErrUndecodable); one whose seal does not open (tampered,
// moved onto another event) wraps ErrUndecodable.
func (c Codec) Open(ctx context.Context, subject string, header nats.Header, data []byte) (nats.Header, []byte, error) {
	refText := header.Get(HeaderKey)
	if refText == "" {
		return header, data, nil
	}
	if c.Keys == nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUndecodable, ErrSealed)
	}
	ref, err := ParseKeyRef(refText)
	if err != nil {
		return nil, nil, err
	}
	tok, kind, err := ParseSubject(subject)
	if err != nil {
		return nil, nil, err
	}
	user, err := DecodeToken(tok)
	if err != nil || !Sealable(user, kind) {
		return nil, nil, fmt.Errorf("%w: a sealed event on subject of tenant %q and kind %s", ErrUndecodable, tok, kind)
	}
	key, err := c.Keys.OpenKey(ctx, user, ref)
	if errors.Is(err, ErrShredded) {
		return nil, nil, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open event: %w", err)
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, nil, err
	}
	if len(data) < aead.NonceSize() {
		return nil, nil, fmt.Errorf("%w: sealed data too short", ErrUndecodable)
	}
	frame, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], additional(tok, kind, header.Get("ce-id"), ref))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the seal does not open: %w", ErrUndecodable, err)
	}
	out := make(nats.Header, len(header)+len(SealedHeaders))
	for k, v := range header {
		if k != HeaderKey {
			out[k] = v
		}
	}
	for _, h := range SealedHeaders {
		n, w := binary.Uvarint(frame)
		if w <= 0 || uint64(len(frame)-w) < n {
			return nil, nil, fmt.Errorf("%w: sealed frame malformed", ErrUndecodable)
		}
		if v := string(frame[w : w+int(n)]); v != "" {
			out[h] = []string{v}
		}
		frame = frame[w+int(n):]
	}
	return out, frame, nil
}

// Decode opens a stored message (Open) and decodes it (Decode). A tombstone makes the
// Keyring forget the user's keys (Forgetter).
func (c Codec) Decode(ctx context.Context, subject string, header nats.Header, data []byte) (*Event, error) {
	h, d, err := c.Open(ctx, subject, header, data)
	if err != nil {
		return nil, err
	}
	ev, err := Decode(subject, h, d)
	if err == nil && ev.Kind == KindUserErased {
		if f, ok := c.Keys.(Forgetter); ok {
			f.Forget(ev.User)
		}
	}
	return ev, err
}

// DecodeStored is Decode for callers without a context, each key look-up bounded by a timeout
// of its own.
func (c Codec) DecodeStored(subject string, header nats.Header, data []byte) (*Event, error) {
	if header.Get(HeaderKey) == "" {
		return c.Decode(context.Background(), subject, header, data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	return c.Decode(ctx, subject, header, data)
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return cipher.NewGCM(block)
}

func additional(tok string, kind Kind, id string, ref KeyRef) []byte {
	return []byte("engram-seal-v1\x00" + tok + "\x00" + string(kind) + "\x00" + id + "\x00" + ref.String())
}
