package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/iks-dev/iks/internal/config"
)

// newCheckConfigCmd is `iks check-config` (as `k3s check-config`): every
// kernel feature and host tool a node uses, found or missing, and what
// iks does without the optional ones. iks server and iks agent run the
// same checks before they start anything.
func newCheckConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check-config",
		Short: "list the kernel features and host tools a node needs, found or missing, and the fallbacks iks takes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			checks := config.CheckHost(config.HostEnv{})
			if os.Geteuid() != 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "note: not root; tools are looked up in this PATH, iks runs with root's (try: sudo iks check-config)")
			}
			printHostChecks(cmd.OutOrStdout(), checks)
			if n := len(config.HostErrors(checks)); n > 0 {
				return fmt.Errorf("%d required host feature(s) missing (marked MISSING above): iks server and iks agent refuse to start until they are fixed", n)
			}
			return nil
		},
	}
}

// printHostChecks writes the checks as two tables, kernel and tools.
func printHostChecks(w io.Writer, checks []config.HostCheck) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, kind := range []struct{ kind, title string }{{"kernel", "Kernel features"}, {"tool", "Host tools (in PATH)"}} {
		fmt.Fprintf(tw, "%s:\n", kind.title)
		for _, c := range checks {
			if c.Kind != kind.kind {
				continue
			}
			state := c.State
			need := "required"
			if !c.Required {
				need = "optional"
			}
			if c.State == config.Missing && c.Required {
				state = "MISSING"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Name, state, need, c.Detail, c.Use)
			switch {
			case c.State == config.Missing && c.Required:
				fmt.Fprintf(tw, "  \t\t\t-> fix: %s\n", c.Fix)
			case c.State == config.Missing:
				fmt.Fprintf(tw, "  \t\t\t-> fallback: %s\n", c.Fallback)
			}
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "Not used by iks: %s\n", config.NotUsed)
	errs, fb := len(config.HostErrors(checks)), config.HostFallbacks(checks)
	var names []string
	for _, c := range fb {
		names = append(names, c.Name)
	}
	switch {
	case errs > 0:
		fmt.Fprintf(w, "Result: %d required feature(s) missing; this host cannot run a node\n", errs)
	case len(fb) > 0:
		fmt.Fprintf(w, "Result: this host can run a node, without %s (fallbacks above)\n", strings.Join(names, ", "))
	default:
		fmt.Fprintln(w, "Result: this host can run a node with every feature")
	}
}

// logHostFallbacks logs, at start, each optional feature this host lacks
// and what iks does instead; unknown ones are logged too.
func logHostFallbacks(log *slog.Logger, checks []config.HostCheck) {
	for _, c := range config.HostFallbacks(checks) {
		log.Warn("host check: optional feature missing, taking the fallback", "kind", c.Kind, "name", c.Name,
			"detail", c.Detail, "fallback", c.Fallback)
	}
	for _, c := range checks {
		if c.State == config.Unknown {
			log.Warn("host check: cannot tell whether the host has it", "kind", c.Kind, "name", c.Name, "detail", c.Detail)
		}
	}
}
