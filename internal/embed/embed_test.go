package embed_test

import (
	"math"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/embed"
)

func cosine(a, b []float64) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	return dot / math.Sqrt(na*nb)
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		spec string
		name string // "" for no embedder
		bad  bool
	}{
		{"", "", false}, {"none", "", false}, {" none ", "", false},
		{"hash", "hash:256", false}, {"hash:64", "hash:64", false}, {"hash:4096", "hash:4096", false},
		{"hash:1", "", true}, {"hash:4097", "", true}, {"hash:x", "", true}, {"none:3", "", true}, {"openai", "", true},
	} {
		e, err := embed.Parse(tt.spec)
		switch {
		case tt.bad && err == nil:
			t.Errorf("Parse(%q) = %v, want an error", tt.spec, e)
		case !tt.bad && err != nil:
			t.Errorf("Parse(%q): %v", tt.spec, err)
		case !tt.bad && tt.name == "" && e != nil:
			t.Errorf("Parse(%q) = %v, want no embedder", tt.spec, e.Name())
		case !tt.bad && tt.name != "" && (e == nil || e.Name() != tt.name):
			t.Errorf("Parse(%q) = %v, want %s", tt.spec, e, tt.name)
		}
	}
}

// TestHash: deterministic, unit length, of the configured size; texts sharing words are
// nearer than texts that share none; case and punctuation do not matter; no words, no vector.
func TestHash(t *testing.T) {
	h := embed.Hash{D: 128}
	a, _ := h.Embed("Book a table at the sushi place")
	again, _ := h.Embed("book a table, at the SUSHI place!")
	near, _ := h.Embed("the sushi place was closed")
	far, _ := h.Embed("renew the car insurance before june")
	if len(a) != 128 {
		t.Fatalf("%d dimensions", len(a))
	}
	for i := range a {
		if a[i] != again[i] {
			t.Fatalf("case or punctuation changed the vector at %d", i)
		}
	}
	if n := cosine(a, a); math.Abs(n-1) > 1e-12 {
		t.Errorf("not unit length: %v", n)
	}
	if cosine(a, near) <= cosine(a, far) {
		t.Errorf("sharing words is not nearer: near %v, far %v", cosine(a, near), cosine(a, far))
	}
	if v, err := h.Embed(" ... !? "); v != nil || err != nil {
		t.Errorf("no words: %v, %v; want no vector", v, err)
	}
	if err := embed.Check(a); err != nil {
		t.Errorf("Check of an embedder's vector: %v", err)
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		v    []float64
		want string
	}{
		{[]float64{}, "at least one"},
		{make([]float64, embed.MaxDimensions+1), "at most"},
		{[]float64{0, 0}, "all zeros"},
		{[]float64{math.NaN()}, "finite"},
		{[]float64{math.Inf(1)}, "finite"},
	} {
		if err := embed.Check(tt.v); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check(%d numbers) = %v, want %q", len(tt.v), err, tt.want)
		}
	}
	if err := embed.Check([]float64{0, -0.5}); err != nil {
		t.Errorf("Check of a valid vector: %v", err)
	}
}
