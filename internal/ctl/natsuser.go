package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nkeys"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
)

func init() {
	register("nats-user", "print the NATS user entry (deploy/nats/agents.conf) of a tenant's agent", runNATSUser)
}

func runNATSUser(_ context.Context, args []string, out, errOut io.Writer, _ func(string) string) error {
	fs := flag.NewFlagSet("nats-user", flag.ContinueOnError)
	fs.SetOutput(errOut)
	user := fs.String("user", "", "the tenant's user identifier, e.g. sara@omg.com (required)")
	pub := fs.String("nkey", "", "the agent's public user nkey (U...), if it made its own key pair; otherwise one is generated")
	seedOut := fs.String("seed-out", "", "write a generated seed to this new file (mode 0600) instead of standard error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("--user is required")
	}
	perms, err := natsdeploy.Agent(*user)
	if err != nil {
		return err
	}
	var seed []byte
	if *pub == "" {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return err
		}
		if *pub, err = kp.PublicKey(); err != nil {
			return err
		}
		if seed, err = kp.Seed(); err != nil {
			return err
		}
	} else if *seedOut != "" {
		return errors.New("--seed-out needs a generated key pair: leave out --nkey")
	}
	entry, err := natsdeploy.AgentUserConf(*user, *pub)
	if err != nil {
		return err
	}
	if seed != nil {
		if *seedOut != "" {
			if err := writeSecret(*seedOut, string(seed)); err != nil {
				return err
			}
			fmt.Fprintf(errOut, "agent seed written to %s\n", *seedOut)
		} else {
			fmt.Fprintf(errOut, "agent seed (shown once; give it to the agent, keep it secret): %s\n", seed)
		}
	}
	fmt.Fprintf(errOut, "the agent connects with this nkey and inbox prefix %s, publishes on %s; add the entry to the AGENTS users in agents.conf and reload the server\n", perms.InboxPrefix, strings.Join(perms.Publish, " "))
	_, err = fmt.Fprint(out, entry)
	return err
}
