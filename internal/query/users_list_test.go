package query

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestListUsersPaging pages through every user with several page sizes and finds this test's
// users once each, in the same order as in one page: newest created first, then by id
// descending. Two of them share an instant, one stored with a zone id (09:00Z[UTC], as the Go
// driver sends time.UTC) and one with an offset (09:00Z), which Neo4j orders apart; two more
// share their created_at exactly. Their created_at lie far in the future, so they come
// before the users of other tests.
func TestListUsersPaging(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, err := NewReader(d, "", WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(9000, 1, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(time.Now().UnixNano() % int64(time.Hour)))
	mine := map[string]bool{}
	for i, at := range []struct {
		at  time.Time
		loc *time.Location
	}{
		{base.Add(3 * time.Second), offsetZ},
		{base.Add(2 * time.Second), offsetZ},
		{base.Add(2 * time.Second), offsetZ},
		{base.Add(time.Second), offsetZ},
		{base.Add(time.Second), time.UTC},
		{base, offsetZ},
	} {
		f := newFixture(t, d, "list"+strconv.Itoa(i))
		f.loc = at.loc
		f.user(map[string]any{"n": i}, at.at)
		mine[f.id] = true
	}
	ctx := t.Context()
	ours := func(us []User) []User {
		return slices.DeleteFunc(slices.Clone(us), func(u User) bool { return !mine[u.Identifier] })
	}
	one, err := r.ListUsers(ctx, UserQuery{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	want := ours(one.Users)
	if len(want) != len(mine) {
		t.Fatalf("one page of 50 has %d of the %d users", len(want), len(mine))
	}
	// Equal instants come by id, but for the pair whose zone forms differ: Neo4j orders those
	// by the zone.
	zoneTie := base.Add(time.Second)
	for i := 1; i < len(want); i++ {
		a, b := want[i-1], want[i]
		if a.CreatedAt.Before(*b.CreatedAt) || (a.CreatedAt.Equal(*b.CreatedAt) && a.ID < b.ID && !a.CreatedAt.Equal(zoneTie)) {
			t.Errorf("user %d (%s, %s) before user %d (%s, %s)", i-1, a.CreatedAt, a.ID, i, b.CreatedAt, b.ID)
		}
		if string(a.Attributes) == "{}" {
			t.Errorf("user %s without its attributes", a.Identifier)
		}
	}
	for _, size := range []int{1, 2, 4} {
		var got []User
		q := UserQuery{Limit: size}
		for pages := 0; len(got) < len(mine); pages++ {
			if pages > 50 {
				t.Fatalf("pages of %d: only %d of the users after %d pages", size, len(got), pages)
			}
			page, err := r.ListUsers(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Users) > size {
				t.Fatalf("page of %d has %d users", size, len(page.Users))
			}
			got = append(got, ours(page.Users)...)
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		if !slices.EqualFunc(got, want, func(a, b User) bool { return a.ID == b.ID }) {
			t.Errorf("pages of %d: %v, want %v", size, userIDs(got), userIDs(want))
		}
	}

	raw := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []string{"x", cursor{ts: base, id: "x"}.encode(), cursor{ts: base, id: ""}.encodeUser(),
		raw("u1|2026-05-01T09:00:00Z|Local|x"), raw("u1|2026-05-01T09:00:00Z|Nowhere/Zone|x"),
		raw("u1|2026-05-01T09:00:00Z|x"), raw("u1|yesterday|Offset|x")} {
		var arg *ArgumentError
		if _, err := r.ListUsers(ctx, UserQuery{Cursor: c}); !errors.As(err, &arg) || arg.Field != "cursor" {
			t.Errorf("cursor %q: %v, want an ArgumentError on cursor", c, err)
		}
	}
}

// TestListUsersHTTP: GET /v1/users answers users with their attributes and a next_cursor
// that continues the list.
func TestListUsersHTTP(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	srv := newServer(t, d)
	f := newFixture(t, d, "listed")
	f.user(map[string]any{"role": "manager"}, time.Date(9001, 1, 1, 0, 0, 0, 0, time.UTC))
	// A second user, so that a page of one has a next page even on a graph this test is the
	// first to write to.
	newFixture(t, d, "listed2").user(map[string]any{}, time.Date(9001, 1, 1, 0, 0, 0, 0, time.UTC))
	var page UserPage
	if code, raw := get(t, srv.url+"/v1/users?limit=1", nil, &page); code != 200 || len(page.Users) != 1 || page.NextCursor == "" {
		t.Fatalf("first page: %d %s", code, raw)
	}
	var next UserPage
	if code, raw := get(t, srv.url+"/v1/users?limit=1&cursor="+url.QueryEscape(page.NextCursor), nil, &next); code != 200 || len(next.Users) > 1 {
		t.Fatalf("next page: %d %s", code, raw)
	}
	if len(next.Users) == 1 && next.Users[0].ID == page.Users[0].ID {
		t.Errorf("the next page repeats %s", page.Users[0].ID)
	}
	// Some page holds the user, with what GET /v1/users/{identifier} answers.
	var u User
	if code, raw := get(t, userURL(srv.url, f.id), nil, &u); code != http.StatusOK {
		t.Fatalf("user: %d %s", code, raw)
	}
	for q := "?limit=50"; ; {
		var p UserPage
		if code, raw := get(t, srv.url+"/v1/users"+q, nil, &p); code != 200 {
			t.Fatalf("page: %d %s", code, raw)
		}
		if i := slices.IndexFunc(p.Users, func(x User) bool { return x.Identifier == f.id }); i >= 0 {
			got := p.Users[i]
			if got.ID != u.ID || string(got.Attributes) != `{"role":"manager"}` || !got.CreatedAt.Equal(*u.CreatedAt) {
				t.Errorf("listed %+v, want %+v", got, u)
			}
			return
		}
		if p.NextCursor == "" {
			t.Fatalf("user %s not listed", f.id)
		}
		q = "?limit=50&cursor=" + url.QueryEscape(p.NextCursor)
	}
}

func userIDs(us []User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}
