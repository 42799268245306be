package query

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Query parameters of the entity, relationship and fact reads (entities.go).
var (
	entityListParams   = []string{"type", "name", "limit", "cursor"}
	entityByNameParams = []string{"name", "type"}
	relatedParams      = []string{"depth", "type", "direction", "limit"}
	factParams         = []string{"subject", "predicate", "as_of", "known_at", "limit"}
)

// registerEntities mounts the entity, relationship and fact reads of a user, and the shared
// tenant's under SharedPrefix (404 while multi-tenant mode is on, as its other reads).
func (h *Handler) registerEntities(mux *http.ServeMux) {
	routes := []struct {
		path, name string
		ep         endpoint
	}{
		{"/entities", "entities", h.entities},
		{"/entities/by-name", "entity_by_name", h.entityByName},
		{"/entities/{entity_id}", "entity", h.entity},
		{"/entities/{entity_id}/related", "related_entities", h.related},
		{"/entities/{entity_id}/mentions", "entity_mentions", h.mentions()},
		{"/messages/{message_id}/entities", "message_entities", h.messageEntities()},
		{"/traces/{trace_id}/entities", "trace_entities", h.traceEntities()},
		{"/facts", "facts", h.facts},
	}
	for _, rt := range routes {
		mux.Handle("GET /v1/users/{identifier}"+rt.path, h.guard(h.route(rt.name, rt.ep)))
		var shared http.Handler = h.route("shared_"+rt.name, rt.ep)
		if !h.shared {
			shared = http.HandlerFunc(multiTenantOn)
		}
		mux.Handle("GET "+SharedPrefix+rt.path, h.guard(shared))
	}
}

// Response body of the facts.
type factsBody struct {
	Facts []Fact `json:"facts"`
}

func (h *Handler) entities(r *http.Request, identifier string) (readFunc, error) {
	v := r.URL.Query()
	if err := checkParams(v, entityListParams); err != nil {
		return nil, err
	}
	var q EntityQuery
	for _, p := range []struct {
		name string
		dst  *string
	}{{"type", &q.Type}, {"name", &q.Name}} {
		if v.Has(p.name) {
			*p.dst = v.Get(p.name)
			if err := checkText(p.name, *p.dst, maxTextRunes); err != nil {
				return nil, err
			}
		}
	}
	var err error
	if q.Limit, err = parseLimit(v, h.maxLimit); err != nil {
		return nil, err
	}
	if v.Has("cursor") {
		q.Cursor = v.Get("cursor")
		if _, err := decodeEntityCursor(q.Cursor); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) (any, error) {
		return h.reader.Entities(ctx, identifier, q)
	}, nil
}

func (h *Handler) entityByName(r *http.Request, identifier string) (readFunc, error) {
	v := r.URL.Query()
	if err := checkParams(v, entityByNameParams); err != nil {
		return nil, err
	}
	for _, p := range entityByNameParams {
		if !v.Has(p) {
			return nil, badArg(p, "required: an entity is found by name and type here; list by name alone with GET …/entities?name=")
		}
		if err := checkText(p, v.Get(p), maxTextRunes); err != nil {
			return nil, err
		}
	}
	name, typ := v.Get("name"), v.Get("type")
	return func(ctx context.Context) (any, error) {
		return h.reader.GetEntityByName(ctx, identifier, name, typ)
	}, nil
}

func (h *Handler) entity(r *http.Request, identifier string) (readFunc, error) {
	id := r.PathValue("entity_id")
	if err := checkText("entity_id", id, maxTextRunes); err != nil {
		return nil, err
	}
	if err := checkParams(r.URL.Query(), nil); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return h.reader.GetEntity(ctx, identifier, id)
	}, nil
}

func (h *Handler) related(r *http.Request, identifier string) (readFunc, error) {
	id := r.PathValue("entity_id")
	if err := checkText("entity_id", id, maxTextRunes); err != nil {
		return nil, err
	}
	q, err := parseRelatedQuery(r.URL.Query(), h.maxLimit)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return h.reader.RelatedEntities(ctx, identifier, id, q)
	}, nil
}

// parseRelatedQuery reads the parameters of GET …/entities/{entity_id}/related: type may be
// given several times (any of the types), the others at most once.
func parseRelatedQuery(v url.Values, maxLimit int) (RelatedQuery, error) {
	var q RelatedQuery
	rest := url.Values{}
	for k, vals := range v {
		if k != "type" {
			rest[k] = vals
		}
	}
	if err := checkParams(rest, relatedParams); err != nil {
		return q, err
	}
	if types := v["type"]; len(types) > 0 {
		if len(types) > maxRelationshipTypes {
			return q, badArg("type", "given %d times, at most %d relationship types allowed", len(types), maxRelationshipTypes)
		}
		for _, t := range types {
			if err := checkText("type", t, maxTextRunes); err != nil {
				return q, err
			}
		}
		q.Types = types
	}
	if v.Has("depth") {
		s := v.Get("depth")
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxRelatedDepth {
			return q, badArg("depth", "%q: want an integer from 1 to %d", clip(s), MaxRelatedDepth)
		}
		q.Depth = n
	}
	if v.Has("direction") {
		switch d := Direction(v.Get("direction")); d {
		case Both, Outgoing, Incoming:
			q.Direction = d
		default:
			return q, badArg("direction", "%q: want out, in or both", clip(string(d)))
		}
	}
	var err error
	q.Limit, err = parseLimit(v, maxLimit)
	return q, err
}

func (h *Handler) facts(r *http.Request, identifier string) (readFunc, error) {
	v := r.URL.Query()
	if err := checkParams(v, factParams); err != nil {
		return nil, err
	}
	var q FactQuery
	for _, p := range []struct {
		name string
		dst  *string
		max  int
	}{{"subject", &q.Subject, maxFactSubjectRunes}, {"predicate", &q.Predicate, maxTextRunes}} {
		if v.Has(p.name) {
			*p.dst = v.Get(p.name)
			if err := checkText(p.name, *p.dst, p.max); err != nil {
				return nil, err
			}
		}
	}
	var err error
	if q.AsOf, err = optTime(v, "as_of"); err != nil {
		return nil, err
	}
	if q.KnownAt, err = optTime(v, "known_at"); err != nil {
		return nil, err
	}
	if q.Limit, err = parseLimit(v, h.maxLimit); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		fs, err := h.reader.Facts(ctx, identifier, q)
		return factsBody{Facts: fs}, err
	}, nil
}
