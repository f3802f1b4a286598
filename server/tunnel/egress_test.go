package tunnel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/server/egressselector"
)

// The file must decode strictly and validate exactly as kube-apiserver
// reads --egress-selector-config-file.
func TestEgressSelectorConfigDecodesAsTheAPIServerReadsIt(t *testing.T) {
	dir := t.TempDir()
	for _, uds := range []string{
		"/var/lib/iks/run/konnectivity/konnectivity-server.sock",
		`/tmp/odd dir/with "quotes": and #hash/k.sock`,
	} {
		path := filepath.Join(dir, "egress.yaml")
		if err := WriteEgressSelectorConfig(path, uds); err != nil {
			t.Fatal(err)
		}
		cfg, err := egressselector.ReadEgressSelectorConfiguration(path)
		if err != nil {
			t.Fatalf("decode %q: %v\n%s", uds, err, EgressSelectorConfig(uds))
		}
		if errs := egressselector.ValidateEgressSelectorConfiguration(cfg); len(errs) != 0 {
			t.Fatalf("validate: %v", errs.ToAggregate())
		}
		if len(cfg.EgressSelections) != 1 {
			t.Fatalf("want one egress selection, got %+v", cfg.EgressSelections)
		}
		sel := cfg.EgressSelections[0]
		if sel.Name != "cluster" || sel.Connection.ProxyProtocol != apiserver.ProtocolGRPC {
			t.Fatalf("want cluster over GRPC, got %q over %q", sel.Name, sel.Connection.ProxyProtocol)
		}
		tr := sel.Connection.Transport
		if tr == nil || tr.UDS == nil || tr.TCP != nil || tr.UDS.UDSName != uds {
			t.Fatalf("want UDS transport %q, got %+v", uds, tr)
		}
	}
}

func TestWriteEgressSelectorConfigIsPrivateAndAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "egress.yaml")
	for _, uds := range []string{"/run/a.sock", "/run/b.sock"} { // create, then replace
		if err := WriteEgressSelectorConfig(path, uds); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(EgressSelectorConfig(uds)) {
			t.Fatalf("file holds\n%s\nwant\n%s", got, EgressSelectorConfig(uds))
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", info.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestWriteEgressSelectorConfigRejectsBadSocketPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "egress.yaml")
	for _, uds := range []string{"", "run/k.sock", "/" + strings.Repeat("x", 200)} {
		if err := WriteEgressSelectorConfig(path, uds); err == nil {
			t.Fatalf("socket path %q accepted", uds)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a file was written for a bad socket path: %v", err)
	}
}
