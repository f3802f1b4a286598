package proxy

import (
	"context"
	"fmt"
	"os/exec"

	"k8s.io/apimachinery/pkg/util/version"
	utilkernel "k8s.io/kubernetes/pkg/util/kernel"
	"sigs.k8s.io/knftables"

	"github.com/iks-dev/iks/internal/config"
)

// probeTable is the nftables table the mode check asks the kernel about
// (nft --check: validated by the kernel, never created).
const probeTable = "iks-proxy-probe"

// ResolveMode turns the asked mode into the one kube-proxy runs: auto
// becomes nftables where this host supports it and iptables otherwise; an
// explicit mode the host cannot run is an error naming the fix. reason
// says why auto chose what it chose.
func ResolveMode(ctx context.Context, asked config.ProxyMode) (mode config.ProxyMode, reason string, err error) {
	switch asked {
	case config.ProxyModeNFTables:
		if err := NFTablesSupported(ctx); err != nil {
			return "", "", fmt.Errorf("--proxy-mode nftables: this host cannot run kube-proxy's nftables mode: %w; use --proxy-mode iptables (or auto)", err)
		}
		return asked, "asked for", nil
	case config.ProxyModeIPTables:
		if err := IPTablesSupported(); err != nil {
			return "", "", fmt.Errorf("--proxy-mode iptables: %w; install iptables or use --proxy-mode nftables (or auto)", err)
		}
		return asked, "asked for", nil
	case config.ProxyModeAuto, "":
		nftErr := NFTablesSupported(ctx)
		if nftErr == nil {
			return config.ProxyModeNFTables, "the kernel and nft can create nftables tables", nil
		}
		if err := IPTablesSupported(); err != nil {
			return "", "", fmt.Errorf("kube-proxy has no usable backend: nftables: %v; iptables: %w; install nftables (nft) or iptables", nftErr, err)
		}
		return config.ProxyModeIPTables, fmt.Sprintf("nftables unavailable (%v)", nftErr), nil
	default:
		return "", "", fmt.Errorf("unknown proxy mode %q: use auto, nftables or iptables", asked)
	}
}

// NFTablesSupported runs kube-proxy's own nftables check: the kernel is
// 5.13 or newer (which implies a new enough nft, see kube-proxy's
// supported.go) and nft ≥ 1.0.1 can create a table here.
func NFTablesSupported(ctx context.Context) error {
	kv, err := utilkernel.GetVersion()
	if err != nil {
		return fmt.Errorf("read the kernel version: %w", err)
	}
	if kv.LessThan(version.MustParseGeneric(utilkernel.NFTablesKubeProxyKernelVersion)) {
		return fmt.Errorf("kernel %s is older than %s", kv, utilkernel.NFTablesKubeProxyKernelVersion)
	}
	nft, err := knftables.New(knftables.IPv4Family, probeTable)
	if err != nil {
		return err
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("iks: kube-proxy mode check")})
	tx.Add(&knftables.Chain{Name: "probe", Type: knftables.PtrTo(knftables.NATType),
		Hook: knftables.PtrTo(knftables.PreroutingHook), Priority: knftables.PtrTo(knftables.DNATPriority)})
	if err := nft.Check(ctx, tx); err != nil {
		return fmt.Errorf("nft cannot create a nat chain: %w", err)
	}
	return nil
}

// IPTablesSupported checks for the iptables tools kube-proxy runs.
func IPTablesSupported() error {
	for _, tool := range []string{"iptables", "iptables-save", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found in PATH", tool)
		}
	}
	return nil
}
