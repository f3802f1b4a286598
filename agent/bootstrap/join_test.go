package bootstrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/iks-dev/iks/internal/testlog"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// assertNothingWritten checks that dir does not exist or is empty.
func assertNothingWritten(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Errorf("a failed join wrote %v into %s", entries, dir)
	}
}

func TestJoinMatchingCA(t *testing.T) {
	ca := newTestCA(t)
	tok := ca.token(t)
	api := &fakeAPI{accept: tok.Bootstrap()}
	srv := serve(t, api, []tls.Certificate{ca.serving}, nil)
	dir := filepath.Join(t.TempDir(), "cred")

	res, err := Join(context.Background(), srv.URL, tok, dir, Node{}, discard())
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 1 {
		t.Errorf("attempts = %d, want 1", res.Attempts)
	}
	for path, mode := range map[string]os.FileMode{res.CACert: 0o600, res.BootstrapKubeconfig: 0o600, dir: 0o700 | os.ModeDir} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != mode {
			t.Errorf("%s has mode %v, want %v", path, info.Mode(), mode)
		}
	}
	if got, _ := os.ReadFile(res.CACert); !bytes.Equal(got, ca.certPEM) {
		t.Error("ca.crt is not the pinned CA")
	}
	// The bootstrap kubeconfig works as is: it trusts the CA and sends the token.
	cfg, err := clientcmd.BuildConfigFromFlags("", res.BootstrapKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BearerToken != tok.Bootstrap() || cfg.Host != srv.URL {
		t.Errorf("kubeconfig token/host = %q %q", cfg.BearerToken, cfg.Host)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, cfg.Host+"/api", nil)
	req.Header.Set("Authorization", "Bearer "+cfg.BearerToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("bootstrap kubeconfig does not reach the server: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("bootstrap kubeconfig request answered %s", resp.Status)
	}
}

func TestJoinRefusesAnotherClustersCA(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	tok := other.token(t) // pins another CA
	api := &fakeAPI{accept: tok.Bootstrap()}
	srv := serve(t, api, []tls.Certificate{ca.serving}, nil)
	dir := filepath.Join(t.TempDir(), "cred")

	_, err := Join(context.Background(), srv.URL, tok, dir, Node{}, discard())
	if !errors.Is(err, ErrCAMismatch) {
		t.Fatalf("err = %v, want ErrCAMismatch", err)
	}
	msg := err.Error()
	for _, want := range []string{srv.URL, "presents CA " + certHash(ca.cert)[:16], "pins " + tok.CAHash[:16], "belongs to another cluster"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if n := api.requests.Load(); n != 0 {
		t.Errorf("the token was sent to a server with the wrong CA (%d requests)", n)
	}
	assertNothingWritten(t, dir)
}

func TestJoinRefusesServerWithoutChain(t *testing.T) {
	ca := newTestCA(t)
	tok := ca.token(t)
	leafOnly := ca.serving
	leafOnly.Certificate = leafOnly.Certificate[:1]
	api := &fakeAPI{accept: tok.Bootstrap()}
	srv := serve(t, api, []tls.Certificate{leafOnly}, nil)
	_, err := Verify(context.Background(), srv.URL, tok)
	if !errors.Is(err, ErrCAMismatch) || !strings.Contains(err.Error(), "no CA certificate") {
		t.Fatalf("err = %v, want a CA mismatch naming the missing chain", err)
	}
	if api.requests.Load() != 0 {
		t.Error("token sent without a verified CA")
	}
}

func TestJoinRefusesHostNotInCertificate(t *testing.T) {
	ca := newTestCA(t)
	tok := ca.token(t)
	api := &fakeAPI{accept: tok.Bootstrap()}
	srv := serve(t, api, []tls.Certificate{ca.serving}, nil)
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) // cert has only the IP
	_, err := Join(context.Background(), url, tok, t.TempDir(), Node{}, discard())
	if !errors.Is(err, ErrUntrustedServer) || !strings.Contains(err.Error(), "--tls-san") {
		t.Fatalf("err = %v, want ErrUntrustedServer", err)
	}
	if api.requests.Load() != 0 {
		t.Error("token sent to a server whose certificate does not match the URL")
	}
}

// fast retries within milliseconds and retries a rejected token for 50ms.
var fast = retryPolicy{minDelay: time.Millisecond, maxDelay: 2 * time.Millisecond, rejectGrace: 50 * time.Millisecond}

func TestJoinRejectedToken(t *testing.T) {
	ca := newTestCA(t)
	tok := ca.token(t)
	api := &fakeAPI{accept: "abcdef.0000000000000000"} // the server knows another token
	srv := serve(t, api, []tls.Certificate{ca.serving}, nil)
	dir := filepath.Join(t.TempDir(), "cred")

	sink := testlog.New()
	start := time.Now()
	_, err := join(context.Background(), srv.URL, tok, dir, Node{}, slog.New(sink), fast)
	if !errors.Is(err, ErrTokenRejected) {
		t.Fatalf("err = %v, want ErrTokenRejected", err)
	}
	if took := time.Since(start); took < fast.rejectGrace {
		t.Errorf("gave up after %s, before the %s grace for a starting server", took, fast.rejectGrace)
	}
	if msg := err.Error(); !strings.Contains(msg, "wrong, expired or deleted") || !strings.Contains(msg, "iks token create") {
		t.Errorf("error %q does not say what to do", msg)
	}
	if strings.Contains(err.Error(), tok.Secret) {
		t.Error("error leaks the token secret")
	}
	if n := api.requests.Load(); n < 2 {
		t.Errorf("rejected token was tried %d times, want retries during the grace", n)
	}
	if msg := sink.Wait(t, context.Background(), "may still be starting"); !strings.Contains(msg, "retrying in") {
		t.Errorf("retry log line %q does not give the delay", msg)
	}
	assertNothingWritten(t, dir)
}

func TestJoinRetriesTokenRejectedByStartingServer(t *testing.T) {
	ca := newTestCA(t)
	tok := ca.token(t)
	// 401 three times (the token's Secret has not reached the
	// authenticator yet), then the real answer.
	api := &fakeAPI{accept: tok.Bootstrap(), status: func(n int32) int {
		if n <= 3 {
			return http.StatusUnauthorized
		}
		return 0
	}}
	srv := serve(t, api, []tls.Certificate{ca.serving}, nil)
	dir := filepath.Join(t.TempDir(), "cred")
	p := retryPolicy{minDelay: time.Millisecond, maxDelay: 2 * time.Millisecond, rejectGrace: time.Minute}
	res, err := join(context.Background(), srv.URL, tok, dir, Node{}, discard(), p)
	if err != nil {
		t.Fatalf("join = %v; want success once the server accepts the token", err)
	}
	if res.Attempts != 4 {
		t.Errorf("attempts = %d, want 4 (three 401s, then accepted)", res.Attempts)
	}
	if _, err := os.Stat(res.BootstrapKubeconfig); err != nil {
		t.Error(err)
	}
}

func TestJoinWaitsForUnreachableServer(t *testing.T) {
	ca := newTestCA(t)
	tok := ca.token(t)
	// Reserve a loopback port, then free it: the first attempts are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sink := testlog.New()
	dir := filepath.Join(t.TempDir(), "cred")
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Join(ctx, "https://"+addr, tok, dir, Node{}, slog.New(sink))
		done <- outcome{res, err}
	}()

	// Start the server only once Join has reported the failed attempt.
	msg := sink.Wait(t, ctx, "retrying in")
	if !strings.Contains(msg, "https://"+addr+" unreachable") || !strings.Contains(msg, "retrying in 1s") {
		t.Errorf("retry log line %q does not name the server and the delay", msg)
	}
	assertNothingWritten(t, dir)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("re-listen on %s: %v", addr, err)
	}
	serve(t, &fakeAPI{accept: tok.Bootstrap()}, []tls.Certificate{ca.serving}, ln)

	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.res.Attempts < 2 {
			t.Errorf("attempts = %d, want at least 2", o.res.Attempts)
		}
		if _, err := os.Stat(o.res.BootstrapKubeconfig); err != nil {
			t.Error(err)
		}
	case <-ctx.Done():
		t.Fatal("Join did not finish after the server came up")
	}
}

