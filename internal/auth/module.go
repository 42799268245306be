package auth

import (
	"context"
	"log/slog"

	"go.uber.org/fx"
)

// Module provides the *Authenticator of c. At start it logs the accepted methods, or a
// warning when authentication is disabled.
func Module(c Config) fx.Option {
	return fx.Module("auth",
		fx.Provide(func() (*Authenticator, error) { return New(c) }),
		fx.Invoke(func(lc fx.Lifecycle, a *Authenticator, logger *slog.Logger) {
			lc.Append(fx.Hook{OnStart: func(context.Context) error {
				LogMode(logger, a)
				return nil
			}})
		}),
	)
}

// LogMode logs how requests are authenticated: a warning when they are not.
func LogMode(logger *slog.Logger, a *Authenticator) {
	if !a.Enabled() {
		logger.Warn("authentication disabled: every request acts as the anonymous principal with every scope for every user; set AUTH_ENABLED=true in production", "component", "auth")
		return
	}
	logger.Info("authentication enabled", "component", "auth", "methods", a.Methods())
}
