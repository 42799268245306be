package events

import "testing"

// FuzzCheckJSONFast: CheckJSON's scanner accepts only what the token walk accepts, so the
// fast answer (nil) is never one the walk would refuse (make fuzz runs it long).
func FuzzCheckJSONFast(f *testing.F) {
	for _, seed := range []string{`{"a":1}`, `{"a":1,"a":2}`, `{"a":"\u00e9","\u0061":1}`, `[1e400]`, `{"x":[{"y":{"z":null}}]}`,
		"{\"a\":\"\xff\"}", `{"a":1.5e308}`, `"x"`, `{`, ` {"b":[true,false]} `, `{"\ud800":1}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !checkJSONFast(data) {
			return
		}
		if err := checkJSONWalk(data); err != nil {
			t.Fatalf("the scanner accepts %q, the walk refuses it: %v", data, err)
		}
	})
}
