package mcp

import (
	"context"
	"fmt"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
)

// EntityRefIn names an entity of the user's: by id, or by name and optionally type.
type EntityRefIn struct {
	ID   string `json:"id,omitempty" jsonschema:"the entity's id (as a preference's applies_to answers it)"`
	Name string `json:"name,omitempty" jsonschema:"the entity's name, e.g. Healthcare (case-sensitive)"`
	Type string `json:"type,omitempty" jsonschema:"the entity's type, e.g. Industry (case-sensitive)"`
}

// AddPreferenceIn is the input of memory_add_preference.
type AddPreferenceIn struct {
	UserArg
	Category   string         `json:"category" jsonschema:"what the preference is about, e.g. consultants, food, communication_style"`
	Preference string         `json:"preference" jsonschema:"the preference itself, e.g. Senior on healthcare clients"`
	Context    string         `json:"context,omitempty" jsonschema:"when or why the user expressed it"`
	Confidence *float64       `json:"confidence,omitempty" jsonschema:"how sure you are, 0 to 1 (default 1)"`
	ValidFrom  string         `json:"valid_from,omitempty" jsonschema:"when it started to hold, RFC 3339 (default: now)"`
	Metadata   map[string]any `json:"metadata,omitempty" jsonschema:"a JSON object kept with the preference"`
	AppliesTo  []EntityRefIn  `json:"applies_to,omitempty" jsonschema:"the entities it concerns, each by name and type (or id); memory_get_preferences can filter by them"`
}

// AddPreferenceOut is what memory_add_preference answers.
type AddPreferenceOut struct {
	PreferenceID string   `json:"preference_id" jsonschema:"the new preference's id (for memory_supersede_preference)"`
	Category     string   `json:"category"`
	Preference   string   `json:"preference"`
	AppliesTo    []Entity `json:"applies_to" jsonschema:"the entities it applies to, with their ids"`
	Write
}

// GetPreferencesIn is the input of memory_get_preferences.
type GetPreferencesIn struct {
	UserArg
	ActiveOnly *bool        `json:"active_only,omitempty" jsonschema:"only preferences not superseded (default true)"`
	AppliesTo  *EntityRefIn `json:"applies_to,omitempty" jsonschema:"only preferences applying to this entity: by id, else by name and type, else by name"`
	AsOf       string       `json:"as_of,omitempty" jsonschema:"valid time, RFC 3339: only preferences that held at this instant (pass active_only=false to include ones superseded since)"`
	KnownAt    string       `json:"known_at,omitempty" jsonschema:"transaction time, RFC 3339: answer as Engram knew it at this instant"`
}

// PreferencesOut is what the preference reads answer.
type PreferencesOut struct {
	Preferences []Preference `json:"preferences"`
}

// SupersedeIn is the input of memory_supersede_preference.
type SupersedeIn struct {
	UserArg
	OldID      string `json:"old_id" jsonschema:"the id of the preference the user no longer holds"`
	NewID      string `json:"new_id" jsonschema:"the id of the preference that replaces it (add it first with memory_add_preference)"`
	ValidUntil string `json:"valid_until,omitempty" jsonschema:"when the old one stopped holding, RFC 3339 (default: now)"`
}

// SupersedeOut is what memory_supersede_preference answers.
type SupersedeOut struct {
	OldID string `json:"old_id"`
	NewID string `json:"new_id"`
	Write
}

// HistoryIn is the input of memory_get_preference_history.
type HistoryIn struct {
	UserArg
	KnownAt string `json:"known_at,omitempty" jsonschema:"transaction time, RFC 3339: the history as Engram knew it at this instant"`
}

func addPreferenceTools(r *registry) {
	refs := func(path ...string) func(*jsonschema.Schema) {
		return func(s *jsonschema.Schema) {
			length(append(path, "id"), 36, 36)(s)
			length(append(path, "name"), 1, 256)(s)
			length(append(path, "type"), 1, 256)(s)
		}
	}
	add(r, &sdk.Tool{
		Name: "memory_add_preference",
		Description: "Record a preference the user expressed, e.g. category \"consultants\", preference \"Senior on healthcare clients\". " +
			"Tie it to what it concerns with applies_to (entities by name and type, e.g. {\"name\": \"Healthcare\", \"type\": \"Industry\"}) " +
			"so that memory_get_preferences can filter by them. When the user changes their mind, add the new preference and then call " +
			"memory_supersede_preference(old_id, new_id) instead of leaving both active. Returns the new preference's id.",
		Annotations: writes,
	}, schemaFor[AddPreferenceIn](
		length([]string{"category"}, 1, 256),
		length([]string{"preference"}, 1, 65536),
		bounds([]string{"confidence"}, 0, 1),
		items([]string{"applies_to"}, 0, 64),
		refs("applies_to", "[]"),
		dateTime("valid_from"),
	), addPreference)

	add(r, &sdk.Tool{
		Name: "memory_get_preferences",
		Description: "Get the user's preferences (the library's get_preferences_for): by default the active ones, superseded ones left out. " +
			"Filter by applies_to (an entity by id, or by name and type); look back with as_of (what held at an instant; add " +
			"active_only=false to include preferences superseded since) or known_at (what Engram had recorded by an instant). Returns " +
			"each preference with its category, text, validity (valid_from, valid_until), the entities it applies to and its supersede links.",
		Annotations: readOnly,
	}, schemaFor[GetPreferencesIn](refs("applies_to"), dateTime("as_of", "known_at")), getPreferences)

	add(r, &sdk.Tool{
		Name: "memory_supersede_preference",
		Description: "Record that the user changed their mind: preference old_id is replaced by new_id (add the new one first with " +
			"memory_add_preference). The old one stops being active and stops holding at valid_until (default now); history and as_of " +
			"reads keep it. Both must be this user's preferences: an unknown or foreign id fails the call and nothing is applied.",
		Annotations: writes,
	}, schemaFor[SupersedeIn](length([]string{"old_id"}, 36, 36), length([]string{"new_id"}, 36, 36), dateTime("valid_until")), supersede)

	add(r, &sdk.Tool{
		Name: "memory_get_preference_history",
		Description: "Every version of the user's preferences, superseded ones included, in the order Engram recorded them, with what " +
			"replaced what and when: use it to explain how a preference changed. known_at answers as Engram knew it at that instant.",
		Annotations: readOnly,
	}, schemaFor[HistoryIn](dateTime("known_at")), preferenceHistory)
}

