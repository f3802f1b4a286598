package main

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/logging"
	"github.com/iks-dev/iks/internal/memtune"
	"github.com/iks-dev/iks/internal/profiling"
)

// runDaemon is what `iks server` and `iks agent` share: apply the config
// file (flags win), set up logging, validate (validate returns the run
// function, or the problems), then run until SIGTERM or SIGINT.
func runDaemon(cmd *cobra.Command, configFile string, debug *bool,
	validate func() (func(context.Context, *slog.Logger) error, error)) error {
	if err := config.ApplyFile(cmd.Flags(), configFile, cmd.Flags().Changed("config")); err != nil {
		return err
	}
	log := logging.Setup(logging.Options{Debug: *debug})
	run, err := validate()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	memtune.Apply(log)
	if err := profiling.Start(ctx, log); err != nil {
		return err
	}
	return run(ctx, log)
}
