package projection

import (
	"testing"

	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/app"
)

// TestModuleGraph checks that cmd/projector's modules wire together.
func TestModuleGraph(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.ValidateApp(app.Module(cfg.Common), app.Neo4jModule(), Module(cfg), fx.NopLogger); err != nil {
		t.Fatal(err)
	}
}
