package natsdeploy_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/natsdev"
	"github.com/engram-memory/engram/internal/stream"
)

// secured is a server running deploy/nats/accounts.conf, with two tenants' agents.
type secured struct {
	srv       *server.Server
	passwords map[string]string // service user -> plain password
	agents    map[string]nkeys.KeyPair
	admin     jetstream.JetStream
}

// startSecured copies accounts.conf into a temporary directory beside a server
// configuration that includes it and an agents.conf written with AgentUserConf, so the
// server runs exactly the file operators deploy.
func startSecured(t *testing.T, tenants ...string) *secured {
	t.Helper()
	return startSecuredWithLegacy(t, nil, tenants...)
}

// legacyAgentConf is an agent entry as memctl nats-user wrote it before issue 12 finding 10:
// one pattern allow, mem.<token>.*, that lets through user_erased and the literal wildcard
// tokens. Such entries may still be deployed; the account's exports must hold anyway.
func legacyAgentConf(t *testing.T, id, pub string) string {
	t.Helper()
	p, err := natsdeploy.Agent(id)
	if err != nil {
		t.Fatal(err)
	}
	return "  {\n    nkey: " + pub + "\n    permissions: {\n      publish: { allow: [\"mem." + p.Token +
		".*\"] }\n      subscribe: { allow: [\"" + p.Subscribe + "\"] }\n    }\n  }\n"
}

// startSecuredWithLegacy is startSecured with some agents of the legacy entry's form.
func startSecuredWithLegacy(t *testing.T, legacy []string, tenants ...string) *secured {
	t.Helper()
	dir := t.TempDir()
	accounts, err := os.ReadFile("accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := &secured{passwords: map[string]string{}, agents: map[string]nkeys.KeyPair{}}
	var users strings.Builder
	users.WriteString("users: [\n")
	for _, id := range tenants {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		entry, err := natsdeploy.AgentUserConf(id, pub)
		if err != nil {
			t.Fatal(err)
		}
		users.WriteString(entry)
		s.agents[id] = kp
	}
	for _, id := range legacy {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		users.WriteString(legacyAgentConf(t, id, pub))
		s.agents[id] = kp
	}
	users.WriteString("]\n")
	for name, content := range map[string]string{
		"accounts.conf": string(accounts),
		"agents.conf":   users.String(),
		"server.conf":   "server_name: engram-auth-test\njetstream { store_dir: \"" + filepath.Join(dir, "js") + "\" }\ninclude \"accounts.conf\"\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Passwords reach the configuration through the environment, as in production; the
	// admin's as a bcrypt hash, the form docs/security.md recommends.
	for _, u := range []struct{ user, env string }{
		{"engram-admin", "ENGRAM_NATS_ADMIN_PASSWORD"},
		{"engram-ingestor", "ENGRAM_NATS_INGESTOR_PASSWORD"},
		{"engram-projector", "ENGRAM_NATS_PROJECTOR_PASSWORD"},
		{"engram-query", "ENGRAM_NATS_QUERY_PASSWORD"},
	} {
		pw := u.user + "-" + events.NewID()
		s.passwords[u.user] = pw
		val := pw
		if u.user == "engram-admin" {
			h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			val = string(h)
		}
		t.Setenv(u.env, val)
	}
	s.srv, err = natsdev.Start(natsdev.Options{ConfigFile: filepath.Join(dir, "server.conf"), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.srv.Shutdown)
	_, s.admin, _ = s.service(t, "admin")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := stream.Ensure(ctx, s.admin, 2*time.Minute); err != nil {
		t.Fatalf("admin applies the streams: %v", err)
	}
	// The ingestor's door, as the ingestor's user: agents' events reach the stream through it.
	inc, _, _ := s.service(t, "ingestor")
	door, err := stream.OpenDoor(inc, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatalf("the ingestor opens the agents' door: %v", err)
	}
	if err := inc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = door.Close() })
	return s
}

// violations collects the server's permission errors of one connection.
type violations chan error

func (v violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		select {
		case v <- err:
		default:
		}
	}
}

