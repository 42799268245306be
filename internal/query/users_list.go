package query

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// The library's users.list_users, newest created first, with a cursor: it reads every
// tenant's User node, so it is an admin's read (admin.go). It walks the User(created_at)
// index from the cursor down and stops at the page, so a page costs the same however many
// users there are. Users without created_at are not listed (the projector and the library
// always set it).
//
// The order is that of the stored created_at as Neo4j orders DateTimes, where one instant
// stored with a zone id (09:00Z[UTC]) sorts after the same instant with an offset (09:00Z).
// The reads elsewhere normalise to offset Z before comparing; this one must not, or it could
// not follow the index, so its cursor keeps the stored value with its zone form, and the page
// after it compares against exactly that value.
//
// The tie-breaker on id is a CASE, not `u.created_at < $cursor_at OR u.id < $cursor_id`:
// with the OR, Neo4j's planner may split the read into a union of two seeks (both disjuncts
// can use the created_at index, the second through the outer `<=`) and sort their whole
// result, every user older than the cursor, for each page. It did on a store of 2.4 GB
// (TestReadsAreIndexBacked, session 16); a CASE is not split.
const usersNewestFirst = `
MATCH (u:User)
USING INDEX SEEK u:User(created_at)
WHERE u.created_at <= $cursor_at AND CASE WHEN u.created_at < $cursor_at THEN true ELSE u.id < $cursor_id END
RETURN u {.id, .identifier, .attributes_json, .created_at, .recorded_at} AS user
ORDER BY u.created_at DESC, u.id DESC
LIMIT $limit
`

// UserQuery selects a page of users. Its zero value is the newest DefaultLimit users.
type UserQuery struct {
	Limit  int    // 1..the Reader's max limit; 0 means DefaultLimit
	Cursor string // UserPage.NextCursor of the previous page
}

// UserPage is one page of users, newest created first.
type UserPage struct {
	Users []User `json:"users"`
	// NextCursor continues after the last user of this page; empty when this page is the last.
	NextCursor string `json:"next_cursor,omitempty"`
}

// ListUsers returns a page of every tenant's users, newest created first (then by id,
// descending). It is not scoped to a user: serve it to admins only.
func (r *Reader) ListUsers(ctx context.Context, q UserQuery) (UserPage, error) {
	n, err := limit(q.Limit, r.maxLimit)
	if err != nil {
		return UserPage{}, err
	}
	// The first page starts above any datetime the graph can hold.
	at, id := time.Date(9999, 12, 31, 23, 59, 59, 999999999, offsetZ), ""
	if q.Cursor != "" {
		c, err := decodeUserCursor(q.Cursor)
		if err != nil {
			return UserPage{}, err
		}
		at, id = c.ts, c.id
	}
	// One more than the page tells whether another page follows.
	rows, err := r.read(ctx, "list users", usersNewestFirst,
		map[string]any{"cursor_at": at, "cursor_id": id, "limit": int64(n + 1)})
	if err != nil {
		return UserPage{}, err
	}
	var page UserPage
	if len(rows) > n {
		rows = rows[:n]
		last := rows[n-1]
		ts, ok := last["created_at"].(time.Time)
		if !ok {
			return UserPage{}, fmt.Errorf("query list users: created_at of user %q is %T, want a datetime", str(last, "id"), last["created_at"])
		}
		page.NextCursor = cursor{ts: ts, id: str(last, "id")}.encodeUser()
	}
	page.Users = make([]User, 0, len(rows))
	for _, m := range rows {
		page.Users = append(page.Users, User{
			ID:         str(m, "id"),
			Identifier: str(m, "identifier"),
			Attributes: object(m, "attributes_json"),
			CreatedAt:  timep(m, "created_at"),
			RecordedAt: timep(m, "recorded_at"),
		})
	}
	return page, nil
}

// userCursorPrefix versions the users' cursor; "m1|" is the messages'.
const userCursorPrefix = "u1|"

// encodeUser encodes the created_at and id of the last user of a page. The zone is kept as
// the driver returns it: "Offset" for an offset form, else the zone id.
func (c cursor) encodeUser() string {
	zone, _ := c.ts.Zone()
	if zone != "Offset" {
		zone = c.ts.Location().String()
	}
	return base64.RawURLEncoding.EncodeToString(
		[]byte(userCursorPrefix + c.ts.Format(time.RFC3339Nano) + "|" + zone + "|" + c.id))
}

func decodeUserCursor(s string) (cursor, error) {
	bad := badArg("cursor", "not a cursor this API returned")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	rest, ok := strings.CutPrefix(string(raw), userCursorPrefix)
	if !ok {
		return cursor{}, bad
	}
	parts := strings.SplitN(rest, "|", 3)
	if len(parts) != 3 {
		return cursor{}, bad
	}
	ts, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return cursor{}, bad
	}
	if parts[1] == "Offset" {
		_, off := ts.Zone()
		ts = ts.In(time.FixedZone("Offset", off))
	} else {
		loc, err := time.LoadLocation(parts[1])
		if err != nil || parts[1] == "" || parts[1] == "Local" {
			return cursor{}, bad
		}
		ts = ts.In(loc)
	}
	if err := checkText("cursor", parts[2], maxTextRunes); err != nil {
		return cursor{}, err
	}
	return cursor{ts: ts, id: parts[2]}, nil
}
