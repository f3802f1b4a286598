package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/iks-dev/iks/tests/testutil"
)

// newALBClient returns an HTTP client that dials from ext, never follows
// redirects and, when fresh, opens a new connection per request.
func newALBClient(ext *testutil.Netns, fresh bool) *http.Client {
	return &http.Client{
		Transport:     &http.Transport{DialContext: ext.DialContext, DisableKeepAlives: fresh, MaxIdleConnsPerHost: 4},
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func albDo(c *http.Client, url, host string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// albGet returns the body of a 200 answer.
func albGet(c *http.Client, url, host string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s (Host %s): %s: %s", url, host, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), err
}

// albGetWith sends a GET with extra headers and returns the body of a
// 200 answer and the response.
func albGetWith(c *http.Client, url, host string, hdr map[string]string) (string, *http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", nil, err
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s (Host %s): %s: %s", url, host, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), resp, err
}

func expectBody(c *http.Client, url, host, want string) error {
	body, err := albGet(c, url, host)
	if err == nil && !strings.Contains(body, want) {
		err = fmt.Errorf("GET %s (Host %s): body %q, want %q", url, host, body, want)
	}
	return err
}

// albTLSGet fetches https://<public ALB>/ with SNI and Host sni, over
// HTTP/2 when the ALB offers it.
func albTLSGet(ext *testutil.Netns, sni string) (*http.Response, string, error) {
	tr := &http.Transport{DialContext: ext.DialContext, ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true}} //nolint:gosec // the test checks the certificate itself
	if err := http2.ConfigureTransport(tr); err != nil {
		return nil, "", err
	}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "https://"+albPublicIP+"/", nil)
	req.Host = sni
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func selfSignedPEM(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// albWebSocket is an upgraded connection through the public ALB to the
// httpd image's /ws echo.
type albWebSocket struct {
	c  net.Conn
	br *bufio.Reader
}

func openALBWebSocket(t *testing.T, ext *testutil.Netns, host string) *albWebSocket {
	t.Helper()
	var ws *albWebSocket
	eventually(t, 30*time.Second, "WebSocket upgrade through the ALB", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := ext.DialContext(ctx, "tcp", albPublicIP+":80")
		if err != nil {
			return err
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", host)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			c.Close()
			return fmt.Errorf("upgrade answer %v, %v", resp, err)
		}
		ws = &albWebSocket{c: c, br: br}
		return ws.echo("hello")
	})
	return ws
}

func (w *albWebSocket) echo(msg string) error {
	_ = w.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(w.c, "%s\n", msg); err != nil {
		return err
	}
	line, err := w.br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read echo of %q: %w", msg, err)
	}
	if !strings.HasPrefix(line, "echo web-b-") || !strings.HasSuffix(line, " "+msg+"\n") {
		return fmt.Errorf("echo of %q is %q", msg, line)
	}
	return nil
}

func (w *albWebSocket) close() { w.c.Close() }

// grpcHealth calls grpc.health.v1.Health/Check for service over TLS
// (SNI and authority host) to the public ALB's port 443 from ext.
func grpcHealth(ext *testutil.Netns, host, service string) error {
	conn, err := grpc.NewClient("passthrough:///"+albPublicIP+":443",
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return ext.DialContext(ctx, "tcp", addr) }),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{ServerName: host, InsecureSkipVerify: true})), //nolint:gosec // default certificate
		grpc.WithAuthority(host))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("health check %q: %w", service, err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health check %q: %s", service, resp.Status)
	}
	return nil
}

// udpEcho sends msg from ext to addr and expects an answer starting with
// want and ending with msg.
func udpEcho(ext *testutil.Netns, addr, msg, want string) error {
	pc, err := ext.ListenPacket("udp", ":0")
	if err != nil {
		return err
	}
	defer pc.Close()
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	if _, err := pc.WriteTo([]byte(msg), to); err != nil {
		return err
	}
	_ = pc.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 512)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		return fmt.Errorf("no UDP answer from %s: %w", addr, err)
	}
	if got := string(buf[:n]); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, " "+msg) {
		return fmt.Errorf("UDP answer %q, want %q... %q", got, want, msg)
	}
	return nil
}
