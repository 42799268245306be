package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// jwtSigner signs a JWS signing input as one party would: the server's own keys (trusted) or
// an attacker's, including the classic algorithm confusion of an HS256 "secret" that is the
// server's public key.
type jwtSigner struct {
	name    string
	trusted bool
	sign    func(input []byte) []byte
}

func hmacSigner(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

func rsaSigner(tb testing.TB, k *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		h := sha256.Sum256(in)
		s, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
}

func edSigner(k ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(k, in) }
}

var strictB64 = base64.RawURLEncoding.Strict()

// signedByTrustedKey is the reference the authenticator is held to, written from RFC 7515
// without the jwt library: a compact JWS whose three segments are canonical base64url, whose
// header names its alg, and whose signature over the first two segments verifies with a key
// the server trusts for that alg.
func signedByTrustedKey(k *testKeys, tok string) (alg string, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", false
	}
	rawHeader, err1 := strictB64.DecodeString(parts[0])
	sig, err2 := strictB64.DecodeString(parts[2])
	if _, err3 := strictB64.DecodeString(parts[1]); err1 != nil || err2 != nil || err3 != nil {
		return "", false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(rawHeader, &h) != nil {
		return "", false
	}
	input := []byte(parts[0] + "." + parts[1])
	digest := sha256.Sum256(input)
	switch h.Alg {
	case "HS256":
		return h.Alg, hmac.Equal(sig, hmacSigner(k.secret)(input))
	case "RS256":
		for _, pub := range []*rsa.PublicKey{&k.rsa.PublicKey, &k.rsa2.PublicKey} {
			if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil {
				return h.Alg, true
			}
		}
	case "EdDSA":
		return h.Alg, ed25519.Verify(k.ed.Public().(ed25519.PublicKey), input, sig)
	}
	return h.Alg, false
}

// FuzzJWT drives the authenticator's JWT verification (HS256, RS256 with a rotated second
// key, EdDSA) with tokens whose header and claims are arbitrary JSON (or arbitrary bytes),
// signed by the server's keys, by other keys, with the server's public key as an HS256
// secret, unsigned, or taken as raw segments. It never panics; every refusal is an *Error
// wrapping ErrUnauthenticated; and a token it accepts is one that signedByTrustedKey accepts,
// whose header has no crit, whose exp is a number not past, whose nbf and iat are not in the
// future, and whose principal is its sub.
func FuzzJWT(f *testing.F) {
	k := newTestKeys(f)
	a, err := New(k.config(), WithClock(fixedClock))
	if err != nil {
		f.Fatal(err)
	}
	rsaPEM, err := os.ReadFile(k.rsaFile)
	if err != nil {
		f.Fatal(err)
	}
	edPEM, err := os.ReadFile(k.edFile)
	if err != nil {
		f.Fatal(err)
	}
	_, otherEd, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	signers := []jwtSigner{
		{"HS256", true, hmacSigner(k.secret)},
		{"RS256", true, rsaSigner(f, k.rsa)},
		{"RS256 rotated key", true, rsaSigner(f, k.rsa2)},
		{"EdDSA", true, edSigner(k.ed)},
		{"HS256 other secret", false, hmacSigner([]byte("an-attacker's-secret-of-32-bytes-or-more"))},
		{"RS256 other key", false, rsaSigner(f, rsaKey(f, 2))},
		{"EdDSA other key", false, edSigner(otherEd)},
		{"HS256 keyed with the RS256 public key", false, hmacSigner(rsaPEM)},
		{"HS256 keyed with the EdDSA public key", false, hmacSigner(edPEM)},
		{"unsigned", false, func([]byte) []byte { return nil }},
	}
	raw := uint8(len(signers)) // the inputs are the token's segments as they are

	c, _ := json.Marshal(claims())
	for _, h := range []string{`{"alg":"HS256","typ":"JWT"}`, `{"alg":"RS256"}`, `{"alg":"EdDSA"}`, `{"alg":"none"}`,
		`{"alg":"HS256","crit":["exp"]}`, `{"alg":"RS256","kid":"1"}`, `{"alg":"ES256"}`, `{"alg":"HS256","alg":"RS256"}`} {
		for i := range signers {
			f.Add(uint8(i), []byte(h), c, "")
		}
	}
	for _, p := range []string{`{"sub":"a","exp":1772370000}`, `{"sub":"a","exp":"1772370000"}`, `{"sub":"a","EXP":"1772370000"}`,
		`{"sub":"a","exp":1772370000,"Nbf":"1"}`, `{"sub":"a"}`,
		`{"sub":"a","exp":1e300,"nbf":-1e300}`, `{"sub":" ","exp":1772370000,"engram_users":"*"}`,
		`{"sub":"a","exp":1772370000,"engram_users":["*@"],"scope":"admin read"}`, `{"exp":1772370000.5,"sub":"a","aud":["x"]}`, `[]`, `null`} {
		f.Add(uint8(0), []byte(`{"alg":"HS256"}`), []byte(p), "")
		f.Add(uint8(3), []byte(`{"alg":"EdDSA"}`), []byte(p), "")
	}
	for _, s := range []jwtSigner{signers[0], signers[1], signers[3]} {
		h := map[string]string{"HS256": `{"alg":"HS256"}`, "RS256": `{"alg":"RS256"}`, "EdDSA": `{"alg":"EdDSA"}`}[strings.Fields(s.name)[0]]
		input := base64.RawURLEncoding.EncodeToString([]byte(h)) + "." + base64.RawURLEncoding.EncodeToString(c)
		seg := strings.Split(input, ".")
		f.Add(raw, []byte(seg[0]), []byte(seg[1]), base64.RawURLEncoding.EncodeToString(s.sign([]byte(input))))
	}
	f.Add(raw, []byte("a"), []byte("b"), "c")
	f.Add(raw, []byte(""), []byte(""), "")

	f.Fuzz(func(t *testing.T, which uint8, header, payload []byte, sig string) {
		which %= raw + 1
		var tok string
		if which == raw {
			tok = string(header) + "." + string(payload) + "." + sig
		} else {
			input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
			tok = input + "." + base64.RawURLEncoding.EncodeToString(signers[which].sign([]byte(input)))
		}
		p, err := a.Credential(tok)
		if cred, herr := ParseAuthorization("Bearer " + tok); herr == nil && cred == tok {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			p2, err2 := a.Authenticate(r)
			if (err == nil) != (err2 == nil) || (p != nil && p2 != nil && p.Name != p2.Name) {
				t.Fatalf("Credential and Authenticate disagree: %v / %v", err, err2)
			}
		}
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || !errors.Is(err, ErrUnauthenticated) || p != nil {
				t.Fatalf("refusal %T %v (principal %v)", err, err, p)
			}
			return
		}
		if which != raw && !signers[which].trusted {
			t.Fatalf("accepted a token signed as %q: %s", signers[which].name, tok)
		}
		alg, ok := signedByTrustedKey(k, tok)
		if !ok {
			t.Fatalf("accepted a token (alg %q) that no trusted key signed: %s", alg, tok)
		}
		checkAcceptedClaims(t, tok, p)
	})
}

