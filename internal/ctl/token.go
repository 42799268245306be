package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/engram-memory/engram/internal/auth"
)

func init() {
	register("token", "mint an HS256 JWT for given users and scopes (operators, tests)", runToken)
	register("apikey", "generate an API key and print its entry for the API keys file", runAPIKey)
}

// multiFlag collects a repeatable flag; each value may also hold several, comma-separated.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*m = append(*m, s)
		}
	}
	return nil
}

func parseScopes(ss []string) ([]auth.Scope, error) {
	var out []auth.Scope
	var errs []error
	for _, s := range ss {
		for _, f := range strings.Fields(s) {
			sc, err := auth.ParseScope(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("--scope: %w", err))
				continue
			}
			out = append(out, sc)
		}
	}
	return out, errors.Join(errs...)
}

func runToken(_ context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(errOut)
	secretFile := fs.String("secret-file", getenv("AUTH_HS256_SECRET_FILE"), "HS256 secret file (env AUTH_HS256_SECRET_FILE)")
	sub := fs.String("sub", "", "subject: the principal's name, e.g. agent-7 (required)")
	var users, scopes multiFlag
	fs.Var(&users, "user", "user pattern it may act for: sara@omg.com, *@omg.com or * (repeatable)")
	fs.Var(&scopes, "scope", "scope: read, write or admin (repeatable)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	issuer := fs.String("issuer", getenv("AUTH_ISSUER"), "iss claim (env AUTH_ISSUER)")
	audience := fs.String("audience", getenv("AUTH_AUDIENCE"), "aud claim (env AUTH_AUDIENCE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secretFile == "" {
		return errors.New("--secret-file (or AUTH_HS256_SECRET_FILE) is required")
	}
	secret, err := auth.LoadHS256Secret(*secretFile)
	if err != nil {
		return err
	}
	sc, err := parseScopes(scopes)
	if err != nil {
		return err
	}
	tok, err := auth.SignHS256(secret, auth.TokenSpec{
		Subject: *sub, Users: users, Scopes: sc, TTL: *ttl, Issuer: *issuer, Audience: *audience,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}

func runAPIKey(_ context.Context, args []string, out, errOut io.Writer, _ func(string) string) error {
	fs := flag.NewFlagSet("apikey", flag.ContinueOnError)
	fs.SetOutput(errOut)
	name := fs.String("name", "", "the principal's name, e.g. projector-tools (required)")
	var users, scopes multiFlag
	fs.Var(&users, "user", "user pattern it may act for: sara@omg.com, *@omg.com or * (repeatable)")
	fs.Var(&scopes, "scope", "scope: read, write or admin (repeatable)")
	keyOut := fs.String("key-out", "", "write the key to this new file (mode 0600) instead of standard error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var errs []error
	if strings.TrimSpace(*name) == "" {
		errs = append(errs, errors.New("--name is required"))
	}
	if _, err := auth.ParsePatterns(users); err != nil {
		errs = append(errs, fmt.Errorf("--user: %w", err))
	}
	sc, err := parseScopes(scopes)
	if err != nil {
		errs = append(errs, err)
	}
	if len(scopes) == 0 {
		errs = append(errs, errors.New("--scope: at least one of read, write, admin"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	key, hash, err := auth.NewAPIKey()
	if err != nil {
		return err
	}
	entry := auth.APIKeyEntry{KeySHA256: hash, Name: *name, Users: users, Scopes: make([]string, 0, len(sc))}
	if entry.Users == nil {
		entry.Users = []string{}
	}
	for _, s := range sc {
		entry.Scopes = append(entry.Scopes, string(s))
	}
	if *keyOut != "" {
		if err := writeSecret(*keyOut, key); err != nil {
			return err
		}
		fmt.Fprintf(errOut, "api key written to %s; add the entry below to the API keys file\n", *keyOut)
	} else {
		fmt.Fprintf(errOut, "api key (shown once, only its hash is kept; give it to the client): %s\n", key)
	}
	raw, err := json.MarshalIndent(entry, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(raw))
	return err
}

// writeSecret writes a secret to a new file only its owner can read.
func writeSecret(path, secret string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, secret); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
