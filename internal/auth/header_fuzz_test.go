package auth

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{in: "Bearer abc", want: "abc"},
		{in: "BEARER a.b.c", want: "a.b.c"},
		{in: "Bearer   padded==", want: "padded=="},
		{in: "Bearer a-._~+/9", want: "a-._~+/9"},
		{in: "", wantErr: ErrNoCredentials},
		{in: "   ", wantErr: ErrNoCredentials},
		{in: "Bearer", wantErr: ErrMalformed},
		{in: "Bearer ", wantErr: ErrMalformed},
		{in: "Bearerabc", wantErr: ErrMalformed},
		{in: "Basic abc", wantErr: ErrMalformed},
		{in: "Bearer a b", wantErr: ErrMalformed},
		{in: "Bearer a=b", wantErr: ErrMalformed},
		{in: "Bearer a\x00", wantErr: ErrMalformed},
		{in: "Bearer é", wantErr: ErrMalformed},
		{in: "Bearer " + strings.Repeat("a", MaxCredentialBytes+1), wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		got, err := ParseAuthorization(tt.in)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("ParseAuthorization(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzAuthorization: parsing never panics; an accepted credential is a non-empty b64token
// that round-trips; and the whole authenticator, fed any header, either authenticates or
// returns an *Error wrapping ErrUnauthenticated that does not echo the credential.
func FuzzAuthorization(f *testing.F) {
	k := newTestKeys(f)
	a, err := New(k.config(), WithClock(fixedClock))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"Bearer abc", "bearer a.b.c", "Basic x", "", "Bearer ", "Bearer a==", "Bearer " + k.apiKey,
		"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "Bearer ....", "Bearer a.b", "Bearer \xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		cred, err := ParseAuthorization(h)
		if err == nil {
			if cred == "" || len(cred) > MaxCredentialBytes {
				t.Fatalf("accepted credential %q", cred)
			}
			again, err := ParseAuthorization("Bearer " + cred)
			if err != nil || again != cred {
				t.Fatalf("round trip of %q: %q, %v", cred, again, err)
			}
			for i := 0; i < len(cred); i++ {
				if c := cred[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
					t.Fatalf("credential %q has byte %#x", cred, c)
				}
			}
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoCredentials) {
			t.Fatalf("error %v wraps neither ErrMalformed nor ErrNoCredentials", err)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{h}
		p, err := a.Authenticate(r)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("error %T %v", err, err)
			}
			if len(cred) >= 16 && strings.Contains(err.Error(), cred) {
				t.Fatalf("error %q echoes the credential", err)
			}
			return
		}
		if p == nil || p.Name == "" {
			t.Fatalf("principal %+v", p)
		}
	})
}
