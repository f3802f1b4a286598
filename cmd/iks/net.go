package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/iks-dev/iks/agent/routing"
	"github.com/iks-dev/iks/internal/config"
)

func newNetCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "net", Short: "inspect this node's pod network"}
	var dataDir string
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "BGP sessions, learned routes and encapsulation of this node (like calicoctl node status)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			st, err := routing.FetchStatus(ctx, config.Paths{Root: dataDir}.RoutingSocket())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			printNetStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	dataDirFlag(status.Flags(), &dataDir, "data dir of the iks server or agent on this node")
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(status)
	return cmd
}

func printNetStatus(w io.Writer, st routing.Status) {
	gr := "off"
	if st.GracefulRestartTime > 0 {
		gr = st.GracefulRestartTime.String()
	}
	fmt.Fprintf(w, "Node %s (%s), AS %d\n", st.Node, st.NodeIP, st.ASN)
	fmt.Fprintf(w, "Encapsulation: %s %s", st.Encapsulation, st.EncapMode)
	if st.EncapReason != "" {
		fmt.Fprintf(w, " (%s)", st.EncapReason)
	}
	fmt.Fprintf(w, "\nGraceful restart: %s\n", gr)
	if st.Zone != "" {
		fmt.Fprintf(w, "Zone: %s\n", st.Zone)
	}
	if len(st.Sides) > 0 {
		fmt.Fprintln(w, "\nSides:")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SIDE\tADDRESS\tVLAN")
		for _, sd := range st.Sides {
			addr := sd.Address.String()
			if !sd.Address.IsValid() {
				addr = "none (private-only worker)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", sd.Side, addr, dash(sd.VLAN))
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nBGP peers:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tNAME\tTYPE\tAS\tSTATE\tUPTIME\tRECEIVED\tACCEPTED\tLAST ERROR")
	for _, p := range st.Peers {
		state := p.State
		if p.Restarting {
			state += " (restarting)"
		}
		up := "-"
		if p.Uptime > 0 {
			up = p.Uptime.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\n", p.IP, p.Name, p.Type, p.ASN, state, up, p.Received, p.Accepted, p.LastError)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRoutes learned:")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tNEXT HOP\tGATEWAY\tDEVICE\tSTATE")
	for _, r := range st.Routes {
		state := "installed"
		switch {
		case r.Skipped != "":
			state = "not installed: " + r.Skipped
		case r.Stale:
			state = "installed (stale: peer restarting)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Dst, r.NextHop, r.Gateway, r.Device, state)
	}
	tw.Flush()
	if st.Err != "" {
		fmt.Fprintf(w, "\nLast error: %s\n", st.Err)
	}
}