// checkAcceptedClaims holds an accepted token to RFC 7519 and Engram's claims.
func checkAcceptedClaims(t *testing.T, tok string, p *Principal) {
	t.Helper()
	parts := strings.Split(tok, ".")
	h, _ := strictB64.DecodeString(parts[0])
	var header map[string]json.RawMessage
	if err := json.Unmarshal(h, &header); err != nil {
		t.Fatalf("accepted header %q: %v", h, err)
	}
	if _, ok := header["crit"]; ok {
		t.Fatalf("accepted a crit header: %s", h)
	}
	b, _ := strictB64.DecodeString(parts[1])
	var c struct {
		Sub string   `json:"sub"`
		Exp *float64 `json:"exp"`
		Nbf *float64 `json:"nbf"`
		Iat *float64 `json:"iat"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("accepted claims %q: %v", b, err)
	}
	now := float64(testNow.Unix())
	leeway := (30 * time.Second).Seconds()
	switch {
	case c.Exp == nil || math.IsNaN(*c.Exp) || *c.Exp+leeway < now:
		t.Fatalf("accepted exp %v at %v: %s", c.Exp, testNow, b)
	case c.Nbf != nil && *c.Nbf-leeway > now:
		t.Fatalf("accepted nbf %v at %v: %s", *c.Nbf, testNow, b)
	case c.Iat != nil && *c.Iat-leeway > now:
		t.Fatalf("accepted iat %v at %v: %s", *c.Iat, testNow, b)
	case p == nil || p.Method != "jwt" || p.Name != c.Sub || strings.TrimSpace(c.Sub) == "":
		t.Fatalf("principal %+v of claims %s", p, b)
	}
	for _, s := range p.Scopes {
		if _, err := ParseScope(string(s)); err != nil {
			t.Fatalf("principal scope %q: %v", s, err)
		}
	}
}
