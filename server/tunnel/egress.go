package tunnel

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/iks-dev/iks/internal/fsutil"
)

// egressTemplate is kube-apiserver's EgressSelectorConfiguration: traffic
// of the "cluster" egress (nodes, pods, services: kubelet logs/exec/
// port-forward, proxy subresources, webhooks, aggregated APIs) goes over
// gRPC to the Konnectivity server's socket. "controlplane" and "etcd" are
// not listed, so they stay direct. %s is a JSON string (valid YAML).
const egressTemplate = `apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: GRPC
    transport:
      uds:
        udsName: %s
`

// EgressSelectorConfig returns the kube-apiserver egress selector
// configuration (apiserver.k8s.io/v1beta1) that sends the "cluster" egress
// through the Konnectivity server listening on udsPath.
func EgressSelectorConfig(udsPath string) []byte {
	quoted, _ := json.Marshal(udsPath) // a string always marshals
	return fmt.Appendf(nil, egressTemplate, quoted)
}

// WriteEgressSelectorConfig writes EgressSelectorConfig(udsPath) to path
// (mode 0600, atomically: readers see the old or the new file, never part
// of one), for kube-apiserver's --egress-selector-config-file.
func WriteEgressSelectorConfig(path, udsPath string) (err error) {
	if err := validateUDSPath(udsPath); err != nil {
		return err
	}
	if path == "" {
		return fmt.Errorf("egress selector config path is empty: set the file kube-apiserver reads")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory %s for the egress selector config: %w (check that the data dir is writable)", dir, err)
	}
	if err := fsutil.WriteFileAtomic(path, EgressSelectorConfig(udsPath), 0o600); err != nil {
		return fmt.Errorf("egress selector config: %w", err)
	}
	return nil
}
