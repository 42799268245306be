package embed

import (
	"encoding/binary"
	"errors"
	"math"
)

// A sketch is a vector's direction in a byte per dimension, with a bound on how far the
// sketch may be from it: what a search reads of every node it compares, so that it reads the
// full vectors of only the few nodes that may be among the nearest (docs/query.md, "Vector
// search"). Neo4j reads a node's list of 256 floats in about 20 µs and a byte array of the
// same length in well under one, so the sketch is what makes an exact search over a user's
// thousands of vectors cheap.
//
// Layout (SketchHeader + d bytes): the scale s (float64, little endian), the error bound
// err (float64), then d signed bytes b_i. With u = v/|v| and ŭ_i = s·b_i, |u − ŭ| ≤ err,
// so for any query direction x (|x| = 1), |x·u − x·ŭ| ≤ err (Cauchy–Schwarz): the cosine
// is within err of the sketch's. Quantization rounds u_i/s to the nearest integer, s being
// max|u_i|/127; err is computed from the rounded values, not estimated, and rounded up.

// SketchHeader is the length of a sketch's header: scale and error bound.
const SketchHeader = 16

// Sketch returns the sketch of v, or nil when v is empty or has no direction.
func Sketch(v []float64) []byte {
	u := Unit(v)
	if u == nil {
		return nil
	}
	top := 0.0
	for _, x := range u {
		top = math.Max(top, math.Abs(x))
	}
	s := top / 127
	out := make([]byte, SketchHeader+len(v))
	var sq float64
	for i, x := range u {
		b := math.Max(-127, math.Min(127, math.Round(x/s)))
		out[SketchHeader+i] = byte(int8(b))
		d := x - b*s
		sq += d * d
	}
	// The bound errs upwards: the rounding of the sum and of the square root cannot make it
	// smaller than the true distance.
	bound := math.Sqrt(sq)*(1+1e-9) + 1e-12
	binary.LittleEndian.PutUint64(out, math.Float64bits(s))
	binary.LittleEndian.PutUint64(out[8:], math.Float64bits(bound))
	return out
}

// ErrSketch is a sketch too short for its header.
var ErrSketch = errors.New("embed: not a sketch")

// SketchDimensions is the number of dimensions of the vector a sketch was made of.
func SketchDimensions(sketch []byte) int { return max(0, len(sketch)-SketchHeader) }

// Cosine returns the cosine between the direction x (of length 1) and the vector a sketch
// was made of, as the sketch gives it, and the bound on the difference from the exact
// cosine. x must have the sketch's dimensions.
func Cosine(sketch []byte, x []float64) (cos, bound float64, err error) {
	if len(sketch) < SketchHeader || len(sketch)-SketchHeader != len(x) {
		return 0, 0, ErrSketch
	}
	s := math.Float64frombits(binary.LittleEndian.Uint64(sketch))
	bound = math.Float64frombits(binary.LittleEndian.Uint64(sketch[8:]))
	var dot float64
	for i, b := range sketch[SketchHeader:] {
		dot += float64(int8(b)) * x[i]
	}
	return dot * s, bound, nil
}

// Unit returns v scaled to length 1, or nil when it has no direction.
func Unit(v []float64) []float64 {
	// Scaled by the largest magnitude first, so that neither tiny nor huge numbers lose the
	// direction to underflow or overflow of their squares.
	top := 0.0
	for _, x := range v {
		top = math.Max(top, math.Abs(x))
	}
	if len(v) == 0 || top == 0 || math.IsInf(top, 0) || math.IsNaN(top) {
		return nil
	}
	norm := 0.0
	for _, x := range v {
		norm += (x / top) * (x / top)
	}
	norm = math.Sqrt(norm)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x / top / norm
	}
	return out
}
