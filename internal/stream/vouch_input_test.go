package stream_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/stream"
)

// referenceVouch is the vouch's construction as first shipped (docs/security.md): an
// HMAC-SHA256, each part followed by a zero byte, over "engram-vouch/1", the subject's tenant
// and kind, every ce- header as lower-cased name=value sorted by name, and the hex SHA-256
// of the data. Written out here independently of the code, with a fresh HMAC per vouch.
func referenceVouch(secret []byte, subject string, h nats.Header, data []byte) string {
	parts := strings.Split(subject, ".")
	ce := map[string]string{}
	for name, vs := range h {
		if ln := strings.ToLower(name); strings.HasPrefix(ln, "ce-") {
			ce[ln] = vs[0]
		}
	}
	names := make([]string, 0, len(ce))
	for n := range ce {
		names = append(names, n)
	}
	slices.Sort(names)
	sum := sha256.Sum256(data)
	in := []string{"engram-vouch/1", parts[1], parts[2]}
	for _, n := range names {
		in = append(in, n+"="+ce[n])
	}
	in = append(in, hex.EncodeToString(sum[:]))
	m := hmac.New(sha256.New, secret)
	for _, p := range in {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	kid := sha256.Sum256(secret)
	return "v1." + hex.EncodeToString(kid[:4]) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestVouchInputIsStable: the vouch of the pooled HMAC and the appended input is, byte for
// byte, the vouch of the first construction, so every vouch stored before still verifies;
// the same from many goroutines at once (the pool), and the keyed Nats-Msg-Id too.
func TestVouchInputIsStable(t *testing.T) {
	t.Parallel()
	secret := []byte(strings.Repeat("k", 40))
	k, err := stream.NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		subject string
		h       nats.Header
		data    []byte
	}{
		{"mem.sara.preference_added", nats.Header{"ce-id": {"01"}, "ce-source": {"/engram"}, "Nats-Msg-Id": {"x"}}, []byte(`{"a":1}`)},
		{"mem.sara.preference_added.3", nats.Header{"Ce-Actor": {"agent-7"}, "ce-id": {"02"}, "ce-type": {"t"}, "Engram-Key": {"r"}}, nil},
		{"mem.liam.message_added", nats.Header{}, []byte("x")},
		{"mem.liam.message_added", nats.Header{"CE-TIME": {"2026-12-03T00:00:00Z"}, "ce-specversion": {"1.0"}, "ce-dataschema": {"s"},
			"ce-subject": {"u"}, "ce-datacontenttype": {"application/json"}, "ce-engramtenant": {"liam"}}, []byte(strings.Repeat("é", 500))},
	}
	for _, c := range cases {
		want := referenceVouch(secret, c.subject, c.h, c.data)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 50 {
					got, err := k.Vouch(c.subject, c.h, c.data)
					if err != nil || got != want {
						t.Errorf("Vouch(%s, %v) = %q, %v; the first construction gives %q", c.subject, c.h, got, err, want)
						return
					}
				}
			})
		}
		wg.Wait()
		h := nats.Header{}
		for n, vs := range c.h {
			h[n] = vs
		}
		h.Set(stream.VouchHeader, want)
		if !(stream.Keys{k}).Verify(c.subject, h, c.data) {
			t.Errorf("a vouch of the first construction does not verify: %s %v", c.subject, c.h)
		}
	}
	m := hmac.New(sha256.New, secret)
	for _, p := range []string{"engram-msg-id/1", "sara", "0195f4c2-0000-7000-8000-000000000000"} {
		m.Write(append([]byte(p), 0))
	}
	kid := sha256.Sum256(secret)
	want := "sara:k" + hex.EncodeToString(kid[:4]) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
	if got := k.MsgID("sara", "0195f4c2-0000-7000-8000-000000000000"); got != want {
		t.Errorf("MsgID = %q, the first construction gives %q", got, want)
	}
	for _, bad := range []nats.Header{{"ce-id": {"1", "2"}}, {"ce-id": {"1"}, "Ce-Id": {"2"}}} {
		if _, err := k.Vouch("mem.sara.preference_added", bad, nil); err == nil {
			t.Errorf("Vouch with header %v: no error; a repeated ce- header cannot be vouched for", bad)
		}
	}
	for _, subj := range []string{"mem.sara", "mem.a.b.c.d", "other.sara.preference_added"} {
		if _, err := k.Vouch(subj, nats.Header{}, nil); err == nil {
			t.Errorf("Vouch on subject %q: no error", subj)
		}
	}
}
