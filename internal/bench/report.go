package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Status of a result against its target.
const (
	StatusMet    = "met"
	StatusMissed = "MISSED"
	StatusNA     = "n/a"   // the scenario could not run (its reason is in Note)
	StatusError  = "error" // the scenario failed (the error is in Note)
)

// Result is one row of the table: an Engram figure, or a baseline it is compared with.
type Result struct {
	Scenario string  `json:"scenario"`
	Variant  string  `json:"variant,omitempty"`
	Metric   string  `json:"metric"` // unit of Value: events/s, req/s, MiB, ms
	Value    float64 `json:"value"`
	P50      float64 `json:"p50_ms,omitempty"`
	P99      float64 `json:"p99_ms,omitempty"`
	Count    int     `json:"count,omitempty"`
	Errors   int     `json:"errors,omitempty"`
	// Baseline names the same-run baseline row this figure is divided by.
	Baseline      string  `json:"baseline,omitempty"`
	BaselineValue float64 `json:"baseline_value,omitempty"`
	Ratio         float64 `json:"ratio,omitempty"`
	Target        string  `json:"target,omitempty"`
	Status        string  `json:"status,omitempty"`
	Note          string  `json:"note,omitempty"`
}

// Name is the row's name as other rows refer to it.
func (r Result) Name() string {
	if r.Variant == "" {
		return r.Scenario
	}
	return r.Scenario + " " + r.Variant
}

// Point is one sample of a time series (the projection lag).
type Point struct {
	T     float64 `json:"t_s"`   // seconds since the series started
	Value float64 `json:"value"` // e.g. events not yet applied
}

// Series is a named time series.
type Series struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Points []Point `json:"points"`
}

// Report is everything one run measured.
type Report struct {
	RunID    string         `json:"run_id"` // every tenant, tool and checkpoint of the run carries it
	Date     time.Time      `json:"date"`
	Command  string         `json:"command"`
	Machine  Machine        `json:"machine"`
	Params   map[string]any `json:"params"`
	Stack    []string       `json:"stack"` // what ran where
	Results  []Result       `json:"results"`
	Series   []Series       `json:"series,omitempty"`
	Notes    []string       `json:"notes,omitempty"`
	Profiles []Profile      `json:"profiles,omitempty"`
	// Processes are the service subprocesses the driver started (all stopped when Run returns).
	Processes []ProcessInfo `json:"processes,omitempty"`
	Elapsed   float64       `json:"elapsed_s"`
}

// ProcessInfo names a service subprocess of the run.
type ProcessInfo struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// Profile is a CPU profile taken while a target was missed, summarised by its top functions.
type Profile struct {
	Scenario string   `json:"scenario"`
	Process  string   `json:"process"`
	File     string   `json:"file"`
	Top      []string `json:"top"`
}

// Add appends a result.
func (r *Report) Add(res Result) { r.Results = append(r.Results, res) }

// Note appends a note printed under the table.
func (r *Report) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Find returns the row named name (scenario and variant).
func (r *Report) Find(name string) (Result, bool) {
	for _, res := range r.Results {
		if res.Name() == name {
			return res, true
		}
	}
	return Result{}, false
}

// ratioTo sets res's baseline and ratio, and its status against a minimum ratio target.
func ratioTo(res Result, base Result, target float64) Result {
	res.Baseline, res.BaselineValue = base.Name(), base.Value
	if base.Value > 0 {
		res.Ratio = res.Value / base.Value
	}
	if target > 0 {
		res.Target = fmt.Sprintf("≥ %.2g× baseline", target)
		res.Status = met(res.Ratio >= target && res.Errors == 0)
	}
	return res
}

func met(ok bool) string {
	if ok {
		return StatusMet
	}
	return StatusMissed
}

// Missed lists the results that missed their target.
func (r *Report) Missed() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status == StatusMissed {
			out = append(out, res)
		}
	}
	return out
}

// WriteTable prints the results as one aligned table, then the notes.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tVARIANT\tVALUE\tUNIT\tP50 ms\tP99 ms\tERR\tBASELINE\tRATIO\tTARGET\tSTATUS")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", res.Scenario, res.Variant,
			num(res.Value), res.Metric, optMS(res.P50), optMS(res.P99), optInt(res.Errors),
			res.Baseline, optRatio(res.Ratio), res.Target, statusText(res))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func statusText(res Result) string {
	if (res.Status == StatusNA || res.Status == StatusError) && res.Note != "" {
		return res.Status + ": " + res.Note
	}
	return res.Status
}

