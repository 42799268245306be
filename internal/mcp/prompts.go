package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// PromptName is the prompt that loads a user's memory at the start of a session (the
// library's memory-conversation).
const PromptName = "memory-conversation"

// promptItems is how many conversations, messages and traces the prompt loads.
const promptItems = 10

func addPrompts(s *sdk.Server, m *Memory) {
	args := []*sdk.PromptArgument{{Name: "session_id", Description: "the session this conversation is, to load its latest messages"}}
	if m.user == "" {
		args = append([]*sdk.PromptArgument{{Name: "user_identifier", Description: "the user you are talking with", Required: m.multiTenant}}, args...)
	}
	s.AddPrompt(&sdk.Prompt{
		Name:  PromptName,
		Title: "Start a memory-aware conversation",
		Description: "Loads what Engram remembers about the user (attributes, active preferences, latest conversations and messages of the " +
			"session, latest reasoning traces) into the conversation, with instructions for keeping the memory up to date.",
		Arguments: args,
	}, func(ctx context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		ctx, cancel := context.WithTimeout(ctx, m.callTimeout)
		defer cancel()
		a := req.Params.Arguments
		c, err := m.begin(req.Extra, a["user_identifier"])
		if err != nil {
			return nil, err
		}
		mem, err := loadContext(ctx, c, a["session_id"], promptItems)
		if err != nil {
			return nil, toolError(err, same)
		}
		return &sdk.GetPromptResult{
			Description: "What Engram remembers about the user, loaded at the start of the session",
			Messages:    []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: memoryText(c.user, a["session_id"], mem)}}},
		}, nil
	})
}

// memoryText words the user's memory for the model.
func memoryText(user, session string, mem ContextOut) string {
	var b strings.Builder
	who := user
	if who == "" {
		who = "the shared tenant (no user)"
	}
	fmt.Fprintf(&b, "Start a memory-aware conversation with %s", who)
	if session != "" {
		fmt.Fprintf(&b, " in session %q", session)
	}
	b.WriteString(". This is what Engram remembers, loaded just now.\n\n")

	if mem.User != nil && len(mem.User.Attributes) > 0 {
		attrs, _ := json.Marshal(mem.User.Attributes)
		fmt.Fprintf(&b, "User attributes: %s\n\n", attrs)
	}
	if len(mem.Preferences) == 0 {
		b.WriteString("Active preferences: none recorded.\n")
	} else {
		b.WriteString("Active preferences:\n")
		for _, p := range mem.Preferences {
			fmt.Fprintf(&b, "- [%s] %s", p.Category, p.Text)
			if p.Context != nil && *p.Context != "" {
				fmt.Fprintf(&b, " (context: %s)", *p.Context)
			}
			if len(p.AppliesTo) > 0 {
				var on []string
				for _, e := range p.AppliesTo {
					if e.Type != "" {
						on = append(on, e.Name+" ("+e.Type+")")
					} else {
						on = append(on, e.Name)
					}
				}
				fmt.Fprintf(&b, "; applies to %s", strings.Join(on, ", "))
			}
			fmt.Fprintf(&b, " [id %s]\n", p.ID)
		}
	}
	if len(mem.Conversations) > 0 {
		b.WriteString("\nRecent conversations (latest first):\n")
		for _, c := range mem.Conversations {
			title := ""
			if c.Title != nil {
				title = " " + *c.Title
			}
			fmt.Fprintf(&b, "- session %q%s\n", c.SessionID, title)
		}
	}
	if session != "" {
		if len(mem.Messages) == 0 {
			b.WriteString("\nNo messages stored for this session yet.\n")
		} else {
			b.WriteString("\nLatest messages of this session (oldest first):\n")
			for _, msg := range mem.Messages {
				fmt.Fprintf(&b, "- %s: %s\n", msg.Role, msg.Content)
			}
		}
	}
	if len(mem.Traces) > 0 {
		b.WriteString("\nRecent reasoning traces:\n")
		for _, t := range mem.Traces {
			fmt.Fprintf(&b, "- %q (%d steps)", t.Task, t.StepCount)
			if t.Outcome != nil {
				fmt.Fprintf(&b, ": %s", *t.Outcome)
			}
			fmt.Fprintf(&b, " [trace %s]\n", t.ID)
		}
	}
	b.WriteString("\nThroughout the conversation:\n" +
		"- store the user's messages worth remembering, and your answers, with memory_add_messages" + sessionHint(session) + ";\n" +
		"- record preferences the user states with memory_add_preference (applies_to for what they concern); when they change their mind, add the new one and call memory_supersede_preference;\n" +
		"- recall with memory_get_preferences, memory_get_conversation and memory_search when the user refers to the past (mode vector searches by meaning, when the words may differ);\n" +
		"- before a longer task, look up how similar ones went with memory_get_similar_traces.\n")
	return b.String()
}

func sessionHint(session string) string {
	if session == "" {
		return ""
	}
	return fmt.Sprintf(" (session_id %q)", session)
}
