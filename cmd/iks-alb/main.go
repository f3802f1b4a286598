// Command iks-alb is the iks Ingress application load balancer: a small
// static program, packed as the image iks.local/alb and run by the ALB
// Deployments the server creates. It serves the Ingresses of one
// IngressClass (see internal/alb/watch) through the proxy engine of
// internal/alb/proxy, and exposes /healthz and /metrics.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/iks-dev/iks/internal/alb/proxy"
	"github.com/iks-dev/iks/internal/alb/route"
	"github.com/iks-dev/iks/internal/alb/watch"
)

var version = "dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "iks-alb:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		class, publish, defCert, kubeconfig string
		httpPort, httpsPort, healthPort     int
		redirectPort                        int
		debug, showVersion, passthrough     bool
	)
	flag.StringVar(&class, "class", "public-iks-k8s-nginx", "IngressClass whose Ingresses this ALB serves")
	flag.StringVar(&publish, "publish-service", "", "namespace/name of the ALB Service whose IP goes into Ingress status")
	flag.StringVar(&defCert, "default-ssl-certificate", "", "namespace/name of the TLS Secret served for unknown hosts")
	flag.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig (default: the pod's ServiceAccount)")
	flag.IntVar(&httpPort, "http-port", 8080, "HTTP listen port")
	flag.IntVar(&httpsPort, "https-port", 8443, "HTTPS listen port")
	flag.IntVar(&redirectPort, "public-https-port", 443, "HTTPS port clients use, for HTTP→HTTPS redirects")
	flag.IntVar(&healthPort, "health-port", 10254, "port of /healthz and /metrics")
	flag.BoolVar(&passthrough, "enable-ssl-passthrough", false, "honour the ssl-passthrough annotation: read the SNI name of each HTTPS connection and pass those of passthrough hosts to the backend undecrypted (as ingress-nginx, off by default)")
	flag.BoolVar(&debug, "debug", false, "debug logging")
	flag.BoolVar(&showVersion, "version", false, "print the version and exit")
	flag.Parse()
	if showVersion {
		fmt.Println("iks-alb version", version)
		return nil
	}
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "alb", "class", class)
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.UserAgent = "iks-alb/" + version
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	proxy.TuneGC()
	h := proxy.NewHandler(log, redirectPort)
	h.Access = proxy.NewAccessLog(os.Stdout)
	defer h.Access.Close()
	srv, err := proxy.Listen(h, ":"+strconv.Itoa(httpPort), ":"+strconv.Itoa(httpsPort), log)
	if err != nil {
		return err
	}
	srv.Passthrough = passthrough
	streams := proxy.NewStreams(log)
	w := watch.New(watch.Config{Class: class, PublishService: publish, DefaultCertSecret: defCert,
		ReservedPorts: []int{httpPort, httpsPort, healthPort}, SSLPassthrough: passthrough}, cs, sinks{h, streams}, log)
	health := &http.Server{Addr: net.JoinHostPort("", strconv.Itoa(healthPort)), Handler: healthMux(h, w), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 3)
	go func() { errc <- w.Run(ctx) }()
	go func() { errc <- srv.Serve(ctx) }()
	go func() {
		if err := health.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	log.Info("ALB serving", "http", httpPort, "https", httpsPort, "health", healthPort, "ssl-passthrough", passthrough, "version", version)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = health.Shutdown(sctx)
	streams.Close()
	return err
}

// sinks hands each new table to the HTTP handler and the stream forwarders.
type sinks struct {
	h *proxy.Handler
	s *proxy.Streams
}

func (k sinks) Swap(t *route.Table) {
	k.h.Swap(t)
	k.s.Apply(t)
}

func healthMux(h *proxy.Handler, w *watch.Watcher) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(rw http.ResponseWriter, _ *http.Request) {
		select {
		case <-w.Synced():
			fmt.Fprintln(rw, "ok")
		default:
			http.Error(rw, "routing table not built yet", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/metrics", func(rw http.ResponseWriter, _ *http.Request) {
		t := h.Table()
		rw.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(rw, "# TYPE iks_alb_requests_total counter\niks_alb_requests_total %d\n", h.Requests.Load())
		fmt.Fprintf(rw, "# TYPE iks_alb_rules gauge\niks_alb_rules %d\n", t.Rules)
		fmt.Fprintf(rw, "# TYPE iks_alb_table_rebuilds_total counter\niks_alb_table_rebuilds_total %d\n", w.Rebuilds.Load())
	})
	return mux
}
