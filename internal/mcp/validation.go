package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The SDK validates a tool's arguments against its input schema before the handler runs and
// answers a tool error worded for a schema's author:
//
//	validating "arguments": validating root: validating /properties/confidence: maximum: 2/1 is greater than 1.000000
//
// argumentErrors rewords it as every other refusal of bad input is worded, naming the argument
// first (invalid argument "confidence": maximum: 2/1 is greater than 1.000000), and counts it.
const schemaErrorPrefix = `validating "arguments": `

func argumentErrors(metrics *Metrics) sdk.Middleware {
	return func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			call, isCall := req.(*sdk.CallToolRequest)
			if isCall && call.Params != nil {
				// "arguments": null (or none) is no arguments. The SDK v1.8.0 decodes null into a
				// nil map and then panics applying a schema's defaults to it.
				if a := bytes.TrimSpace(call.Params.Arguments); len(a) == 0 || bytes.Equal(a, []byte("null")) {
					call.Params.Arguments = json.RawMessage("{}")
				}
			}
			res, err := next(ctx, method, req)
			if !isCall || err != nil {
				return res, err
			}
			r, ok := res.(*sdk.CallToolResult)
			if !ok || !r.IsError || len(r.Content) != 1 {
				return res, err
			}
			tc, ok := r.Content[0].(*sdk.TextContent)
			if !ok || !strings.HasPrefix(tc.Text, schemaErrorPrefix) {
				return res, err
			}
			tc.Text = rewordSchemaError(tc.Text)
			metrics.count(call.Params.Name, "invalid")
			return res, err
		}
	}
}

// recoverPanics turns a panic while handling a request into an internal error of that
// request, logged, instead of the end of the process (the SDK runs handlers on goroutines of
// its own, outside net/http's recovery).
func recoverPanics(logger *slog.Logger) sdk.Middleware {
	return func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (res sdk.Result, err error) {
			defer func() {
				if p := recover(); p != nil {
					logger.Error("request handler panicked", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					res, err = nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "internal error"}
				}
			}()
			return next(ctx, method, req)
		}
	}
}

// rewordSchemaError turns the SDK's validation message into one naming the argument.
func rewordSchemaError(text string) string {
	detail := strings.TrimPrefix(strings.TrimPrefix(text, schemaErrorPrefix), "validating root: ")
	var pointer string
	for strings.HasPrefix(detail, "validating /") {
		i := strings.Index(detail, ": ")
		if i < 0 {
			break
		}
		pointer, detail = detail[len("validating "):i], detail[i+2:]
	}
	arg := argumentPath(pointer)
	for _, form := range []struct{ prefix, reason string }{
		{"required: missing properties: ", "required"},
		{"unexpected additional properties ", "not an argument of this tool (see its input schema)"},
	} {
		if list, ok := strings.CutPrefix(detail, form.prefix); ok {
			var names []string
			if json.Unmarshal([]byte(list), &names) == nil && len(names) > 0 {
				quoted := make([]string, len(names))
				for i, n := range names {
					quoted[i] = fmt.Sprintf("%q", join(arg, n))
				}
				if len(quoted) == 1 {
					return fmt.Sprintf("invalid argument %s: %s", quoted[0], form.reason)
				}
				return fmt.Sprintf("invalid arguments %s: %s", strings.Join(quoted, ", "), form.reason)
			}
		}
	}
	return (&ArgError{Arg: arg, Reason: detail}).Error()
}

// argumentPath turns a schema pointer (/properties/applies_to/items/properties/name) into
// the argument it validates (applies_to[].name).
func argumentPath(pointer string) string {
	var b strings.Builder
	parts := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i := 0; i < len(parts); i++ {
		switch parts[i] {
		case "properties":
			if i+1 < len(parts) {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(parts[i+1])
				i++
			}
		case "items":
			b.WriteString("[]")
		}
	}
	return b.String()
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}
