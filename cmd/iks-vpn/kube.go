package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/iks-dev/iks/internal/vpnconn"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// kube is the little of the Kubernetes API the gateway uses (read its
// VPNConnection, write its status) over plain HTTPS with the pod's
// ServiceAccount token: client-go would triple the image.
type kube struct {
	base string
	http *http.Client
}

func newKube(apiserver string) (*kube, error) {
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return nil, fmt.Errorf("read the ServiceAccount CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the ServiceAccount ca.crt holds no certificate")
	}
	return &kube{base: strings.TrimRight(apiserver, "/"), http: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}, nil
}

func (k *kube) do(ctx context.Context, method, path string, body []byte) ([]byte, int, error) {
	tok, err := os.ReadFile(saDir + "/token") // re-read: the kubelet rotates it
	if err != nil {
		return nil, 0, fmt.Errorf("read the ServiceAccount token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := k.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return b, resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, resp.StatusCode, nil
}

func connPath(name string) string {
	return "/apis/" + vpnconn.Group + "/" + vpnconn.Version + "/" + vpnconn.Resource + "/" + name
}

// updateStatus applies mutate to the connection's status, retrying on
// conflicts with other writers (the server owns condition Valid).
func (k *kube) updateStatus(ctx context.Context, name string, mutate func(*vpnconn.Conn)) error {
	var last error
	for i := 0; i < 5; i++ {
		b, _, err := k.do(ctx, http.MethodGet, connPath(name), nil)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return fmt.Errorf("decode VPNConnection %s: %w", name, err)
		}
		c, err := vpnconn.FromUnstructured(u)
		if err != nil {
			return err
		}
		mutate(c)
		st, err := vpnconn.StatusObject(c.Status)
		if err != nil {
			return err
		}
		u.Object["status"] = st
		body, err := json.Marshal(u.Object)
		if err != nil {
			return fmt.Errorf("encode VPNConnection %s: %w", name, err)
		}
		_, code, err := k.do(ctx, http.MethodPut, connPath(name)+"/status", body)
		if code == http.StatusConflict {
			last = err
			continue
		}
		return err
	}
	return fmt.Errorf("status of VPNConnection %s: conflicts persisted: %w", name, last)
}

// LeaseDuration is how long the gateway's Lease lasts without renewal;
// the server's VPN controller moves a gateway whose Lease expired.
const (
	leaseRenew    = 2 * time.Second
	leaseDuration = 6
)

// renewLease creates or renews kube-system/iks-vpn-NAME, held by pod.
func (k *kube) renewLease(ctx context.Context, name, pod, node string) error {
	path := "/apis/coordination.k8s.io/v1/namespaces/" + vpnconn.Namespace + "/leases/" + vpnconn.LeaseName(name)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	b, code, err := k.do(ctx, http.MethodGet, path, nil)
	if code == http.StatusNotFound {
		obj := map[string]any{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
			"metadata": map[string]any{"name": vpnconn.LeaseName(name), "namespace": vpnconn.Namespace,
				"annotations": map[string]any{vpnconn.LeaseNodeAnnotation: node}},
			"spec": map[string]any{"holderIdentity": pod, "leaseDurationSeconds": leaseDuration, "renewTime": now, "acquireTime": now}}
		body, _ := json.Marshal(obj)
		_, _, err = k.do(ctx, http.MethodPost, "/apis/coordination.k8s.io/v1/namespaces/"+vpnconn.Namespace+"/leases", body)
		return err
	}
	if err != nil {
		return err
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("decode Lease: %w", err)
	}
	spec, _ := obj["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		obj["spec"] = spec
	}
	if spec["holderIdentity"] != pod {
		spec["holderIdentity"], spec["acquireTime"] = pod, now
	}
	spec["renewTime"], spec["leaseDurationSeconds"] = now, leaseDuration
	md, _ := obj["metadata"].(map[string]any)
	if md != nil {
		ann, _ := md["annotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
			md["annotations"] = ann
		}
		ann[vpnconn.LeaseNodeAnnotation] = node
	}
	body, _ := json.Marshal(obj)
	_, _, err = k.do(ctx, http.MethodPut, path, body)
	return err
}

// nodeMeta reads a node's labels and annotations (the gateway's
// ClusterRole may get nodes).
func (k *kube) nodeMeta(ctx context.Context, node string) (labels, annotations map[string]string, err error) {
	b, _, err := k.do(ctx, "GET", "/api/v1/nodes/"+node, nil)
	if err != nil {
		return nil, nil, err
	}
	var n struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, nil, fmt.Errorf("decode node %s: %w", node, err)
	}
	return n.Metadata.Labels, n.Metadata.Annotations, nil
}
