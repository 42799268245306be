package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/engram-memory/engram/client"
)

// The seed page, line by line, against a stack started with `make run`. (Examples without an
// Output comment are compiled, not run, by go test; test/e2e runs the same scenario against
// real servers and checks every answer.)
func Example() {
	ctx := context.Background()
	c, err := client.New(
		client.WithHTTP("http://127.0.0.1:8080", "http://127.0.0.1:8081"),
		client.WithMultiTenant(true), // MemorySettings.memory.multi_tenant = True
	)
	if err != nil {
		log.Fatal(err)
	}
	_, _ = c.Users.UpsertUser(ctx, "sara@omg.com", client.WithAttributes(map[string]any{"role": "manager"}))
	_, _ = c.Users.UpsertUser(ctx, "liam@omg.com", client.WithAttributes(map[string]any{"role": "consultant"}))

	// Sara's conversation, scoped via user_identifier=
	_, _ = c.ShortTerm.AddMessage(ctx, "sara-2026-05-01", "user", "Find me a healthcare team",
		client.ForUser("sara@omg.com"))
	// Liam's conversation, scoped separately
	_, _ = c.ShortTerm.AddMessage(ctx, "liam-2026-05-01", "user", "Find me a fintech team",
		client.ForUser("liam@omg.com"))

	// Sara's preference, attached to her :User node
	_, _ = c.LongTerm.AddPreference(ctx, "consultants", "Senior on healthcare clients",
		client.ForUser("sara@omg.com"),
		client.AppliesTo(client.EntityRef{Name: "Healthcare", Type: "Industry"}))

	// Read back: one call (waits until Sara's writes are projected)
	prefs, err := c.LongTerm.GetPreferencesFor(ctx, "sara@omg.com")
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range prefs {
		fmt.Println(p.Category, p.Preference)
	}
}

// Reading back with get_preferences_for's options.
func ExampleLongTerm_GetPreferencesFor() {
	ctx := context.Background()
	c, _ := client.New(client.WithHTTP("http://127.0.0.1:8080", "http://127.0.0.1:8081"))

	// Only preferences scoped to Healthcare
	_, _ = c.LongTerm.GetPreferencesFor(ctx, "sara@omg.com",
		client.AppliesToEntity(client.EntityRef{Name: "Healthcare", Type: "Industry"}))
	// Include superseded preferences (history)
	_, _ = c.LongTerm.GetPreferencesFor(ctx, "sara@omg.com", client.ActiveOnly(false))
	// Time travel: what did Sara prefer a day ago?
	_, _ = c.LongTerm.GetPreferencesFor(ctx, "sara@omg.com",
		client.AsOf(time.Now().Add(-24*time.Hour)), client.ActiveOnly(false))
	// Bi-temporal: what did Engram know a day ago?
	_, _ = c.LongTerm.GetPreferencesFor(ctx, "sara@omg.com", client.KnownAt(time.Now().Add(-24*time.Hour)))
}

// Superseding a preference: the active read then returns only the new one.
func ExampleLongTerm_SupersedePreference() {
	ctx := context.Background()
	c, _ := client.New(client.WithHTTP("http://127.0.0.1:8080", "http://127.0.0.1:8081"), client.WithMultiTenant(true))
	old, _ := c.LongTerm.AddPreference(ctx, "consultants", "Junior", client.ForUser("sara@omg.com"))
	replacement, _ := c.LongTerm.AddPreference(ctx, "consultants", "Senior", client.ForUser("sara@omg.com"))
	// As in the seed, no user is needed: the client remembers who owns old.
	_, _ = c.LongTerm.SupersedePreference(ctx, old.ID, replacement.ID)
	active, _ := c.LongTerm.GetPreferencesFor(ctx, "sara@omg.com")
	fmt.Println(len(active))
}

// Reasoning traces, scoped per user.
func ExampleReasoning_StartTrace() {
	ctx := context.Background()
	c, _ := client.New(client.WithHTTP("http://127.0.0.1:8080", "http://127.0.0.1:8081"), client.WithMultiTenant(true))
	trace, _ := c.Reasoning.StartTrace(ctx, "sara-2026-05-01", "consultant search", client.ForUser("sara@omg.com"))
	step, _ := c.Reasoning.AddStep(ctx, trace.ID, client.Thought("find senior healthcare consultants"), client.Action("search"))
	_, _ = c.Reasoning.RecordToolCall(ctx, trace.ID, step.ID, "consultant_search",
		client.WithArguments(map[string]any{"industry": "Healthcare"}), client.WithDuration(40*time.Millisecond))
	_, _ = c.Reasoning.CompleteTrace(ctx, trace.ID, client.WithOutcome("3 candidates"), client.WithSuccess(true))
}

// Learning that the projector refused a write the log acknowledged: a supersede of a
// preference that does not exist is stored (202), then dead-lettered.
func ExampleClient_WaitApplied() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _ := client.New(client.WithHTTP("http://127.0.0.1:8080", "http://127.0.0.1:8081"), client.WithMultiTenant(true))

	r, err := c.LongTerm.SupersedePreference(ctx, "01a219a1-ea54-73ca-b06f-f6e36debf76a", "01a219a1-ea55-7d23-a6de-97f47c3356ba",
		client.ForUser("sara@omg.com"))
	if err != nil {
		log.Fatal(err) // refused at once: invalid, unauthorized, or the log unavailable
	}
	var rejected *client.RejectedError
	switch _, err := c.WaitApplied(ctx, r); {
	case errors.As(err, &rejected):
		fmt.Println("refused:", rejected.Reason, rejected.Message) // e.g. missing_reference
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("applied")
	}
}

// A user's tool statistics come from that user's calls only; an operator with the admin scope
// for every user reads the global counters and lists the users.
func ExampleReasoning_GetToolStats() {
	ctx := context.Background()
	c, err := client.New(client.WithHTTP("http://127.0.0.1:8080", "http://127.0.0.1:8081"), client.WithMultiTenant(true))
	if err != nil {
		log.Fatal(err)
	}
	mine, err := c.Reasoning.GetToolStats(ctx, "sara@omg.com", client.ForTool("search_consultants"))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range mine {
		fmt.Printf("%s: %d calls, %.0f%% successful\n", s.Name, s.TotalCalls, 100*s.SuccessRate)
	}
	all, _ := c.Reasoning.GetGlobalToolStats(ctx, client.Limit(10))
	fmt.Println(len(all), "tools across tenants")
	page := &client.UserPage{}
	for {
		if page, err = c.Users.ListUsers(ctx, client.Limit(100), client.After(page.NextCursor)); err != nil {
			log.Fatal(err)
		}
		for _, u := range page.Users {
			fmt.Println(u.Identifier)
		}
		if page.NextCursor == "" {
			break
		}
	}
}
