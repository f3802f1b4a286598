// Command albproxy runs the iks ALB proxy engine (internal/alb/proxy)
// without Kubernetes, with a fixed table: every host and path to the
// given backends, for benchmarks against nginx on the same backends
// (tests/bench/alb_test.go). HTTPS uses a self-signed default certificate.
// With -origin it is the benchmark's backend, with -load its fixed-rate
// load generator.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/alb/proxy"
	"github.com/iks-dev/iks/internal/alb/route"
)

func main() {
	httpAddr := flag.String("http", "127.0.0.1:18080", "HTTP listen address")
	httpsAddr := flag.String("https", "127.0.0.1:18443", "HTTPS listen address")
	backends := flag.String("backends", "", "comma-separated host:port backends")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the proxy here until it stops")
	origin := flag.String("origin", "", "instead of proxying, serve a small fixed answer on this address (the benchmark backend)")
	originKind := flag.String("origin-kind", "raw", "the -origin server: raw (minimal, light on CPU) or http (Go's net/http server)")
	load := flag.String("load", "", "instead of proxying, send GETs to this URL at -rate per second for -duration (open loop) and print a JSON LoadResult")
	rate := flag.Float64("rate", 1000, "requests per second of -load")
	dur := flag.Duration("duration", 10*time.Second, "duration of -load")
	conns := flag.Int("conns", 64, "keep-alive connections of -load")
	flag.Parse()
	if *load != "" {
		if err := runLoad(*load, *rate, *dur, *conns); err != nil {
			fmt.Fprintln(os.Stderr, "albproxy:", err)
			os.Exit(1)
		}
		return
	}
	if *origin != "" {
		if err := serveOrigin(*origin, *originKind); err != nil {
			fmt.Fprintln(os.Stderr, "albproxy:", err)
			os.Exit(1)
		}
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	if err := run(*httpAddr, *httpsAddr, strings.Split(*backends, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "albproxy:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(httpAddr, httpsAddr string, backends []string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	pt := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "bench"}, Spec: networkingv1.IngressSpec{
		DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "b", Port: networkingv1.ServiceBackendPort{Number: 80}}},
		Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: "b", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
	var slices []*discoveryv1.EndpointSlice
	for _, b := range backends {
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			return fmt.Errorf("backend %q: want host:port: %w", b, err)
		}
		var n int32
		fmt.Sscan(port, &n)
		name := ""
		slices = append(slices, &discoveryv1.EndpointSlice{Endpoints: []discoveryv1.Endpoint{{Addresses: []string{host}}},
			Ports: []discoveryv1.EndpointPort{{Name: &name, Port: &n}}})
	}
	g := route.DefaultGlobal()
	g.AccessLog = false // as nginx's access_log off in the benchmark
	tb, probs := route.Build(route.Input{Ingresses: []*networkingv1.Ingress{ing}, Global: g, DefaultCert: cert,
		Service: func(string, string) *corev1.Service {
			return &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		},
		Slices: func(string, string) []*discoveryv1.EndpointSlice { return slices },
		Secret: func(string, string) *corev1.Secret { return nil }})
	if len(probs) > 0 {
		return fmt.Errorf("table: %+v", probs)
	}
	proxy.TuneGC()
	h := proxy.NewHandler(log, 443)
	h.Swap(tb)
	srv, err := proxy.Listen(h, httpAddr, httpsAddr, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Serve(ctx)
}

func selfSigned() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"}, DNSNames: []string{"bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
