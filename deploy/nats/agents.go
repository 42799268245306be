package natsdeploy

import (
	"fmt"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/engram-memory/engram/internal/events"
)

// AgentPermissions is what one tenant's agent may do on NATS (AGENTS account, accounts.conf):
// publish its tenant's events and receive the acknowledgements on its own inbox prefix.
type AgentPermissions struct {
	Identifier string // the user identifier
	Token      string // its tenant token
	// Publish is mem.<token>.<kind> for each of AgentKinds: literal subjects, so neither
	// another tenant's, nor user_erased or user_recreated (erasure and re-creation need the
	// admin scope, over HTTP), nor the
	// literal wildcard tokens mem.<token>.* and mem.<token>.> (which a pattern allow such as
	// mem.<token>.* would let through, and the stream would store unpartitioned).
	Publish     []string
	Subscribe   string // <InboxPrefix>.>
	InboxPrefix string // the agent's client must use it (nats.go: nats.CustomInboxPrefix)
}

// AgentKinds are the kinds of event an agent may publish over NATS: the catalogue without
// user_erased and user_recreated. An agent that could re-create its erased user would undo
// the erasure's refusal of its own writes. accounts.conf exports (and AGENTS imports) exactly
// their subjects.
func AgentKinds() []events.Kind {
	out := make([]events.Kind, 0, len(events.Kinds))
	for _, k := range events.Kinds {
		if k != events.KindUserErased && k != events.KindUserRecreated {
			out = append(out, k)
		}
	}
	return out
}

// AgentInboxPrefix is the inbox prefix of a tenant's agent: _INBOX_<token>. A private prefix
// keeps an agent from subscribing to the acknowledgements of other tenants' agents.
func AgentInboxPrefix(token string) string { return "_INBOX_" + token }

// Agent returns the permissions of the agent of a user identifier.
func Agent(identifier string) (AgentPermissions, error) {
	tok, err := events.EncodeToken(identifier)
	if err != nil {
		return AgentPermissions{}, fmt.Errorf("agent of %q: %w", identifier, err)
	}
	inbox := AgentInboxPrefix(tok)
	var pub []string
	for _, k := range AgentKinds() {
		pub = append(pub, events.SubjectRoot+"."+tok+"."+string(k))
	}
	return AgentPermissions{
		Identifier:  identifier,
		Token:       tok,
		Publish:     pub,
		Subscribe:   inbox + ".>",
		InboxPrefix: inbox,
	}, nil
}

// AgentUserConf returns the entry of the AGENTS account's users list (agents.conf) for the
// agent of identifier, authenticated by the public user nkey (U...). The secret seed never
// appears in the configuration.
func AgentUserConf(identifier, publicNKey string) (string, error) {
	p, err := Agent(identifier)
	if err != nil {
		return "", err
	}
	if !nkeys.IsValidPublicUserKey(publicNKey) {
		return "", fmt.Errorf("agent of %q: %q is not a public user nkey (U...)", identifier, publicNKey)
	}
	var b strings.Builder
	// The identifier has no control characters (EncodeToken validated it), so it cannot end
	// the comment line; %q escapes anything else.
	fmt.Fprintf(&b, "  # agent of %q (tenant token %s); client inbox prefix %s\n", identifier, p.Token, p.InboxPrefix)
	fmt.Fprintf(&b, "  {\n")
	fmt.Fprintf(&b, "    nkey: %s\n", publicNKey)
	fmt.Fprintf(&b, "    permissions: {\n")
	fmt.Fprintf(&b, "      publish: { allow: [\n")
	for i, subj := range p.Publish {
		sep := ","
		if i == len(p.Publish)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "        %q%s\n", subj, sep)
	}
	fmt.Fprintf(&b, "      ] }\n")
	fmt.Fprintf(&b, "      subscribe: { allow: [%q] }\n", p.Subscribe)
	fmt.Fprintf(&b, "    }\n")
	fmt.Fprintf(&b, "  }\n")
	return b.String(), nil
}
