package config

import (
	"strings"

	"github.com/spf13/pflag"
)

// ProxyMode selects kube-proxy's backend.
type ProxyMode string

// Proxy modes. Auto picks nftables where the kernel and the nft tool can
// create a table, iptables otherwise (decided by agent/proxy at start).
const (
	ProxyModeAuto     ProxyMode = "auto"
	ProxyModeNFTables ProxyMode = "nftables"
	ProxyModeIPTables ProxyMode = "iptables"
)

// ProxyModes lists the accepted --proxy-mode values.
var ProxyModes = []ProxyMode{ProxyModeAuto, ProxyModeNFTables, ProxyModeIPTables}

// Proxy ports kube-proxy listens on, loopback only.
const (
	ProxyHealthzPort = 10256
	ProxyMetricsPort = 10249
)

func addProxyModeFlag(fs *pflag.FlagSet, v *string) {
	fs.StringVar(v, "proxy-mode", string(ProxyModeAuto),
		"kube-proxy backend: auto (nftables where the kernel and nft support it, else iptables), nftables or iptables")
}

// parseProxyMode checks a --proxy-mode value.
func parseProxyMode(bad func(string, ...any), v string) ProxyMode {
	for _, m := range ProxyModes {
		if ProxyMode(v) == m {
			return m
		}
	}
	names := make([]string, len(ProxyModes))
	for i, m := range ProxyModes {
		names[i] = string(m)
	}
	bad("--proxy-mode %q is not a kube-proxy mode: use one of %s", v, strings.Join(names, ", "))
	return ""
}
