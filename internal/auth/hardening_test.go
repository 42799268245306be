package auth

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWTStrictHeaderAndDates covers issue 12 finding 13: a crit header this server does not
// understand (RFC 7515 §4.1.11) and NumericDates given as strings (RFC 7519 §2) are refused,
// even when the signature is good; so are members named like a claim but for case, which
// encoding/json reads as that claim (found by FuzzJWT: "EXP": "1772370000" was accepted),
// and dates before 1970 or past year 9999 (FuzzJWT: an nbf of 1.772366e46 passed as met).
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
		// encoding/json reads "EXP" as exp: a string date under another case passed before.
		{name: "EXP as string", token: withHeader(with(claims(), "EXP", str(time.Hour)), nil), wantErr: ErrClaims},
		{name: "Nbf as string", token: withHeader(with(claims(), "Nbf", str(-time.Minute)), nil), wantErr: ErrClaims},
		{name: "exp and a later EXP", token: withHeader(with(claims(), "EXP", testNow.Add(100*time.Hour).Unix()), nil), wantErr: ErrClaims},
		{name: "Sub beside sub", token: withHeader(with(claims(), "Sub", "admin"), nil), wantErr: ErrClaims},
		// The library's float-to-int64 conversion made these a time long past (FuzzJWT).
		{name: "nbf beyond int64", token: withHeader(with(claims(), "nbf", 1.772366e46), nil), wantErr: ErrClaims},
		{name: "iat beyond int64", token: withHeader(with(claims(), "iat", 1e19), nil), wantErr: ErrClaims},
		{name: "exp beyond int64", token: withHeader(with(claims(), "exp", 1e300), nil), wantErr: ErrUnauthenticated}, // refused as expired
		{name: "negative iat", token: withHeader(with(claims(), "iat", -1), nil), wantErr: ErrClaims},
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

// TestJWTCanonicalEncoding: a segment's last base64url character has unused low bits, and
// the library ignored them, so one signed token was accepted under four spellings (found by
// FuzzJWT). Only the canonical encoding (RFC 7515 §2, RFC 4648 §3.5) is accepted now.
func TestJWTCanonicalEncoding(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	a, err := New(k.config(), WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, k.secret, claims()) // a 32-byte signature: 2 unused bits
	if _, err := a.Credential(tok); err != nil {
		t.Fatalf("canonical token: %v", err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, tok[len(tok)-1])
	for d := 1; d < 4; d++ {
		alt := tok[:len(tok)-1] + string(alphabet[i&^3|(i+d)&3])
		if _, err := a.Credential(alt); !errors.Is(err, ErrMalformed) {
			t.Errorf("signature spelled %q: %v, want ErrMalformed", alt[len(alt)-4:], err)
		}
	}
}
