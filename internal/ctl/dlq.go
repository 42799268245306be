package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/stream"
)

func init() {
	register("dlq", "dead letters: list | show <seq> | retry <seq>|--all | drop <seq>|--all", runDLQ)
}

func runDLQ(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprintln(errOut, "usage: memctl dlq list [--reason R] | show <seq> | retry <seq>... | retry --all [--reason R] | drop <seq>... | drop --all [--reason R]")
		return errUsage
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(errOut)
	natsURL := fs.String("nats-url", envOr(getenv, "NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	reason := fs.String("reason", "", "only dead letters of this reason (e.g. schema_invalid)")
	all := fs.Bool("all", false, "every dead letter (with --reason: every one of that reason)")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	var seqs []uint64
	for _, a := range fs.Args() {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("%q is not a dead-letter sequence number", a)
		}
		seqs = append(seqs, n)
	}
	nc, js, err := connectJS(*natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	s, err := js.Stream(ctx, stream.DeadLetterStream)
	if err != nil {
		return fmt.Errorf("dead-letter stream: %w", err)
	}
	switch sub {
	case "list":
		letters, err := deadLetters(ctx, s, *reason)
		if err != nil {
			return err
		}
		return printDeadLetters(out, letters)
	case "show":
		if len(seqs) != 1 {
			return errors.New("show takes one sequence number")
		}
		m, err := s.GetMsg(ctx, seqs[0])
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", seqs[0], err)
		}
		fmt.Fprintf(out, "sequence: %d\nstored:   %s\nsubject:  %s\n", m.Sequence, m.Time.UTC().Format(time.RFC3339Nano), m.Subject)
		header, data := openLetter(ctx, js, m, out)
		names := make([]string, 0, len(header))
		for k := range header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(out, "%s: %s\n", k, strings.Join(header[k], ", "))
		}
		fmt.Fprintf(out, "\n%s\n", data)
		return nil
	case "retry", "drop":
		if len(seqs) == 0 && !*all {
			return fmt.Errorf("%s takes sequence numbers or --all", sub)
		}
		if *all {
			letters, err := deadLetters(ctx, s, *reason)
			if err != nil {
				return err
			}
			for _, l := range letters {
				seqs = append(seqs, l.Sequence)
			}
		}
		refused := 0
		defer func() {
			if refused > 0 {
				fmt.Fprintf(out, "%d dead letters refused: their users were erased after them (drop them: memctl dlq drop <seq>)\n", refused)
			}
		}()
		for _, seq := range seqs {
			if sub == "retry" {
				err := retryDeadLetter(ctx, js, s, seq)
				if errors.Is(err, errErasedSince) {
					refused++
					fmt.Fprintf(out, "refused dead letter %d: %v\n", seq, err)
					continue
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "retried dead letter %d\n", seq)
				continue
			}
			if err := s.DeleteMsg(ctx, seq); err != nil {
				return fmt.Errorf("drop %d: %w", seq, err)
			}
			fmt.Fprintf(out, "dropped dead letter %d\n", seq)
		}
		return nil
	}
	return fmt.Errorf("unknown dlq command %q (list, show, retry, drop)", sub)
}

// openLetter returns a dead letter's headers and body with the event opened when it is
// sealed (events.Codec, the data keys of js); when it does not open (its user was erased, so
// its key is destroyed) it says so on out and returns the letter as stored.
func openLetter(ctx context.Context, js jetstream.JetStream, m *jetstream.RawStreamMsg, out io.Writer) (nats.Header, []byte) {
	if m.Header.Get(events.HeaderKey) == "" {
		return m.Header, m.Data
	}
	h, d, err := events.Codec{Keys: keys.Default(js)}.Open(ctx, m.Header.Get(projection.HeaderDlqSubject), m.Header, m.Data)
	if err == nil {
		fmt.Fprintf(out, "sealed:   opened with data key %s\n", m.Header.Get(events.HeaderKey))
		return h, d
	}
	fmt.Fprintf(out, "sealed:   does not open (%v)\n", err)
	return m.Header, m.Data
}

func deadLetters(ctx context.Context, s jetstream.Stream, reason string) ([]*jetstream.RawStreamMsg, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if reason == "" || m.Header.Get(projection.HeaderDlqReason) == reason {
			out = append(out, m)
		}
	}
	return out, nil
}

