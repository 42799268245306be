package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
)

// Resources: what a host may read into the model's context rather than call for. Each URI
// names its user as one percent-encoded path segment (sara@omg.com is sara%40omg.com).
const (
	PreferencesTemplate  = "engram://users/{user_identifier}/preferences"
	ConversationTemplate = "engram://users/{user_identifier}/conversations/{session_id}"
	// conversationMessages is how many of a conversation's latest messages its resource holds.
	conversationMessages = 100
)

// PreferencesURI is the resource of a user's active preferences.
func PreferencesURI(user string) string {
	return "engram://users/" + escape(user) + "/preferences"
}

// ConversationURI is the resource of a user's conversation of a session.
func ConversationURI(user, session string) string {
	return "engram://users/" + escape(user) + "/conversations/" + escape(session)
}

// escape percent-encodes every byte but RFC 3986's unreserved characters, as a URI
// template's simple {variable} expansion does: sara@omg.com is sara%40omg.com.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func addResources(s *sdk.Server, m *Memory) {
	prefs := func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		uri := req.Params.URI
		user, rest, err := parseResource(uri)
		if err != nil || len(rest) != 1 || rest[0] != "preferences" {
			return nil, sdk.ResourceNotFoundError(uri)
		}
		return readResource(ctx, m, req.Extra, uri, user, func(ctx context.Context, c *call) (any, error) {
			ps, err := c.c.LongTerm.GetPreferencesFor(ctx, c.user, c.readOpts()...)
			return PreferencesOut{Preferences: fromPreferences(ps)}, err
		})
	}
	conversation := func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		uri := req.Params.URI
		user, rest, err := parseResource(uri)
		if err != nil || len(rest) != 2 || rest[0] != "conversations" || rest[1] == "" {
			return nil, sdk.ResourceNotFoundError(uri)
		}
		session := rest[1]
		return readResource(ctx, m, req.Extra, uri, user, func(ctx context.Context, c *call) (any, error) {
			page, err := c.c.ShortTerm.GetMessages(ctx, c.user, session, c.readOpts(client.Limit(conversationMessages), client.NewestFirst())...)
			if err != nil {
				return nil, err
			}
			ms := fromMessages(page.Messages)
			slices.Reverse(ms)
			return ConversationOut{SessionID: session, Messages: ms}, nil
		})
	}
	s.AddResourceTemplate(&sdk.ResourceTemplate{
		Name:        "preferences",
		Title:       "A user's active preferences",
		URITemplate: PreferencesTemplate,
		Description: "Every active (not superseded) preference of the user, as memory_get_preferences answers it by default (JSON).",
		MIMEType:    "application/json",
	}, prefs)
	s.AddResourceTemplate(&sdk.ResourceTemplate{
		Name:        "conversation",
		Title:       "A conversation",
		URITemplate: ConversationTemplate,
		Description: fmt.Sprintf("The latest %d messages of the user's conversation of a session, oldest first (JSON).", conversationMessages),
		MIMEType:    "application/json",
	}, conversation)
	if m.user != "" {
		// One user per process: list that user's preferences as a concrete resource.
		s.AddResource(&sdk.Resource{
			Name:        "my-preferences",
			Title:       "The user's active preferences",
			URI:         PreferencesURI(m.user),
			Description: "Every active (not superseded) preference of the configured user (JSON).",
			MIMEType:    "application/json",
		}, prefs)
	}
}

// parseResource splits engram://users/<user>/<rest...> into the decoded user and the rest.
func parseResource(uri string) (string, []string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "engram" || u.Host != "users" {
		return "", nil, fmt.Errorf("not an engram user resource: %q", uri)
	}
	segs := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	for i, s := range segs {
		if segs[i], err = url.PathUnescape(s); err != nil {
			return "", nil, err
		}
	}
	if len(segs) < 2 || segs[0] == "" {
		return "", nil, fmt.Errorf("no user in %q", uri)
	}
	return segs[0], segs[1:], nil
}

// readResource reads a resource about user with the caller's credential, as JSON. The
// resource's user is checked like a tool's user_identifier argument.
func readResource(ctx context.Context, m *Memory, extra *sdk.RequestExtra, uri, user string, read func(context.Context, *call) (any, error)) (*sdk.ReadResourceResult, error) {
	ctx, cancel := context.WithTimeout(ctx, m.callTimeout)
	defer cancel()
	c, err := m.begin(extra, user)
	if err != nil {
		return nil, err
	}
	v, err := read(ctx, c)
	if err != nil {
		return nil, toolError(err, same)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(b)}}}, nil
}
