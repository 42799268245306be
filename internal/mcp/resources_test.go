package mcp

import (
	"testing"

	"github.com/engram-memory/engram/internal/events"
)

// FuzzResourceURI: a resource URI comes from the client. Any string parses or is refused
// without a panic, and the URI of every valid user and session parses back to them.
func FuzzResourceURI(f *testing.F) {
	for _, s := range []string{"sara@omg.com", "a/b", "zoë", "日本", "x%41", "a b", "..", "~", "_shared"} {
		f.Add(s, "sara-2026-05-01")
	}
	f.Add("engram://users/sara%40omg.com/preferences", "")
	f.Add("engram://users//preferences", "%zz")
	f.Fuzz(func(t *testing.T, user, session string) {
		_, _, _ = parseResource(user)
		_, _, _ = parseResource(session)
		if events.ValidateIdentifier(user) != nil || events.ValidateIdentifier(session) != nil {
			return
		}
		u, rest, err := parseResource(PreferencesURI(user))
		if err != nil || u != user || len(rest) != 1 || rest[0] != "preferences" {
			t.Fatalf("preferences of %q: %q %q %v", user, u, rest, err)
		}
		u, rest, err = parseResource(ConversationURI(user, session))
		if err != nil || u != user || len(rest) != 2 || rest[0] != "conversations" || rest[1] != session {
			t.Fatalf("conversation %q of %q: %q %q %v", session, user, u, rest, err)
		}
	})
}
