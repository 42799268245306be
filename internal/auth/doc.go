// Package auth authenticates HTTP requests (bearer JWTs signed with HS256, RS256 or EdDSA, or
// static API keys) into a Principal that names the users it may act for and its scopes, and
// authorizes each use of a user identifier against it. docs/security.md is the operator's guide.
package auth