// wait returns the next permission violation mentioning want, failing the test without one.
func (v violations) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-v:
			if strings.Contains(err.Error(), want) {
				return
			}
		case <-deadline:
			t.Fatalf("no permissions violation for %q from the server", want)
		}
	}
}

func (s *secured) connect(t *testing.T, opts ...nats.Option) (*nats.Conn, violations) {
	t.Helper()
	v := make(violations, 64)
	nc, err := nats.Connect(s.srv.ClientURL(), append(opts, nats.ErrorHandler(v.handler))...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

// service connects as the NATS user engram-<name>, with the inbox prefix app.NewNATS uses
// for the service of that name (the admin keeps the default).
func (s *secured) service(t *testing.T, name string) (*nats.Conn, jetstream.JetStream, violations) {
	t.Helper()
	user := "engram-" + name
	opts := []nats.Option{nats.UserInfo(user, s.passwords[user])}
	if name != "admin" {
		opts = append(opts, nats.CustomInboxPrefix(app.InboxPrefix(name)))
	}
	nc, v := s.connect(t, opts...)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, v
}

func (s *secured) agent(t *testing.T, id string, inbox bool) (*nats.Conn, jetstream.JetStream, violations) {
	t.Helper()
	kp := s.agents[id]
	pub, _ := kp.PublicKey()
	opts := []nats.Option{nats.Nkey(pub, kp.Sign)}
	if inbox {
		p, err := natsdeploy.Agent(id)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, nats.CustomInboxPrefix(p.InboxPrefix))
	}
	nc, v := s.connect(t, opts...)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, v
}

func userEvent(t *testing.T, user string) *nats.Msg {
	t.Helper()
	m, err := events.Encode(&events.Event{
		ID: events.NewID(), Source: "/engram/test", User: user, Time: time.Now(),
		Data: events.UserUpserted{UserID: events.UserID(user), Identifier: user},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// stored counts the memory stream's messages of one tenant, as the admin sees them.
func (s *secured) stored(t *testing.T, user string) uint64 {
	t.Helper()
	tok, err := events.EncodeToken(user)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := s.admin.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("mem."+tok+".>"))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// short is the context of a call the server must refuse: a refused request gets no reply.
func short(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	t.Cleanup(cancel)
	return ctx
}

// cannotRead checks that a connection can neither read the memory stream through JetStream's
// API nor subscribe to its subjects: the server refuses each request's publish (a refused
// request gets no reply, so the violation is the server's answer) and the subscription.
// Purging is checked apart (cannotPurge): the ingestor may purge, to finish an erasure.
func cannotRead(t *testing.T, nc *nats.Conn, v violations, allowed ...string) {
	t.Helper()
	for _, subj := range []string{
		"$JS.API.CONSUMER.CREATE." + stream.MemoryStream + ".spy",
		"$JS.API.CONSUMER.CREATE." + stream.MemoryStream + ".spy.mem.>",
		"$JS.API.CONSUMER.DURABLE.CREATE." + stream.MemoryStream + ".spy",
		"$JS.API.CONSUMER.MSG.NEXT." + stream.MemoryStream + ".projector-p0",
		"$JS.API.STREAM.MSG.GET." + stream.MemoryStream,
		"$JS.API.DIRECT.GET." + stream.MemoryStream,
		"$JS.API.DIRECT.GET." + stream.MemoryStream + ".mem.x.y",
		"$JS.API.STREAM.DELETE." + stream.MemoryStream,
	} {
		if slices.Contains(allowed, subj) {
			continue
		}
		if err := nc.PublishRequest(subj, nc.NewRespInbox(), []byte(`{"seq":1}`)); err != nil {
			t.Fatal(err)
		}
		v.wait(t, `Publish to "`+subj+`"`)
	}
	// Neither the stream's subjects nor replies meant for others (the projector's fetched
	// events arrive on its inbox).
	for _, subj := range []string{"mem.>", "_INBOX.>", app.InboxPrefix("projector") + ".>", ">"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		v.wait(t, `Subscription to "`+subj+`"`)
	}
}

// cannotConsume checks, through the client API, that no consumer can be made on MEM.
func cannotConsume(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	if _, err := js.CreateOrUpdateConsumer(short(t), stream.MemoryStream, jetstream.ConsumerConfig{Name: "spy"}); err == nil {
		t.Error("created a consumer on MEM")
	}
}

func TestPermissions(t *testing.T) {
	sara, liam := "sara+"+events.NewID()[24:]+"@omg.test", "liam+"+events.NewID()[24:]+"@omg.test"
	s := startSecured(t, sara, liam)

	t.Run("no anonymous or wrong credentials", func(t *testing.T) {
		if nc, err := nats.Connect(s.srv.ClientURL()); err == nil {
			nc.Close()
			t.Error("connected without credentials")
		}
		if nc, err := nats.Connect(s.srv.ClientURL(), nats.UserInfo("engram-ingestor", "wrong")); err == nil {
			nc.Close()
			t.Error("connected with a wrong password")
		}
	})

	t.Run("ingestor publishes and reads nothing", func(t *testing.T) {
		nc, js, v := s.service(t, "ingestor")
		// What every service does at start-up and for readiness.
		if err := stream.Ensure(t.Context(), js, 2*time.Minute); err != nil {
			t.Fatalf("apply streams: %v", err)
		}
		if err := stream.Ping(t.Context(), js); err != nil {
			t.Fatalf("ping: %v", err)
		}
		pub := stream.NewPublisher(js, 5*time.Second)
		before := s.stored(t, sara)
		m := userEvent(t, sara)
		if _, err := pub.PublishMsg(t.Context(), m.Header.Get(nats.MsgIdHdr), m); err != nil {
			t.Fatalf("publish: %v", err)
		}
		batch := []*nats.Msg{userEvent(t, sara), userEvent(t, sara)}
		if _, err := pub.PublishBatchMsgs(t.Context(), []string{batch[0].Header.Get(nats.MsgIdHdr), batch[1].Header.Get(nats.MsgIdHdr)}, batch); err != nil {
			t.Fatalf("publish batch: %v", err)
		}
		if got := s.stored(t, sara); got != before+3 {
			t.Errorf("stored %d events of sara, want %d", got, before+3)
		}
		// Its only reads: a user's last tombstone and last re-creation, by subject (the
		// ingestor's 410 for an erased user).
		cannotRead(t, nc, v)
		back := "back+" + events.NewID()[24:] + "@omg.test"
		if e, err := stream.LastErasure(t.Context(), nc, back); err != nil || e.Erased() || e.Tombstone != 0 {
			t.Fatalf("back's erasures before any: %+v, %v", e, err)
		}
		tomb, err := events.Encode(&events.Event{ID: events.NewID(), Source: "/engram/test", User: back, Time: time.Now(),
			Data: events.UserErased{Identifier: back}})
		if err != nil {
			t.Fatal(err)
		}
		tombAt, err := pub.PublishMsg(t.Context(), tomb.Header.Get(nats.MsgIdHdr), tomb)
		if err != nil {
			t.Fatalf("publish a tombstone: %v", err)
		}
		if e, err := stream.LastErasure(t.Context(), nc, back); err != nil || !e.Erased() || e.Tombstone != tombAt.Sequence {
			t.Fatalf("back's erasures after a tombstone at %d: %+v, %v", tombAt.Sequence, e, err)
		}
		refused := userEvent(t, back)
		if _, err := pub.PublishMsg(t.Context(), refused.Header.Get(nats.MsgIdHdr), refused); err != nil {
			t.Fatalf("publish: %v", err)
		}
		again, err := events.Encode(&events.Event{ID: events.NewID(), Source: "/engram/test", User: back, Time: time.Now(),
			Data: events.UserRecreated{UserID: events.UserID(back), Identifier: back}})
		if err != nil {
			t.Fatal(err)
		}
		againAt, err := pub.PublishMsg(t.Context(), again.Header.Get("ce-id"), again)
		if err != nil {
			t.Fatalf("publish a re-creation: %v", err)
		}
		if e, err := stream.LastErasure(t.Context(), nc, back); err != nil || e.Erased() || e.Recreation != againAt.Sequence || e.RecreationID != again.Header.Get("ce-id") {
			t.Fatalf("back's erasures after a re-creation at %d: %+v, %v", againAt.Sequence, e, err)
		}
		// The purge of a re-creation: the refused writes between the two go, the tombstone
		// and the re-creation stay.
		if err := stream.PurgeRefused(t.Context(), js, back, againAt.Sequence); err != nil {
			t.Fatalf("purge the refused writes: %v", err)
		}
		if got := s.stored(t, back); got != 2 {
			t.Errorf("back holds %d events after the re-creation's purge, want 2 (tombstone and re-creation)", got)
		}
		// Not another kind's last message, nor a subject of no partition (cannotRead tried
		// the request-in-body form).
		tok, _ := events.EncodeToken(back)
		for _, subj := range []string{
			"$JS.API.DIRECT.GET." + stream.MemoryStream + ".mem." + tok + ".message_added.0",
			"$JS.API.DIRECT.GET." + stream.MemoryStream + ".mem." + tok + ".user_erased",
		} {
			if err := nc.PublishRequest(subj, nc.NewRespInbox(), nil); err != nil {
				t.Fatal(err)
			}
			v.wait(t, `Publish to "`+subj+`"`)
		}
		// Erasure: the ingestor purges an erased user's events below the tombstone.
		gone := "gone@omg.com"
		g := userEvent(t, gone)
		if _, err := pub.PublishMsg(t.Context(), g.Header.Get(nats.MsgIdHdr), g); err != nil {
			t.Fatalf("publish: %v", err)
		}
		if err := stream.PurgeTenant(t.Context(), js, gone, 1<<62); err != nil {
			t.Fatalf("purge an erased user's events: %v", err)
		}
		if got := s.stored(t, gone); got != 0 {
			t.Errorf("%d events of %s left after the purge", got, gone)
		}
		if err := nc.PublishRequest("$JS.API.STREAM.INFO.MEM", nc.NewRespInbox(), nil); err != nil {
			t.Fatal(err)
		}
		v.wait(t, `Publish to "$JS.API.STREAM.INFO.MEM"`)
		if err := nc.Publish("dlq.mem.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
		v.wait(t, `Publish to "dlq.mem.x"`)
	})

	t.Run("projector consumes, acks and dead-letters", func(t *testing.T) {
		nc, js, v := s.service(t, "projector")
		if err := stream.Ensure(t.Context(), js, 2*time.Minute); err != nil {
			t.Fatalf("apply streams: %v", err)
		}
		consumers, err := stream.EnsureProjectorConsumers(t.Context(), js)
		if err != nil {
			t.Fatalf("consumers: %v", err)
		}
		tok, _ := events.EncodeToken(sara)
		c := consumers[events.Partition(tok, natsdeploy.Partitions)]
		batch, err := c.Fetch(3, jetstream.FetchMaxWait(5*time.Second), jetstream.FetchPriorityGroup("projector")) // the ingestor stored 3
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		n := 0
		for m := range batch.Messages() {
			if err := m.DoubleAck(t.Context()); err != nil {
				t.Fatalf("ack: %v", err)
			}
			n++
		}
		if err := batch.Error(); err != nil || n == 0 {
			t.Fatalf("fetched %d messages, err %v", n, err)
		}
		if _, err := js.Publish(t.Context(), "dlq.mem."+tok+".user_upserted", []byte(`{}`)); err != nil {
			t.Fatalf("dead-letter: %v", err)
		}
		// Applying an erasure, it purges the tenant's dead letters; it purges no events.
		if err := stream.PurgeDeadLetters(t.Context(), js, sara); err != nil {
			t.Errorf("purge the dead letters of an erased tenant: %v", err)
		}
		cannotPurge(t, nc, v)
		mem, err := js.Stream(t.Context(), stream.MemoryStream)
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		// The fence and the lag count read the partition's next event by subject (direct get).
		if m, err := mem.GetMsg(t.Context(), 1, jetstream.WithGetMsgSubject("mem.*.*."+strconv.Itoa(events.Partition(tok, natsdeploy.Partitions)))); err != nil || m == nil {
			t.Errorf("next event of the partition: %v", err)
		}
		// Progress notifications for the query service, and releasing a pin.
		progress, _, _ := s.service(t, "query")
		sub, err := progress.SubscribeSync(stream.ProgressFilter("projector"))
		if err != nil {
			t.Fatal(err)
		}
		if err := progress.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish(stream.ProgressSubject("projector", 3), []byte("42")); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "42" {
			t.Errorf("progress notification: %v", err)
		}
		// Unpinning a consumer nobody holds is refused by JetStream, not by a permission: the
		// request must reach it (a permission violation would time out instead).
		if err := mem.UnpinConsumer(t.Context(), c.CachedInfo().Name, "projector"); err != nil {
			var apiErr *jetstream.APIError
			if !errors.As(err, &apiErr) {
				t.Errorf("unpin: %v", err)
			}
		}
		// It consumes; it does not write events.
		if err := nc.Publish("mem."+tok+".user_upserted", []byte("x")); err != nil {
			t.Fatal(err)
		}
		v.wait(t, `Publish to "mem.`+tok+`.user_upserted"`)
	})

	t.Run("query needs JetStream reachability only", func(t *testing.T) {
		nc, js, v := s.service(t, "query")
		if err := stream.Ensure(t.Context(), js, 2*time.Minute); err != nil {
			t.Fatalf("apply streams: %v", err)
		}
		if err := stream.Ping(t.Context(), js); err != nil {
			t.Fatalf("ping: %v", err)
		}
		// Read-your-writes across partitions reads the stream's info and a partition's next
		// event by subject; it makes no consumer and subscribes to no event.
		mem, err := js.Stream(t.Context(), stream.MemoryStream)
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		if _, err := mem.GetMsg(t.Context(), 1, jetstream.WithGetMsgSubject("mem.*.*.0")); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("next event of a partition: %v", err)
		}
		cannotRead(t, nc, v, "$JS.API.DIRECT.GET."+stream.MemoryStream)
		cannotPurge(t, nc, v)
		// A fate read gets a dead letter by its sequence (MEM_DLQ allows no direct get): the
		// request reaches JetStream, which answers, here that there is no such message.
		resp, err := nc.Request("$JS.API.STREAM.MSG.GET."+stream.DeadLetterStream, []byte(`{"seq":999999}`), 5*time.Second)
		if err != nil {
			t.Errorf("dead letter by sequence: %v", err)
		} else if !strings.Contains(string(resp.Data), `"error"`) && !strings.Contains(string(resp.Data), `"message"`) {
			t.Errorf("dead letter by sequence: answer %s", resp.Data)
		}
		if err := nc.Publish("mem.x.y", []byte("x")); err != nil {
			t.Fatal(err)
		}
		v.wait(t, `Publish to "mem.x.y"`)
		// It only listens to the projectors' progress.
		if err := nc.Publish(stream.ProgressSubject("projector", 0), []byte("1")); err != nil {
			t.Fatal(err)
		}
		v.wait(t, `Publish to "`+stream.ProgressSubject("projector", 0)+`"`)
	})

	t.Run("agent publishes its own tenant only and reads nothing", func(t *testing.T) {
		nc, js, v := s.agent(t, sara, true)
		saraBefore, liamBefore := s.stored(t, sara), s.stored(t, liam)

		ack, err := js.PublishMsg(t.Context(), userEvent(t, sara))
		if err != nil {
			t.Fatalf("own tenant: %v", err)
		}
		if ack.Stream != stream.MemoryStream {
			t.Errorf("ack from stream %q", ack.Stream)
		}
		if got := s.stored(t, sara); got != saraBefore+1 {
			t.Errorf("sara has %d events, want %d", got, saraBefore+1)
		}

		liamTok, _ := events.EncodeToken(liam)
		if _, err := js.PublishMsg(short(t), userEvent(t, liam)); err == nil {
			t.Error("publish on another tenant's subject acknowledged")
		}
		v.wait(t, `Publish to "mem.`+liamTok+`.user_upserted"`)
		// Core publish too, and beyond the stream's three tokens; and on its own tenant, neither
		// an erasure or a re-creation (admin scope, over HTTP only), nor an unknown kind, nor the literal
		// wildcard tokens, which the stream would store without a partition (issue 12
		// finding 10).
		saraTok, _ := events.EncodeToken(sara)
		for _, subj := range []string{"mem." + liamTok + ".user_upserted", "mem." + liamTok + ".a.b", "dlq.mem.x.y",
			"mem." + saraTok + ".user_erased", "mem." + saraTok + ".user_recreated", "mem." + saraTok + ".*", "mem." + saraTok + ".>", "mem." + saraTok + ".no_such_kind",
			"mem.*.user_upserted", "mem.>"} {
			if err := nc.Publish(subj, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			v.wait(t, `Publish to "`+subj+`"`)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := s.stored(t, liam); got != liamBefore {
			t.Errorf("liam has %d events after sara's agent published for him, want %d", got, liamBefore)
		}
		if got := s.stored(t, sara); got != saraBefore+1 {
			t.Errorf("sara has %d events after her agent's refused publishes, want %d", got, saraBefore+1)
		}
		// Through JetStream too: an erasure of its own user is refused, not acknowledged.
		erase, err := events.Encode(&events.Event{ID: events.NewID(), Source: "/engram/agent", User: sara, Time: time.Now(),
			Data: events.UserErased{Identifier: sara}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(short(t), erase); err == nil {
			t.Error("the agent's user_erased was acknowledged")
		}
		v.wait(t, `Publish to "mem.`+saraTok+`.user_erased"`)

		cannotRead(t, nc, v)
		cannotPurge(t, nc, v)
		cannotConsume(t, js)
		if _, err := js.Stream(short(t), stream.MemoryStream); err == nil {
			t.Error("agent read the stream's info")
		}
		// Nor another agent's inbox.
		for _, subj := range []string{natsdeploy.AgentInboxPrefix(liamTok) + ".>"} {
			if _, err := nc.SubscribeSync(subj); err != nil {
				t.Fatal(err)
			}
			v.wait(t, `Subscription to "`+subj+`"`)
		}
	})

	t.Run("data keys: the ingestor keeps them, projector and query read them, agents nothing", func(t *testing.T) {
		user := "keys+" + events.NewID()[24:] + "@omg.test"
		_, ijs, iv := s.service(t, "ingestor")
		if err := stream.Ensure(t.Context(), ijs, 2*time.Minute); err != nil {
			t.Fatalf("apply streams and the key bucket: %v", err)
		}
		store := keys.NewKV(ijs)
		created, err := store.Create(t.Context(), user)
		if err != nil {
			t.Fatalf("ingestor creates a user's keys: %v", err)
		}
		if again, err := store.Create(t.Context(), user); err != nil || again.ID != created.ID {
			t.Fatalf("a second create: %v, %v; want the first set %s", again.ID, err, created.ID)
		}
		rotated, err := store.Rotate(t.Context(), user)
		if err != nil || len(rotated.Keys) != 2 {
			t.Fatalf("ingestor rotates: %d versions, %v", len(rotated.Keys), err)
		}
		for _, svc := range []string{"projector", "query"} {
			nc, js, v := s.service(t, svc)
			if err := stream.Ensure(t.Context(), js, 2*time.Minute); err != nil {
				t.Fatalf("%s applies streams and the key bucket: %v", svc, err)
			}
			got, err := keys.NewKV(js).Get(t.Context(), user)
			if err != nil || got.ID != created.ID || len(got.Keys) != 2 {
				t.Fatalf("%s reads the keys: %+v, %v", svc, got.ID, err)
			}
			for _, subj := range []string{"$KV." + keys.Bucket + ".x", "$JS.API.STREAM.PURGE.KV_" + keys.Bucket,
				"$JS.API.DIRECT.GET.KV_" + keys.Bucket, "$JS.API.STREAM.MSG.GET.KV_" + keys.Bucket, "$JS.API.STREAM.INFO.KV_" + keys.Bucket} {
				if err := nc.PublishRequest(subj, nc.NewRespInbox(), []byte("{}")); err != nil {
					t.Fatal(err)
				}
				v.wait(t, `Publish to "`+subj+`"`)
			}
		}
		anc, _, av := s.agent(t, sara, true)
		for _, subj := range []string{"$KV." + keys.Bucket + "." + events.UserID(sara),
			"$JS.API.DIRECT.GET.KV_" + keys.Bucket + ".$KV." + keys.Bucket + "." + events.UserID(sara)} {
			if err := anc.Publish(subj, nil); err != nil {
				t.Fatal(err)
			}
			av.wait(t, `Publish to "`+subj+`"`)
		}
		if err := store.Destroy(t.Context(), user); err != nil {
			t.Fatalf("ingestor destroys the keys: %v", err)
		}
		if _, err := store.Get(t.Context(), user); !errors.Is(err, keys.ErrNotFound) {
			t.Fatalf("keys after destroy: %v, want ErrNotFound", err)
		}
		// Nor may the ingestor read the bucket otherwise (a whole-bucket read would list users).
		if err := ijs.Conn().PublishRequest("$JS.API.STREAM.MSG.GET.KV_"+keys.Bucket, ijs.Conn().NewRespInbox(), []byte("{}")); err != nil {
			t.Fatal(err)
		}
		iv.wait(t, `Publish to "$JS.API.STREAM.MSG.GET.KV_`+keys.Bucket+`"`)
	})

	t.Run("agent without its inbox prefix gets no acknowledgement", func(t *testing.T) {
		_, js, v := s.agent(t, liam, false)
		if _, err := js.PublishMsg(short(t), userEvent(t, liam)); err == nil {
			t.Error("acknowledged without the inbox prefix")
		}
		v.wait(t, `Subscription to "_INBOX.`)
	})
}

// TestLegacyAgentEntryStillConfined: an agent entry of the old form (allow mem.<token>.*)
// passes the user's own permissions for user_erased and the literal wildcard subjects, but
// the ENGRAM account exports (and AGENTS imports) only the agent kinds' subjects, so none of
// them reaches the stream (issue 12 finding 10).
func TestLegacyAgentEntryStillConfined(t *testing.T) {
	old := "old+" + events.NewID()[24:] + "@omg.test"
	s := startSecuredWithLegacy(t, []string{old})
	nc, js, _ := s.agent(t, old, true)
	tok, _ := events.EncodeToken(old)
	if _, err := js.PublishMsg(t.Context(), userEvent(t, old)); err != nil {
		t.Fatalf("an agent kind: %v", err)
	}
	erase, err := events.Encode(&events.Event{ID: events.NewID(), Source: "/engram/agent", User: old, Time: time.Now(),
		Data: events.UserErased{Identifier: old}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(short(t), erase); err == nil {
		t.Error("the legacy agent's user_erased was acknowledged")
	}
	for _, subj := range []string{"mem." + tok + ".*", "mem." + tok + ".>"} {
		m := userEvent(t, old)
		m.Subject = subj
		if _, err := js.PublishMsg(short(t), m); err == nil {
			t.Errorf("publish on the literal %q acknowledged", subj)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := s.stored(t, old); got != 1 {
		t.Errorf("the legacy agent's tenant holds %d events, want 1 (the upsert)", got)
	}
	// Nothing unpartitioned either (a literal wildcard subject is stored as it came).
	mem, err := s.admin.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := mem.Info(t.Context(), jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	for subj := range info.State.Subjects {
		if strings.Count(subj, ".") != 3 {
			t.Errorf("stored on %q, without a partition", subj)
		}
	}
}

// TestAccountsExportTheAgentKinds: accounts.conf's export and import lists name exactly
// the subjects of natsdeploy.AgentKinds, so a kind added to the catalogue is a decision here.
func TestAccountsExportTheAgentKinds(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(raw)
	for _, k := range events.Kinds {
		exp := `{ service: "` + stream.AgentRoot + `.*.` + string(k) + `", accounts: [AGENTS] }`
		imp := `{ service: { account: ENGRAM, subject: "` + stream.AgentRoot + `.*.` + string(k) + `" }, to: "mem.*.` + string(k) + `" }`
		want := slices.Contains(natsdeploy.AgentKinds(), k)
		if strings.Contains(conf, exp) != want || strings.Contains(conf, imp) != want {
			t.Errorf("kind %s: exported and imported %v, want %v", k, !want, want)
		}
	}
	// Agents' events cross into ENGRAM on agent.*.<kind>, where no stream listens, never on
	// the memory stream's own subjects: only the ingestors' door relays them (stream.Door).
	for _, bad := range []string{`service: "mem.`, `subject: "mem.`, `service: "agent.*.*"`, `subject: "agent.*.*"`} {
		if strings.Contains(conf, bad) {
			t.Errorf("accounts.conf exports or imports %s...", bad)
		}
	}
}

func TestAgentUserConf(t *testing.T) {
	t.Parallel()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	got, err := natsdeploy.AgentUserConf("sara@omg.com", pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"mem.sara_40omg_2Ecom.user_upserted"`, `"mem.sara_40omg_2Ecom.trace_completed"`, `"_INBOX_sara_40omg_2Ecom.>"`, "nkey: " + pub} {
		if !strings.Contains(got, want) {
			t.Errorf("entry lacks %s:\n%s", want, got)
		}
	}
	for _, not := range []string{`"mem.sara_40omg_2Ecom.*"`, `"mem.sara_40omg_2Ecom.>"`, "user_erased", "user_recreated"} {
		if strings.Contains(got, not) {
			t.Errorf("entry allows %s:\n%s", not, got)
		}
	}
	if strings.Contains(got, string(seed)) {
		t.Error("seed in the configuration")
	}
	tests := []struct {
		id, key string
		wantErr error
	}{
		{id: "", key: pub, wantErr: events.ErrInvalidIdentifier},
		{id: "a\nb", key: pub, wantErr: events.ErrInvalidIdentifier},
		{id: "sara@omg.com", key: string(seed)},
		{id: "sara@omg.com", key: "UNOTAKEY"},
	}
	for _, tt := range tests {
		_, err := natsdeploy.AgentUserConf(tt.id, tt.key)
		if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
			t.Errorf("AgentUserConf(%q, %q) = %v, want %v", tt.id, tt.key, err, tt.wantErr)
		}
	}
}

// cannotPurge checks that nc may not purge the memory stream.
func cannotPurge(t *testing.T, nc *nats.Conn, v violations) {
	t.Helper()
	subj := "$JS.API.STREAM.PURGE." + stream.MemoryStream
	if err := nc.PublishRequest(subj, nc.NewRespInbox(), []byte(`{"filter":"mem.>"}`)); err != nil {
		t.Fatal(err)
	}
	v.wait(t, `Publish to "`+subj+`"`)
}
