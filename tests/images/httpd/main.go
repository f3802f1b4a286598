// Command httpd is a tiny static HTTP server packed into test images
// (iks.local/httpd:1) for the integration and e2e suites.
//
// It listens on $PORT (default 8080). GET / answers
// "hostname=<hostname> ip=<first non-loopback IPv4>", so a test can tell
// which pod served it and which address the pod has; GET /healthz answers
// "ok" for probes; GET /whoami answers "client=<source IP>"; GET /ws with
// "Upgrade: websocket" switches protocols and echoes each line back
// (prefixed "echo <hostname> "), to test upgrades through proxies. With
// $GRPC_PORT set it also serves the gRPC health service there, with
// $UDP_PORT a UDP echo (grpc.go).
// `httpd echo WORDS` prints WORDS, `httpd get URL` prints URL's body,
// `httpd cat FILE` prints a file, `httpd lookup|dig|dnsbench` are DNS
// clients (see dns.go) and `httpd tcpsink|tcpsend` measure TCP throughput
// (see tcp.go): commands for kubectl exec in an image without a shell. It exits cleanly on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	// `httpd echo WORDS...` prints WORDS: the image has no shell, and
	// tests need a command to `kubectl exec`.
	if len(os.Args) > 1 && os.Args[1] == "echo" {
		fmt.Println(strings.Join(os.Args[2:], " "))
		return
	}
	// `httpd get URL` prints the body of URL: a client inside pods.
	if len(os.Args) == 3 && os.Args[1] == "get" {
		if err := fetch(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 {
		if cmd, ok := clients[os.Args[1]]; ok {
			if err := cmd(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			return
		}
	}
	if err := run(); err != nil {
		slog.Error("httpd failed", "err", err)
		os.Exit(1)
	}
}

// clients are the subcommands besides echo and get.
var clients = map[string]func([]string) error{
	"cat":      catFile,
	"lookup":   lookup,
	"dig":      dig,
	"dnsbench": dnsbench,
	"tcpsink":  tcpsink,
	"tcpsend":  tcpsend,
}

// catFile prints one file.
func catFile(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: httpd cat FILE")
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(data)
	return err
}

func run() error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("PORT=%q is not a port number 1-65535: set PORT or leave it unset for 8080", port)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	stopGRPC, err := startGRPC()
	if err != nil {
		return err
	}
	defer stopGRPC()
	stopUDP, err := startUDPEcho()
	if err != nil {
		return err
	}
	defer stopUDP()
	srv := &http.Server{
		Addr:              net.JoinHostPort("", port),
		Handler:           handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("httpd listening", "addr", srv.Addr)

	select {
	case err := <-errc:
		return fmt.Errorf("listen on port %s: %w", port, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		host, err := os.Hostname()
		if err != nil {
			host = "unknown"
		}
		fmt.Fprintf(w, "hostname=%s ip=%s\n", host, firstIPv4())
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "client=%s\n", host)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /ws", upgradeEcho)
	return mux
}

// firstIPv4 returns the first non-loopback IPv4 address of the host (the
// pod), or "none".
func firstIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "none"
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
			if ip4 := ipn.IP.To4(); ip4 != nil {
				return ip4.String()
			}
		}
	}
	return "none"
}

// fetch prints the body of url, failing on a non-200 answer.
func fetch(url string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

// upgradeEcho answers an Upgrade request with 101 and then echoes lines
// on the raw connection until the client closes it.
func upgradeEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "want Upgrade: websocket", http.StatusBadRequest)
		return
	}
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	host, _ := os.Hostname()
	fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if rw.Flush() != nil {
		return
	}
	for {
		line, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		fmt.Fprintf(rw, "echo %s %s", host, line)
		if rw.Flush() != nil {
			return
		}
	}
}
