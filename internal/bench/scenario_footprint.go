package bench

import (
	"context"
	"fmt"
)

func init() {
	scenarios[ScenarioFootprint] = footprint
}

// footprint: the peak resident set (VmHWM) of the ingestor and the projector subprocesses
// over the whole run, i.e. under the load of every scenario that ran before.
func footprint(_ context.Context, r *runner) error {
	for _, t := range []struct {
		name   string
		target int64
	}{{ServiceIngestor, targetIngestorRSS}, {ServiceProjector, targetProjectorRSS}} {
		svc, ok := r.stack.services[t.name]
		row := Result{Scenario: ScenarioFootprint, Variant: t.name + " peak RSS", Metric: "MiB",
			Target: fmt.Sprintf("≤ %d MiB", t.target>>20)}
		switch {
		case !ok:
			row.Status, row.Note = StatusNA, fmt.Sprintf("%s not running: %v", t.name, r.stack.missing[t.name])
		case svc.Proc == nil:
			row.Status, row.Note = StatusNA, "a running service outside the driver: its RSS is not read"
		default:
			peak := svc.Proc.PeakRSS()
			if peak == 0 {
				row.Status, row.Note = StatusNA, "VmHWM not readable from /proc"
				break
			}
			row.Value = float64(peak) / (1 << 20)
			row.Status = met(peak <= t.target)
			row.Note = "VmHWM of the subprocess over the whole run (highest of its starts)"
		}
		r.report.Add(row)
		r.log.Info("measured", "row", row.Name(), "mib", fmt.Sprintf("%.1f", row.Value))
	}
	return nil
}
