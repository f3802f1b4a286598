// Package profiling serves Go's pprof endpoints of an iks server or agent
// process when IKS_PPROF names an address (e.g. IKS_PPROF=127.0.0.1:6060),
// to see where a node's memory and CPU go:
//
//	go tool pprof http://127.0.0.1:6060/debug/pprof/heap
//
// It is off by default; the endpoints have no authentication, so bind them
// to loopback.
package profiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// EnvAddr is the environment variable that turns the endpoints on.
const EnvAddr = "IKS_PPROF"

// Start serves pprof on $IKS_PPROF until ctx ends. Unset, it does nothing;
// an address that cannot be listened on is an error naming it.
func Start(ctx context.Context, log *slog.Logger) error {
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s=%q: cannot listen: %w (use a free loopback address such as 127.0.0.1:6060, or unset it)", EnvAddr, addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server stopped", "component", "profiling", "err", err)
		}
	}()
	log.Info("pprof endpoints served", "component", "profiling", "addr", ln.Addr().String())
	return nil
}
