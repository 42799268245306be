package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/engram-memory/engram/client"
)

// Searching one user's memory by its words: the seed's search_messages, search_preferences,
// search_entities and search_steps, by full text. Another user's identical text is never
// found.
func ExampleShortTerm_SearchMessages() {
	ctx := context.Background()
	c, err := client.New(client.WithHTTP("http://127.0.0.1:8080", "http://127.0.0.1:8081"), client.WithMultiTenant(true))
	if err != nil {
		log.Fatal(err)
	}
	// What did Sara say about healthcare in this session?
	msgs, err := c.ShortTerm.SearchMessages(ctx, "sara@omg.com",
		client.SearchQuery{Text: "healthcare team", SessionID: "sara-2026-05-01", Limit: 5})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Printf("%.2f %s: %s\n", m.Score, m.Role, m.Content)
	}
	// Her preferences about consultants that mention seniority, superseded ones too.
	prefs, _ := c.LongTerm.SearchPreferences(ctx, "sara@omg.com", client.SearchQuery{Text: "senior", Category: "consultants"})
	for _, p := range prefs {
		fmt.Println(p.Preference, p.SupersededBy != nil)
	}
	// Steps of her successful traces that thought about healthcare, with their tasks.
	steps, _ := c.Reasoning.SearchSteps(ctx, "sara@omg.com", client.SearchQuery{Text: "healthcare", SuccessOnly: true})
	for _, s := range steps {
		fmt.Println(s.TraceID, s.Task, s.Score)
	}
}