func TestJoinRetriesStartingServerAndGivesUpWithContext(t *testing.T) {
	ca := newTestCA(t)
	tok := ca.token(t)
	// 503 twice, then the real answer.
	api := &fakeAPI{accept: tok.Bootstrap(), status: func(n int32) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return 0
	}}
	srv := serve(t, api, []tls.Certificate{ca.serving}, nil)
	res, err := join(context.Background(), srv.URL, tok, t.TempDir(), Node{}, discard(), fast)
	if err != nil || res.Attempts != 3 {
		t.Fatalf("join = %+v, %v; want success on attempt 3", res, err)
	}

	// A server that never becomes ready: Join ends with ctx and writes nothing.
	api.status = func(int32) int { return http.StatusServiceUnavailable }
	ctx, cancel := context.WithCancel(context.Background())
	sink := testlog.New()
	dir := filepath.Join(t.TempDir(), "cred")
	errc := make(chan error, 1)
	go func() {
		_, err := join(ctx, srv.URL, tok, dir, Node{}, slog.New(sink), fast)
		errc <- err
	}()
	sink.Wait(t, context.Background(), "503")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("err = %v, want a give-up error wrapping context.Canceled", err)
	}
	assertNothingWritten(t, dir)
}

func TestNextDelay(t *testing.T) {
	var got []time.Duration
	for d := MinRetryDelay; len(got) < 7; d = nextDelay(d, MaxRetryDelay) {
		got = append(got, d)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays = %v, want %v seconds", got, want)
		}
	}
}

func TestVerifyRejectsBadInput(t *testing.T) {
	ca := newTestCA(t)
	tok := ca.token(t)
	for _, u := range []string{"http://127.0.0.1:6443", "127.0.0.1:6443", "https://", "https://h:6443/path"} {
		if _, err := Verify(context.Background(), u, tok); err == nil || !strings.Contains(err.Error(), "https://HOST:6443") {
			t.Errorf("Verify(%q) = %v, want a URL error", u, err)
		}
	}
	bad := tok
	bad.Secret = "short"
	if _, err := Verify(context.Background(), "https://127.0.0.1:6443", bad); err == nil {
		t.Error("Verify accepted an invalid token")
	}
}
