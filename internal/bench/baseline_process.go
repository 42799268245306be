package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The raw sync publish baseline from a process of its own.
//
// With the embedded NATS (the default stack) the driver's own publishes never leave the
// process that stores them: the client's write, the server's read and its acknowledgement
// are goroutines of one program, no process is woken. The ingestor is a NATS client in a
// process of its own, as every client of a real nats-server is, and on two cores that hop
// is most of a synchronous publish: session 16 measured 201 µs p50 at c=1 from a second
// process against 60 µs from the server's own (docs/BENCHMARKS.md, "Issue 17, session 16").
// So the single-command HTTP rows compare with raw publishes from a process of their own
// (`memctl bench-publish`, started by the driver), the same messages to the same stream at
// the same concurrency, and the in-process publishes stay in the table beside them.

// RawPublishSpec is what the driver hands `memctl bench-publish`: where to publish, what,
// how many at once and for how long.
type RawPublishSpec struct {
	NATSURL     string          `json:"nats_url"`
	IDPrefix    string          `json:"id_prefix"` // of the Nats-Msg-Ids, unique to the step
	Msgs        []RawPublishMsg `json:"msgs"`
	Concurrency int             `json:"concurrency"`
	Warmup      time.Duration   `json:"warmup_ns"`
	Duration    time.Duration   `json:"duration_ns"`
}

// RawPublishMsg is one message of the sample, as encoded for the baseline stream.
type RawPublishMsg struct {
	Subject string      `json:"subject"`
	Header  nats.Header `json:"header"`
	Data    []byte      `json:"data"`
}

// RawPublishResult is what `memctl bench-publish` prints: the acknowledged rate and the
// latencies, and the first error's text when some publishes failed.
type RawPublishResult struct {
	Rate    float64 `json:"rate"`
	Summary Summary `json:"summary"`
	First   string  `json:"first_error,omitempty"`
}

// RunRawPublish publishes spec's messages synchronously from this process: the child's side
// of the baseline.
func RunRawPublish(ctx context.Context, spec RawPublishSpec) (RawPublishResult, error) {
	if len(spec.Msgs) == 0 || spec.Concurrency < 1 || spec.Duration <= 0 {
		return RawPublishResult{}, errors.New("bench-publish: the spec needs messages, a concurrency of at least 1 and a duration")
	}
	nc, err := nats.Connect(spec.NATSURL, nats.Name("memctl-bench-publish"))
	if err != nil {
		return RawPublishResult{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return RawPublishResult{}, err
	}
	p := &rawPublisher{js: js, runID: spec.IDPrefix}
	for _, m := range spec.Msgs {
		p.msgs = append(p.msgs, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	rate, s := p.sync(ctx, spec.Concurrency, spec.Warmup, spec.Duration)
	res := RawPublishResult{Rate: rate, Summary: s}
	if s.First != nil {
		res.First = s.First.Error()
	}
	return res, ctx.Err()
}

// syncFromProcess runs p's synchronous publishes at concurrency c from a process of their own
// (exe bench-publish) and returns what it measured.
func (p *rawPublisher) syncFromProcess(ctx context.Context, exe, natsURL, dir string, c int, warmup, d time.Duration) (float64, Summary, error) {
	p.steps++
	spec := RawPublishSpec{NATSURL: natsURL, IDPrefix: fmt.Sprintf("%s-p%d", p.runID, p.steps),
		Concurrency: c, Warmup: warmup, Duration: d}
	for _, m := range p.msgs {
		spec.Msgs = append(spec.Msgs, RawPublishMsg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return 0, Summary{}, err
	}
	file := filepath.Join(dir, "bench-publish-"+strconv.Itoa(p.steps)+".json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return 0, Summary{}, err
	}
	defer os.Remove(file)
	cctx, cancel := context.WithTimeout(ctx, warmup+d+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, exe, "bench-publish", "-spec", file)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return 0, Summary{}, fmt.Errorf("%s bench-publish: %w: %s", exe, err, strings.TrimSpace(errOut.String()))
	}
	var res RawPublishResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return 0, Summary{}, fmt.Errorf("%s bench-publish printed no result: %w: %q", exe, err, clip(out.String(), 300))
	}
	if res.First != "" {
		res.Summary.First = errors.New(res.First)
	}
	return res.Rate, res.Summary, nil
}

// The HTTP relay: the least a write service over HTTP can do.
//
// `memctl bench-publish -relay ADDR` answers every POST or PUT by publishing its body,
// unread, with one synchronous JetStream publish (under the header of a sample message and a
// fresh Nats-Msg-Id) and answering 202 with the sequence: no decoding, no validation, no
// CloudEvent, no vouch, no seal. The same driver sends it the same requests as the ingestor,
// so the ingestor's rows say, in the same run, how far it is from what HTTP in front of
// JetStream costs on the machine at all.

// RunRelay serves the relay on addr until ctx ends.
func RunRelay(ctx context.Context, spec RawPublishSpec, addr string) error {
	if len(spec.Msgs) == 0 {
		return errors.New("bench-publish -relay: the spec needs messages")
	}
	nc, err := nats.Connect(spec.NATSURL, nats.Name("memctl-bench-relay"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var n atomic.Uint64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		i := n.Add(1)
		src := spec.Msgs[int(i%uint64(len(spec.Msgs)))]
		h := make(nats.Header, len(src.Header)+1)
		maps.Copy(h, src.Header)
		h.Set(nats.MsgIdHdr, spec.IDPrefix+"-"+strconv.FormatUint(i, 10))
		ack, err := js.PublishMsg(r.Context(), &nats.Msg{Subject: src.Subject, Header: h, Data: body})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		out := strconv.AppendUint([]byte(`{"sequence":`), ack.Sequence, 10)
		out = append(out, '}')
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(out)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startRelay starts the relay for p's messages in a process of its own.
func (r *runner) startRelay(ctx context.Context, exe string, p *rawPublisher) (*Process, error) {
	spec := RawPublishSpec{NATSURL: r.stack.NATSURL, IDPrefix: p.runID + "-relay"} // the relay reads no concurrency or duration
	for _, m := range p.msgs {
		spec.Msgs = append(spec.Msgs, RawPublishMsg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(r.stack.Dir, "bench-relay.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	proc := &Process{Name: "relay", URL: "http://" + addr, Log: filepath.Join(r.stack.Dir, "log", "relay.log"),
		bin: exe, args: []string{"bench-publish", "-spec", file, "-relay", addr}, env: os.Environ()}
	if err := proc.start(ctx, time.Minute); err != nil {
		return nil, err
	}
	return proc, nil
}
