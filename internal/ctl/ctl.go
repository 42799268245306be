// Package ctl implements memctl's commands. Each command is a function of its arguments and
// output streams, so tests run them in-process.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// command is one memctl sub-command.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(context.Context, []string, io.Writer, io.Writer, func(string) string) error) {
	commands[name] = command{summary: summary, run: run}
}

// errUsage marks an error whose message is the usage already printed.
var errUsage = errors.New("usage")

// Main runs memctl with args and returns the process exit code.
func Main(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(errOut)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(errOut, "memctl: unknown command %q\n", args[0])
		usage(errOut)
		return 2
	}
	if err := cmd.run(ctx, args[1:], out, errOut, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(errOut, "memctl %s: %v\n", args[0], err)
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: memctl <command> [flags]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, b.String())
}
