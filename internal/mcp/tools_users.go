package mcp

import (
	"context"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
)

// UpsertUserIn is the input of memory_upsert_user.
type UpsertUserIn struct {
	UserArg
	Attributes      map[string]any `json:"attributes,omitempty" jsonschema:"the user's attributes, e.g. {\"role\": \"manager\"}: replace the stored ones wholesale; omitted or {} leaves them"`
	ClearAttributes bool           `json:"clear_attributes,omitempty" jsonschema:"empty the stored attributes"`
}

// UpsertUserOut is what memory_upsert_user answers.
type UpsertUserOut struct {
	UserID     string `json:"user_id"`
	Identifier string `json:"identifier"`
	Write
}

// EraseUserIn is the input of memory_erase_user.
type EraseUserIn struct {
	UserArg
	Confirm string `json:"confirm" jsonschema:"the user's identifier again, to confirm the erasure"`
	Reason  string `json:"reason,omitempty" jsonschema:"why (kept with the erasure's tombstone), e.g. the user's request of a date"`
}

// EraseUserOut is what memory_erase_user answers.
type EraseUserOut struct {
	Identifier string `json:"identifier"`
	Write
}

func addUserTools(r *registry, erasure bool) {
	add(r, &sdk.Tool{
		Name: "memory_upsert_user",
		Description: "Create the user, or update their attributes (e.g. {\"role\": \"manager\", \"team\": \"consulting\"}). Idempotent: " +
			"safe at every session start. attributes replace the stored ones wholesale; without them the stored ones stay; " +
			"clear_attributes empties them. Memory of a user needs no upsert first: their first write creates them.",
		Annotations: upserts,
	}, schemaFor[UpsertUserIn](), upsertUser)
	if !erasure {
		return
	}
	add(r, &sdk.Tool{
		Name: "memory_erase_user",
		Description: "Erase everything Engram holds about the user, for good: conversations, preferences, traces, and their events in the " +
			"log (a tombstone stays). Irreversible, and later writes for the user are refused until an administrator re-creates them. " +
			"Call it only when the user explicitly asks to be forgotten; confirm must repeat the user's identifier. Engram allows it " +
			"only to credentials with the admin scope.",
		Annotations: destroys,
	}, schemaFor[EraseUserIn](), eraseUser)
}

func upsertUser(ctx context.Context, c *call, in UpsertUserIn) (UpsertUserOut, error) {
	out := UpsertUserOut{Identifier: c.user}
	var opts []client.WriteOption
	if in.ClearAttributes {
		if len(in.Attributes) > 0 {
			return out, &ArgError{Arg: "clear_attributes", Reason: "give attributes or clear_attributes, not both"}
		}
		opts = append(opts, client.WithClearedAttributes())
	} else if len(in.Attributes) > 0 {
		opts = append(opts, client.WithAttributes(in.Attributes))
	}
	u, err := c.c.Users.UpsertUser(ctx, c.user, opts...)
	if err != nil {
		return out, toolError(err, identifierField)
	}
	out.UserID = u.ID
	out.Write, err = c.settle(ctx, u.Receipt)
	return out, err
}

func eraseUser(ctx context.Context, c *call, in EraseUserIn) (EraseUserOut, error) {
	out := EraseUserOut{Identifier: c.user}
	if in.Confirm != c.user || c.user == "" {
		return out, &ArgError{Arg: "confirm", Reason: "must repeat the identifier of the user to erase"}
	}
	var opts []client.WriteOption
	if in.Reason != "" {
		opts = append(opts, client.WithReason(in.Reason))
	}
	r, err := c.c.Users.EraseUser(ctx, c.user, opts...)
	if err != nil {
		return out, toolError(err, identifierField)
	}
	out.Write, err = c.settle(ctx, r)
	return out, err
}

// identifierField: the user commands name their user "identifier".
func identifierField(f string) string {
	if f == "identifier" {
		return "user_identifier"
	}
	return f
}