func printDeadLetters(out io.Writer, letters []*jetstream.RawStreamMsg) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tDEAD-LETTERED\tREASON\tEVENT\tORIGINAL\tERROR")
	for _, m := range letters {
		h := m.Header
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s@%s\t%s\n", m.Sequence, m.Time.UTC().Format(time.RFC3339), h.Get(projection.HeaderDlqReason),
			h.Get("ce-id"), h.Get(projection.HeaderDlqSubject), h.Get(projection.HeaderDlqSeq), clip(h.Get(projection.HeaderDlqError), 100))
	}
	if len(letters) == 0 {
		fmt.Fprintln(tw, "(no dead letters)")
	}
	return tw.Flush()
}

// errErasedSince refuses the retry of a dead letter whose user was erased after its event.
var errErasedSince = errors.New("the user was erased after this event")

// retryDeadLetter publishes the original event again on its tenant's subject, under a new
// message id (the original id may still be in the duplicate window), then deletes the dead
// letter. The event keeps its CloudEvents id; projection is idempotent. It refuses
// (errErasedSince) an event stored before its tenant's latest erasure tombstone: published
// again above the tombstone, it would bring the erased user's data back.
func retryDeadLetter(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, seq uint64) error {
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", seq, err)
	}
	orig := m.Header.Get(projection.HeaderDlqSubject)
	parts := strings.Split(orig, ".")
	if len(parts) < 3 {
		return fmt.Errorf("dead letter %d: original subject %q is not mem.<tenant>.<kind>", seq, orig)
	}
	if err := erasedSince(ctx, js, parts, m.Header.Get(projection.HeaderDlqSeq)); err != nil {
		return fmt.Errorf("dead letter %d: %w", seq, err)
	}
	// A dead letter without a copy of its event (too big to copy) is retried from the event
	// itself, still in MEM at its sequence (unless erased since).
	src, data := m.Header, m.Data
	if m.Header.Get(projection.HeaderDlqOmitted) != "" {
		mem, err := js.Stream(ctx, stream.MemoryStream)
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", seq, err)
		}
		origSeq, err := strconv.ParseUint(m.Header.Get(projection.HeaderDlqSeq), 10, 64)
		if err != nil {
			return fmt.Errorf("dead letter %d: no original sequence: %w", seq, err)
		}
		orig, err := mem.GetMsg(ctx, origSeq)
		if err != nil {
			return fmt.Errorf("dead letter %d: its event %d is not in %s any more: %w", seq, origSeq, stream.MemoryStream, err)
		}
		src, data = orig.Header, orig.Data
	}
	h := nats.Header{}
	for k, v := range src {
		if strings.HasPrefix(k, "Engram-Dlq-") || strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		h[k] = v
	}
	msg := &nats.Msg{Subject: strings.Join(parts[:3], "."), Header: h, Data: data}
	id := "dlq-retry-" + strconv.FormatUint(seq, 10) + "-" + m.Header.Get(projection.HeaderDlqMsgID)
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(stream.MemoryStream)); err != nil {
		return fmt.Errorf("retry %d: %w", seq, stream.Classify(err))
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("retry %d: published, but deleting the dead letter failed: %w", seq, err)
	}
	return nil
}

// erasedSince answers errErasedSince when the tenant of the stored subject parts
// (mem.<token>.<kind>.<partition>) has an erasure tombstone stored after the event's sequence.
// A tenant's events are all in one partition, so its latest tombstone is the last message on
// mem.<token>.user_erased.<partition>.
func erasedSince(ctx context.Context, js jetstream.JetStream, parts []string, eventSeq string) error {
	seq, err := strconv.ParseUint(eventSeq, 10, 64)
	if err != nil || len(parts) != 4 {
		// Without its sequence or partition the letter cannot be placed against a tombstone;
		// any tombstone of the tenant refuses it.
		seq = 0
	}
	mem, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return err
	}
	subject := strings.Join([]string{parts[0], parts[1], string(events.KindUserErased), "*"}, ".")
	if len(parts) == 4 {
		subject = strings.Join([]string{parts[0], parts[1], string(events.KindUserErased), parts[3]}, ".")
	}
	last, err := mem.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look for an erasure of the tenant: %w", err)
	}
	if last.Sequence > seq {
		return fmt.Errorf("%w (tombstone at stream sequence %d, the event at %s)", errErasedSince, last.Sequence, eventSeq)
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
