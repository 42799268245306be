package auth

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWTStrictHeaderAndDates covers issue 12 finding 13: a crit header this server does not
// understand (RFC 7515 §4.1.11) and NumericDates given as strings (RFC 7519 §2) are refused,
// even when the signature is good.
func TestJWTStrictHeaderAndDates(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	a, err := New(k.config(), WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	withHeader := func(c jwt.MapClaims, hdr map[string]any) string {
		t.Helper()
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		for k, v := range hdr {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(k.secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	str := func(d time.Duration) string { return strconv.FormatInt(testNow.Add(d).Unix(), 10) }
	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{name: "good", token: withHeader(claims(), nil)},
		{name: "crit unknown extension", token: withHeader(with(claims(), "exp2", 1), map[string]any{"crit": []string{"exp2"}, "exp2": 1}), wantErr: ErrMalformed},
		{name: "crit empty", token: withHeader(claims(), map[string]any{"crit": []string{}}), wantErr: ErrMalformed},
		{name: "exp as string", token: withHeader(with(claims(), "exp", str(time.Hour)), nil), wantErr: ErrClaims},
		{name: "nbf as string", token: withHeader(with(claims(), "nbf", str(-time.Minute)), nil), wantErr: ErrClaims},
		{name: "iat as string", token: withHeader(with(claims(), "iat", str(-time.Minute)), nil), wantErr: ErrClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := a.Credential(tt.token)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Credential: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Credential: %v, want %v", err, tt.wantErr)
			}
		})
	}
}
