// Command iks-vpn is the supervisor of the iks VPN gateway pod: it runs
// charon (Debian's strongSwan, kernel-libipsec where the kernel has no
// ESP), loads the pod's VPNConnection into it over VICI (govici): the
// pre-shared key, the connection, and initiates it for ipsec.auto start;
// it watches ike-updown/child-updown (re-initiating at once when the
// tunnel drops) and reports IKE/CHILD SA state, times, bytes and the
// last error in the VPNConnection's status.
//
// The server's VPN controller starts it with the validated spec in its
// environment (server/vpn); a changed spec rolls the pod.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "vpn-gateway")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "ping" {
		if err := pingMain(os.Args[2:]); err != nil {
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "probe-esp" {
		dp, err := probeDataplane()
		log.Info("ESP probe", "dataplane", dp, "err", err)
		return
	}
	if err := run(ctx, log); err != nil {
		log.Error("gateway failed", "err", err)
		os.Exit(1)
	}
}