func addPreference(ctx context.Context, c *call, in AddPreferenceIn) (AddPreferenceOut, error) {
	out := AddPreferenceOut{Category: in.Category, Preference: in.Preference, AppliesTo: []Entity{}}
	opts := []client.WriteOption{client.WithMetadata(in.Metadata)}
	if in.Context != "" {
		opts = append(opts, client.WithContext(in.Context))
	}
	if in.Confidence != nil {
		opts = append(opts, client.WithConfidence(*in.Confidence))
	}
	from, err := parseTime("valid_from", in.ValidFrom)
	if err != nil {
		return out, err
	}
	if from != nil {
		opts = append(opts, client.ValidFrom(*from))
	}
	for i, ref := range in.AppliesTo {
		if ref.ID == "" && ref.Name == "" {
			return out, &ArgError{Arg: fmt.Sprintf("applies_to[%d]", i), Reason: "name the entity by name (and type) or by id"}
		}
		opts = append(opts, client.AppliesTo(client.EntityRef(ref)))
	}
	p, err := c.c.LongTerm.AddPreference(ctx, in.Category, in.Preference, c.writeOpts(opts...)...)
	if err != nil {
		return out, err
	}
	out.PreferenceID = p.ID
	for _, ref := range in.AppliesTo {
		e := Entity{ID: ref.ID, Name: ref.Name, Type: ref.Type}
		if e.ID == "" {
			e.ID = events.EntityID(c.user, ref.Name, ref.Type)
		}
		out.AppliesTo = append(out.AppliesTo, e)
	}
	out.Write, err = c.settle(ctx, p.Receipt)
	return out, err
}

func getPreferences(ctx context.Context, c *call, in GetPreferencesIn) (PreferencesOut, error) {
	out := PreferencesOut{Preferences: []Preference{}}
	var opts []client.ReadOption
	if in.ActiveOnly != nil {
		opts = append(opts, client.ActiveOnly(*in.ActiveOnly))
	}
	if a := in.AppliesTo; a != nil {
		switch {
		case a.ID != "" && (a.Name != "" || a.Type != ""):
			return out, &ArgError{Arg: "applies_to", Reason: "give the entity's id, or its name (and type), not both"}
		case a.ID == "" && a.Name == "":
			return out, &ArgError{Arg: "applies_to", Reason: "give the entity's id or its name"}
		}
		opts = append(opts, client.AppliesToEntity(client.EntityRef(*a)))
	}
	asOf, err := parseTime("as_of", in.AsOf)
	if err != nil {
		return out, err
	}
	if asOf != nil {
		opts = append(opts, client.AsOf(*asOf))
	}
	knownAt, err := parseTime("known_at", in.KnownAt)
	if err != nil {
		return out, err
	}
	if knownAt != nil {
		opts = append(opts, client.KnownAt(*knownAt))
	}
	ps, err := c.c.LongTerm.GetPreferencesFor(ctx, c.user, c.readOpts(opts...)...)
	if err != nil {
		return out, toolError(err, preferenceParam)
	}
	out.Preferences = fromPreferences(ps)
	return out, nil
}

// preferenceParam maps the query service's parameters onto memory_get_preferences's
// arguments.
func preferenceParam(f string) string {
	switch f {
	case "applies_to_id":
		return "applies_to.id"
	case "applies_to_name":
		return "applies_to.name"
	case "applies_to_type":
		return "applies_to.type"
	}
	return f
}

func supersede(ctx context.Context, c *call, in SupersedeIn) (SupersedeOut, error) {
	out := SupersedeOut{OldID: in.OldID, NewID: in.NewID}
	until, err := parseTime("valid_until", in.ValidUntil)
	if err != nil {
		return out, err
	}
	var opts []client.WriteOption
	if until != nil {
		opts = append(opts, client.ValidUntil(*until))
	}
	r, err := c.c.LongTerm.SupersedePreference(ctx, in.OldID, in.NewID, c.writeOpts(opts...)...)
	if err != nil {
		return out, err
	}
	out.Write, err = c.settle(ctx, r)
	return out, err
}

func preferenceHistory(ctx context.Context, c *call, in HistoryIn) (PreferencesOut, error) {
	out := PreferencesOut{Preferences: []Preference{}}
	knownAt, err := parseTime("known_at", in.KnownAt)
	if err != nil {
		return out, err
	}
	var opts []client.ReadOption
	if knownAt != nil {
		opts = append(opts, client.KnownAt(*knownAt))
	}
	ps, err := c.c.LongTerm.PreferenceHistory(ctx, c.user, c.readOpts(opts...)...)
	if err != nil {
		return out, err
	}
	out.Preferences = fromPreferences(ps)
	return out, nil
}
