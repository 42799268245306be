// Package embed turns text into vectors for Engram's vector search (docs/query.md, "Vector
// search"). An embedder is optional: without one, vector search uses the embeddings that
// writes carry, and a search needs a vector from the caller.
//
// Where an embedder runs decides what the log holds. The ingestor embeds a write that carries
// no embedding and puts the vector into the event, so the log holds it: a replay sets the same
// vectors without an embedder, and a change of embedder changes only later events. The query
// service embeds the text of a search with the same embedder (EMBEDDER, the same setting on
// both), so the two must agree; searches compare vectors of equal length only.
package embed

import (
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// MaxDimensions bounds a vector: the events' JSON Schemas allow at most this many numbers.
const MaxDimensions = 4096

// Embedder turns a text into a vector of Dimensions numbers.
type Embedder interface {
	Embed(text string) ([]float64, error)
	Dimensions() int
	// Name is the setting that makes this embedder (EMBEDDER), e.g. "hash:256".
	Name() string
}

// Parse reads the EMBEDDER setting: "" or "none" is no embedder (nil); "hash" or
// "hash:<dimensions>" the deterministic hashing embedder (Hash), 256 dimensions by default.
func Parse(spec string) (Embedder, error) {
	name, arg, _ := strings.Cut(strings.TrimSpace(spec), ":")
	switch name {
	case "", "none":
		if arg != "" {
			return nil, fmt.Errorf("EMBEDDER %q: none takes no argument", spec)
		}
		return nil, nil
	case "hash":
		d := DefaultHashDimensions
		if arg != "" {
			n, err := strconv.Atoi(arg)
			if err != nil || n < 2 || n > MaxDimensions {
				return nil, fmt.Errorf("EMBEDDER %q: dimensions must be an integer from 2 to %d", spec, MaxDimensions)
			}
			d = n
		}
		return Hash{D: d}, nil
	}
	return nil, fmt.Errorf("EMBEDDER %q: want none, hash or hash:<dimensions>", spec)
}

// DefaultHashDimensions is Hash's size when EMBEDDER says only "hash".
const DefaultHashDimensions = 256

// Hash is a deterministic embedder that needs no model and no network: feature hashing of the
// text's words (lower-cased, split at anything not a letter or digit) and of their adjacent
// pairs, each adding ±1 to one of D dimensions chosen by FNV-1a, then scaled to unit length.
// Texts sharing words get close vectors, so it serves tests, development and deployments that
// want lexical similarity without a model; it knows nothing of meaning (synonyms are far).
type Hash struct{ D int }

func (h Hash) Dimensions() int { return h.D }
func (h Hash) Name() string    { return "hash:" + strconv.Itoa(h.D) }

// Embed implements Embedder. A text without a word has no vector: nil, nil.
func (h Hash) Embed(text string) ([]float64, error) {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	if len(words) == 0 {
		return nil, nil
	}
	v := make([]float64, h.D)
	add := func(feature string, weight float64) {
		f := fnv.New64a()
		_, _ = f.Write([]byte(feature))
		x := f.Sum64()
		sign := 1.0
		if x>>63 == 1 {
			sign = -1
		}
		v[x%uint64(h.D)] += sign * weight
	}
	for i, w := range words {
		add(w, 1)
		if i > 0 {
			add(words[i-1]+" "+w, 0.5)
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	if norm == 0 {
		// Every feature cancelled out: keep a vector of the right length that is not zero.
		v[0], norm = 1, 1
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] /= norm
	}
	return v, nil
}

// Check reports what is wrong with a vector given with a write or a search: empty, too long,
// or all zeros (no direction, so no similarity).
func Check(v []float64) error {
	switch {
	case len(v) == 0:
		return fmt.Errorf("must hold at least one number")
	case len(v) > MaxDimensions:
		return fmt.Errorf("has %d numbers, at most %d", len(v), MaxDimensions)
	}
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("must hold finite numbers")
		}
	}
	for _, x := range v {
		if x != 0 {
			return nil
		}
	}
	return fmt.Errorf("must not be all zeros (it has no direction to compare)")
}
