package embed

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSketchBoundsTheCosine: for vectors of every kind a write may carry and directions of
// every kind a search may ask, the sketch's cosine is within its bound of the exact cosine.
func TestSketchBoundsTheCosine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := Hash{D: 256}
	gauss := func(d int, scale float64) []float64 {
		v := make([]float64, d)
		for i := range v {
			v[i] = rng.NormFloat64() * scale
		}
		return v
	}
	var vectors [][]float64
	for i := range 200 {
		v, _ := h.Embed(fmt.Sprintf("message %d about topic %d and topic %d", i, i%97, i%13))
		vectors = append(vectors, v, gauss(1+i%64, 1), gauss(384, 1e-30), gauss(4096, 1e30))
	}
	oneHot := make([]float64, 8)
	oneHot[3] = -5
	vectors = append(vectors, oneHot, []float64{1}, []float64{1e-300, 1e-300}, []float64{math.MaxFloat64 / 4, 1})
	worst := 0.0
	for _, v := range vectors {
		sk := Sketch(v)
		if SketchDimensions(sk) != len(v) {
			t.Fatalf("sketch of %d dimensions for a vector of %d", SketchDimensions(sk), len(v))
		}
		u := Unit(v)
		for k := range 20 {
			x := Unit(gauss(len(v), 1))
			if k == 0 {
				x = u // the vector itself: cosine 1
			}
			exact := 0.0
			for i := range u {
				exact += u[i] * x[i]
			}
			cos, bound, err := Cosine(sk, x)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(cos - exact); d > bound {
				t.Fatalf("vector of %d dimensions: sketch cosine %v, exact %v: off by %v, bound %v", len(v), cos, exact, d, bound)
			}
			worst = max(worst, bound)
		}
	}
	if worst == 0 || worst > 0.1 {
		t.Fatalf("bounds up to %v: a sketch should be close to its vector and not exact", worst)
	}
	t.Logf("largest bound %.3g", worst)
}

func TestSketchRefusesWhatHasNoDirection(t *testing.T) {
	for _, v := range [][]float64{nil, {}, {0, 0}, {math.NaN(), 1}, {math.Inf(1), 0}} {
		if sk := Sketch(v); sk != nil {
			t.Errorf("Sketch(%v) = %v, want nil", v, sk)
		}
	}
	if _, _, err := Cosine([]byte{1, 2}, []float64{1}); err == nil {
		t.Error("a short sketch was read")
	}
	if _, _, err := Cosine(Sketch([]float64{1, 2}), []float64{1}); err == nil {
		t.Error("a sketch was compared with a vector of other dimensions")
	}
}
