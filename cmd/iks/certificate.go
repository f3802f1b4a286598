package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/lock"
	"github.com/iks-dev/iks/server/pki"
)

// rotateCARefusal explains the path while rotate-ca is not implemented.
const rotateCARefusal = `iks certificate rotate-ca is not implemented: iks does not cross-sign a new CA yet.
Every node, kubeconfig and join token (its K10<CA hash> prefix) pins the current CA, so replacing it
breaks them all. The supported path today: the CA is valid for 10 years ("iks certificate check"
shows when it ends); leaf certificates are renewed automatically and by "iks certificate rotate".
To move to a new CA, create a new cluster (new --data-dir), move workloads, and rejoin agents with
its token.`

// newCertificateCmd returns `iks certificate check|rotate|rotate-ca`.
func newCertificateCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:     "certificate",
		Aliases: []string{"cert"},
		Short:   "check and rotate the server's certificates (run on a server, as root)",
		Args:    cobra.NoArgs,
	}
	dataDirFlag(cmd.PersistentFlags(), &dataDir, "the server's data dir")
	check := &cobra.Command{
		Use:   "check",
		Short: "list every certificate with its service and expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			certs, err := pki.Inspect(config.Paths{Root: dataDir}.TLSDir())
			if err != nil {
				return err
			}
			now := time.Now()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SERVICE\tFILE\tSUBJECT\tEXPIRES\tIN\tSTATUS")
			for _, c := range certs {
				status := "ok"
				switch {
				case !now.Before(c.NotAfter):
					status = "EXPIRED"
				case c.CA:
					status = "ok (CA)"
				case pki.NeedsRenewal(c.NotAfter, now):
					status = "renewed at next server start"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Service, strings.TrimPrefix(c.Path, dataDir+"/"), c.Subject,
					c.NotAfter.UTC().Format(time.RFC3339), days(c.NotAfter.Sub(now)), status)
			}
			return w.Flush()
		},
	}
	var services []string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "re-issue leaf certificates and keys (all, or --service) at the next start; the CAs are kept",
		Long: "Move the leaf certificates and keys of the services aside (into <data-dir>/server/tls/rotated-<time>)\n" +
			"so the next `iks server` start issues new ones from the same CAs. Stop the server first.\n" +
			"Services: " + strings.Join(pki.ServiceNames(), ", "),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := config.Paths{Root: dataDir}
			if _, err := os.Stat(p.TLSDir()); err != nil {
				return fmt.Errorf("%s: %w: is %s a server's data dir? pass --data-dir", p.TLSDir(), err, dataDir)
			}
			l, err := lock.Acquire(p.LockFile())
			if err != nil {
				return fmt.Errorf("%w: stop iks server first, rotate, then start it", err)
			}
			defer l.Release()
			backup, err := pki.Rotate(p.TLSDir(), services, time.Now())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "certificates moved to %s; start iks server to issue new ones\n", backup)
			return err
		},
	}
	rotate.Flags().StringSliceVar(&services, "service", nil, "service whose certificates to rotate (repeatable; default all): "+
		strings.Join(pki.ServiceNames(), ", "))
	rotateCA := &cobra.Command{
		Use:   "rotate-ca",
		Short: "replace the cluster CA (not implemented: explains the supported path)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return fmt.Errorf("%s", rotateCARefusal) },
	}
	cmd.AddCommand(check, rotate, rotateCA)
	return cmd
}

// days renders a duration in days.
func days(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
