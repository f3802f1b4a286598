package tunneltest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"sigs.k8s.io/apiserver-network-proxy/konnectivity-client/pkg/client"
)

// Dial opens a TCP connection to addr through the Konnectivity server on
// udsPath the way kube-apiserver's egress selector does (GRPC over UDS, one
// single-use tunnel per connection).
func Dial(ctx context.Context, udsPath, addr string) (net.Conn, error) {
	dialer := grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", udsPath)
	})
	tunnel, err := client.CreateSingleUseGrpcTunnelWithContext(ctx, context.Background(), udsPath, dialer,
		grpc.WithBlock(), grpc.WithReturnConnectionError(), //nolint:staticcheck // as kube-apiserver does
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("create tunnel over %s: %w", udsPath, err)
	}
	conn, err := tunnel.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s through the tunnel: %w", addr, err)
	}
	return conn, nil
}

// Get fetches http://addr/ through the tunnel and returns the body.
func Get(ctx context.Context, udsPath, addr string) (string, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, a string) (net.Conn, error) {
			return Dial(ctx, udsPath, a)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET http://%s/: %s: %s", addr, resp.Status, b)
	}
	return string(b), nil
}