// Markdown renders the generated part of docs/BENCHMARKS.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run of %s, %.0f s wall time.\n\n", r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Elapsed)
	fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	b.WriteString("### Machine\n\n")
	m := r.Machine
	fmt.Fprintf(&b, "- CPU: %s, %d cores (nproc)\n- Memory: %s\n- OS: %s\n- Go: %s\n- Java: %s\n- Neo4j: %s\n- NATS server: %s\n",
		m.CPU, m.NProc, m.Memory, m.OS, m.Go, m.Java, m.Neo4j, m.NATS)
	if m.Load != "" {
		fmt.Fprintf(&b, "- Load average at start / end: %s / %s (the machine is shared: other jobs ran during the run)\n", m.Load, m.LoadEnd)
	}
	b.WriteString("\n### Stack\n\n")
	for _, s := range r.Stack {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	b.WriteString("\n### Results\n\n")
	b.WriteString("| scenario | variant | value | unit | p50 ms | p99 ms | errors | baseline | ratio | target | status |\n")
	b.WriteString("|---|---|--:|---|--:|--:|--:|---|--:|---|---|\n")
	for _, res := range r.Results {
		status := res.Status
		if status == StatusMissed {
			status = "**missed**"
		}
		if res.Status == StatusNA {
			status = "n/a"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", res.Scenario, res.Variant,
			num(res.Value), res.Metric, optMS(res.P50), optMS(res.P99), optInt(res.Errors),
			res.Baseline, optRatio(res.Ratio), strings.ReplaceAll(res.Target, "|", "\\|"), status)
	}
	var notes []string
	for _, res := range r.Results {
		if res.Note != "" {
			notes = append(notes, fmt.Sprintf("%s: %s", res.Name(), res.Note))
		}
	}
	notes = append(notes, r.Notes...)
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	for _, s := range r.Series {
		fmt.Fprintf(&b, "\n### %s (%s)\n\n", s.Name, s.Unit)
		b.WriteString("| t (s) | " + s.Unit + " |\n|--:|--:|\n")
		for _, p := range thin(s.Points, 30) {
			fmt.Fprintf(&b, "| %.1f | %s |\n", p.T, num(p.Value))
		}
	}
	if len(r.Profiles) > 0 {
		b.WriteString("\n### Profiles of missed targets\n")
		for _, p := range r.Profiles {
			fmt.Fprintf(&b, "\n%s, %s (`%s`), top of the CPU profile (flat%%, cum%%, function):\n\n```\n%s\n```\n",
				p.Scenario, p.Process, filepath.Base(p.File), strings.Join(p.Top, "\n"))
		}
	}
	// The JSON without what is rendered in full above (the lag series, the profiles).
	short := *r
	short.Series, short.Profiles = nil, nil
	js, err := json.MarshalIndent(&short, "", "  ")
	if err == nil {
		b.WriteString("\n<details><summary>JSON of this run (results; the lag series and profiles are in the JSON file)</summary>\n\n```json\n")
		b.Write(js)
		b.WriteString("\n```\n\n</details>\n")
	}
	return b.String()
}

// Markers delimit the generated part of the markdown file; what lies outside them (the
// analysis written by people) is kept when the driver rewrites the file.
const (
	BeginGenerated = "<!-- BEGIN GENERATED BY memctl bench: edits here are overwritten -->"
	EndGenerated   = "<!-- END GENERATED -->"
)

// WriteMarkdown replaces the generated part of path (creating the file when missing) and keeps
// the rest.
func (r *Report) WriteMarkdown(path string) error {
	gen := BeginGenerated + "\n\n" + r.Markdown() + "\n" + EndGenerated + "\n"
	old, err := os.ReadFile(path)
	var out string
	switch {
	case err == nil && bytes.Contains(old, []byte(BeginGenerated)) && bytes.Contains(old, []byte(EndGenerated)):
		s := string(old)
		i := strings.Index(s, BeginGenerated)
		j := strings.Index(s, EndGenerated) + len(EndGenerated)
		rest := strings.TrimPrefix(s[j:], "\n")
		out = s[:i] + gen + rest
	case err == nil:
		out = string(old) + "\n" + gen
	case os.IsNotExist(err):
		out = "# Benchmarks\n\nMeasured by `make bench` (memctl bench, internal/bench).\n\n" + gen
	default:
		return fmt.Errorf("read %s: %w", path, err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// ReadReport reads a report WriteJSON wrote.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(path string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(js, '\n'), 0o644)
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func optMS(v float64) string {
	if v == 0 {
		return ""
	}
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func optInt(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

func optRatio(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", v)
}

// thin keeps at most n points, evenly spread, always the last.
func thin(p []Point, n int) []Point {
	if len(p) <= n {
		return p
	}
	out := make([]Point, 0, n)
	for i := range n - 1 {
		out = append(out, p[i*len(p)/(n-1)])
	}
	return append(out, p[len(p)-1])
}
