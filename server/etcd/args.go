package etcd

import (
	"net/url"
	"strconv"
	"strings"

	"go.etcd.io/etcd/server/v3/embed"
)

// flags renders the embedded member's configuration as the etcd command
// line that would start the same member, for component.WriteArgs: the
// TLS settings CIS audits check (certificates, client-cert-auth, no
// auto-tls) and where the member listens and keeps its data.
func flags(c *embed.Config) []string {
	return []string{
		"--name=" + c.Name,
		"--data-dir=" + c.Dir,
		"--listen-client-urls=" + joinURLs(c.ListenClientUrls),
		"--listen-peer-urls=" + joinURLs(c.ListenPeerUrls),
		"--cert-file=" + c.ClientTLSInfo.CertFile,
		"--key-file=" + c.ClientTLSInfo.KeyFile,
		"--trusted-ca-file=" + c.ClientTLSInfo.TrustedCAFile,
		"--client-cert-auth=" + strconv.FormatBool(c.ClientTLSInfo.ClientCertAuth),
		"--auto-tls=" + strconv.FormatBool(c.ClientAutoTLS),
		"--peer-cert-file=" + c.PeerTLSInfo.CertFile,
		"--peer-key-file=" + c.PeerTLSInfo.KeyFile,
		"--peer-trusted-ca-file=" + c.PeerTLSInfo.TrustedCAFile,
		"--peer-client-cert-auth=" + strconv.FormatBool(c.PeerTLSInfo.ClientCertAuth),
		"--peer-auto-tls=" + strconv.FormatBool(c.PeerAutoTLS),
	}
}

func joinURLs(us []url.URL) string {
	s := make([]string, len(us))
	for i := range us {
		s[i] = us[i].String()
	}
	return strings.Join(s, ",")
}
