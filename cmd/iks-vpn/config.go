package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// env is what the pod's environment gives the supervisor (server/vpn
// sets it).
type env struct {
	Name       string
	Generation int64
	Spec       vpnconn.Spec
	Plan       *vpnconn.Plan
	PSK        string
	Cred       *vpnconn.Credentials // ipsec.authby pubkey
	RunDir     string
	APIServer  string
	NodeName   string
	NodeIP     netip.Addr
	PodName    string
	Charon     string // path of charon-systemd
}

func loadEnv() (*env, error) {
	e := &env{Name: os.Getenv("IKS_VPN_NAME"), RunDir: os.Getenv("IKS_VPN_RUN_DIR"), APIServer: os.Getenv("IKS_VPN_APISERVER"),
		NodeName: os.Getenv("NODE_NAME"), PodName: os.Getenv("POD_NAME"), Charon: os.Getenv("IKS_VPN_CHARON")}
	if e.Name == "" {
		return nil, fmt.Errorf("IKS_VPN_NAME is empty: this program runs in the gateway pod the server creates for a VPNConnection")
	}
	if e.RunDir == "" {
		e.RunDir = "/run/iks-vpn"
	}
	if e.Charon == "" {
		e.Charon = "/usr/sbin/charon-systemd"
	}
	if e.APIServer == "" {
		h, p := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if h == "" {
			return nil, fmt.Errorf("neither IKS_VPN_APISERVER nor KUBERNETES_SERVICE_HOST is set: cannot report status")
		}
		e.APIServer = "https://" + joinHostPort(h, p)
	}
	e.Generation, _ = strconv.ParseInt(os.Getenv("IKS_VPN_GENERATION"), 10, 64)
	if err := json.Unmarshal([]byte(os.Getenv("IKS_VPN_SPEC")), &e.Spec); err != nil {
		return nil, fmt.Errorf("IKS_VPN_SPEC: %w", err)
	}
	var cl vpnconn.Cluster
	cl.PodCIDR, _ = netip.ParsePrefix(os.Getenv("IKS_VPN_POD_CIDR"))
	cl.ServiceCIDR, _ = netip.ParsePrefix(os.Getenv("IKS_VPN_SERVICE_CIDR"))
	p, err := vpnconn.Validate(e.Name, e.Spec, cl)
	if err != nil {
		return nil, fmt.Errorf("VPNConnection %s: %w", e.Name, err)
	}
	e.Plan = p
	if ip := os.Getenv("NODE_IP"); ip != "" {
		if e.NodeIP, err = netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("NODE_IP %q: %w", ip, err)
		}
	}
	if p.UsesCertificates() {
		if e.Cred, err = readCredentials(os.Getenv("IKS_VPN_CERT_DIR")); err != nil {
			return nil, err
		}
		return e, nil
	}
	pskFile := os.Getenv("IKS_VPN_PSK_FILE")
	b, err := os.ReadFile(pskFile)
	if err != nil {
		return nil, fmt.Errorf("read the pre-shared key: %w", err)
	}
	e.PSK = strings.TrimRight(string(b), "\r\n")
	if e.PSK == "" {
		return nil, fmt.Errorf("the pre-shared key in %s is empty", pskFile)
	}
	return e, nil
}

func joinHostPort(h, p string) string {
	if p == "" {
		p = "443"
	}
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + p
	}
	return h + ":" + p
}

// readCredentials reads the mounted certificate Secret.
func readCredentials(dir string) (*vpnconn.Credentials, error) {
	if dir == "" {
		return nil, errors.New("IKS_VPN_CERT_DIR is empty: the certificate Secret is not mounted")
	}
	var c vpnconn.Credentials
	for _, f := range []struct {
		key string
		dst *[]byte
	}{{vpnconn.CertKey, &c.Cert}, {vpnconn.KeyKey, &c.Key}, {vpnconn.CAKey, &c.CA}} {
		b, err := os.ReadFile(filepath.Join(dir, f.key))
		if err != nil {
			return nil, fmt.Errorf("read the certificate Secret: %w", err)
		}
		*f.dst = b
	}
	return &c, nil
}
