package events

import (
	"errors"
	"strings"
	"testing"
	"unicode"
)

func TestEncodeToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id      string
		want    string
		wantErr error
	}{
		{id: "sara@omg.com", want: "sara_40omg_2Ecom"},
		{id: "liam@omg.com", want: "liam_40omg_2Ecom"},
		{id: "Liam_O'Brien", want: "Liam_5FO_27Brien"},
		{id: "a b", want: "a_20b"},
		{id: "x.*>", want: "x_2E_2A_3E"},
		{id: "_shared", want: "_5Fshared"},
		{id: "zoë", want: "zo_C3_AB"},
		{id: "", wantErr: ErrInvalidIdentifier},
		{id: "a\nb", wantErr: ErrInvalidIdentifier},
		{id: "a\x7fb", wantErr: ErrInvalidIdentifier},
		{id: "a\u0085b", wantErr: ErrInvalidIdentifier},
		{id: string([]byte{0xff, 0xfe}), wantErr: ErrInvalidIdentifier},
		{id: strings.Repeat("a", 257), wantErr: ErrInvalidIdentifier},
		{id: " sara", wantErr: ErrInvalidIdentifier},
		{id: "sara ", wantErr: ErrInvalidIdentifier},
		{id: " ", wantErr: ErrInvalidIdentifier},
	}
	for _, tt := range tests {
		got, err := EncodeToken(tt.id)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("EncodeToken(%q) error %v, want %v", tt.id, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("EncodeToken(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if _, err := EncodeToken(strings.Repeat("é", 128)); err != nil {
		t.Errorf("256 bytes of UTF-8 refused: %v", err)
	}
}

func TestDecodeTokenRejectsForeignTokens(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"", "_", "_4", "_4g", "_41", "_2e", "a.b", "a b", SharedTenantToken, "a*", "_0A"} {
		if id, err := DecodeToken(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("DecodeToken(%q) = %q, %v; want ErrInvalidToken", tok, id, err)
		}
	}
}

// FuzzToken: encoding round-trips, a token is always subject-safe, and distinct identifiers
// never share a token (injectivity follows from DecodeToken being a function that inverts
// EncodeToken; the second identifier checks it directly).
func FuzzToken(f *testing.F) {
	for _, s := range []string{"sara@omg.com", "a.b", "_5F", "*", ">", " ", "zoë", "_shared", "-"} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, errA := EncodeToken(a)
		if errA != nil {
			if ValidateIdentifier(a) == nil {
				t.Fatalf("valid %q refused: %v", a, errA)
			}
			return
		}
		if strings.ContainsAny(ta, ".*>") || strings.IndexFunc(ta, unicode.IsSpace) >= 0 || ta == SharedTenantToken {
			t.Fatalf("token %q of %q is not subject-safe", ta, a)
		}
		for i := 0; i < len(ta); i++ {
			if ta[i] < 0x21 || ta[i] > 0x7e {
				t.Fatalf("token %q of %q has byte %#x", ta, a, ta[i])
			}
		}
		back, err := DecodeToken(ta)
		if err != nil || back != a {
			t.Fatalf("DecodeToken(EncodeToken(%q)) = %q, %v", a, back, err)
		}
		if tb, err := EncodeToken(b); err == nil && a != b && ta == tb {
			t.Fatalf("%q and %q share token %q", a, b, ta)
		}
	})
}
