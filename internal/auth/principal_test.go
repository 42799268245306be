package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{in: "*", want: "*"},
		{in: "sara@omg.com", want: "sara@omg.com"},
		{in: "*@omg.com", want: "*@omg.com"},
		{in: "Liam_O'Brien", want: "Liam_O'Brien"},
		{in: "", wantErr: ErrInvalidPattern},
		{in: "*@", wantErr: ErrInvalidPattern},
		{in: "*@a@b", wantErr: ErrInvalidPattern},
		{in: "*@*.com", wantErr: ErrInvalidPattern},
		{in: "**", wantErr: ErrInvalidPattern},
		{in: "sara*", wantErr: ErrInvalidPattern},
		{in: "*omg.com", wantErr: ErrInvalidPattern},
		{in: "a\nb", wantErr: ErrInvalidPattern},
		{in: "*@" + strings.Repeat("d", 300), wantErr: ErrInvalidPattern},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.in)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("ParsePattern(%q) err %v, want %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && p.String() != tt.want {
			t.Errorf("ParsePattern(%q) = %q, want %q", tt.in, p, tt.want)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		id      string
		want    bool
	}{
		{"*", "sara@omg.com", true},
		{"*", "", true},
		{"*", "anything at all", true},
		{"sara@omg.com", "sara@omg.com", true},
		{"sara@omg.com", "Sara@omg.com", false},
		{"sara@omg.com", "sara@omg.com ", false},
		{"sara@omg.com", "", false},
		{"*@omg.com", "sara@omg.com", true},
		{"*@omg.com", "x@omg.com", true},
		{"*@omg.com", "@omg.com", false},
		{"*@omg.com", "sara@OMG.com", false},
		{"*@omg.com", "sara@sub.omg.com", false},
		{"*@omg.com", "sara@evilomg.com", false},
		{"*@omg.com", "a@b.com@omg.com", false},
		{"*@omg.com", "omg.com", false},
		{"*@omg.com", "sara@omg.com.evil", false},
		{"*@omg.com", "", false},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(tt.id); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.id, got, tt.want)
		}
	}
	if (Pattern{}).Match("") || (Pattern{}).Match("x") {
		t.Error("zero Pattern matches")
	}
}

func TestPrincipal(t *testing.T) {
	t.Parallel()
	users, err := ParsePatterns([]string{"sara@omg.com", "*@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	p := &Principal{Name: "agent", Users: users, Scopes: normalizeScopes([]Scope{ScopeWrite, ScopeRead, ScopeWrite})}
	if !p.Has(ScopeRead) || !p.Has(ScopeWrite) || p.Has(ScopeAdmin) {
		t.Errorf("scopes %v", p.Scopes)
	}
	if len(p.Scopes) != 2 || p.Scopes[0] != ScopeRead {
		t.Errorf("scopes not normalized: %v", p.Scopes)
	}
	if !p.CanActFor("sara@omg.com") || !p.CanActFor("joe@acme.test") || p.CanActFor("liam@omg.com") || p.CanActFor("") {
		t.Error("CanActFor")
	}
	var nilP *Principal
	if nilP.Has(ScopeRead) || nilP.CanActFor("x") {
		t.Error("nil principal holds something")
	}
	for _, s := range []string{"read", "write", "admin"} {
		if _, err := ParseScope(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseScope("Admin"); !errors.Is(err, ErrUnknownScope) {
		t.Errorf("ParseScope(Admin) = %v", err)
	}
}
