package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// probeEtcd asks one endpoint for its version over the client TLS, so that
// a refused connection, an untrusted server or a refused client
// certificate is named as such, with its fix.
func probeEtcd(ctx context.Context, endpoint string, tlsCfg *tls.Config) (string, error) {
	tr := &http.Transport{}
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg.Clone()
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/version", nil)
	if err != nil {
		return "", fmt.Errorf("--datastore-endpoint %s: %w", endpoint, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", fmt.Errorf("--datastore-endpoint %s does not answer: %v; %s", endpoint, err, probeHint(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "etcdserver") {
		return "", fmt.Errorf("--datastore-endpoint %s answers %s to GET /version, not as etcd does (%.100q): pass the client URL of an etcd member (port 2379)", endpoint, resp.Status, body)
	}
	return strings.TrimSpace(string(body)), nil
}

// probeHint names the fix for a failed probe.
func probeHint(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "unknown authority") || strings.Contains(s, "not standards compliant"):
		return "the etcd server's certificate is not signed by --datastore-cafile: pass the CA etcd's --trusted-ca-file names"
	case strings.Contains(s, "certificate is valid for") || strings.Contains(s, "doesn't contain any IP SANs"):
		return "the etcd server's certificate does not name this endpoint's host: use a host name or IP its certificate lists"
	case strings.Contains(s, "certificate required") || strings.Contains(s, "bad certificate") || strings.Contains(s, "unknown certificate"):
		return "etcd refuses this client: pass --datastore-certfile/--datastore-keyfile with a client certificate signed by the CA etcd trusts (its --trusted-ca-file)"
	case strings.Contains(s, "server gave HTTP response to HTTPS client"):
		return "this etcd serves plain http: use an http:// endpoint (or, better, enable TLS on etcd)"
	case strings.Contains(s, "malformed HTTP response"):
		return "this etcd serves TLS: use an https:// endpoint"
	case strings.Contains(s, "connection refused"):
		return "nothing listens there: is etcd running, and is this its client URL (--advertise-client-urls, port 2379)?"
	default:
		return "is etcd running and reachable from this host on that port (firewall, routes)?"
	}
}
