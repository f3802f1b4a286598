package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// remoteSite is the "remote site" of TestVPN: a gateway namespace on the
// harness's external subnet running stock strongSwan (Debian's
// charon-systemd with kernel-libipsec, configured with swanctl), and a
// host namespace on the LAN behind it.
type remoteSite struct {
	GW, Host       *testutil.Netns
	GWIP, HostIP   string
	LAN            string // the remote subnet
	dir            string
	charon, server *exec.Cmd
}

// remote LAN of the site: outside every harness subnet, so only the
// tunnel reaches it.
const (
	vpnLAN     = "192.168.87.0/24"
	vpnLANGW   = "192.168.87.1"
	vpnLANHost = "192.168.87.10"
	vpnBadLAN  = "192.168.88.0/24"
)

// swanctlConf is the remote's configuration: connection "site" answers
// the cluster's default identities with PSK sitePSK; connection "bad"
// expects another key than the cluster sends.
func swanctlConf(gwIP string) string {
	return fmt.Sprintf(`connections {
  site {
    version = 2
    local_addrs = %[1]s
    dpd_delay = 5s
    local { auth = psk
      id = on-prem }
    remote { auth = psk
      id = ibm-cloud }
    children { site { local_ts = %[2]s
        remote_ts = 172.30.0.0/16,172.21.0.0/16
        dpd_action = clear } }
  }
  bad {
    version = 2
    local_addrs = %[1]s
    local { auth = psk
      id = on-prem-b }
    remote { auth = psk
      id = ibm-cloud-b }
    children { bad { local_ts = %[3]s
        remote_ts = 172.30.0.0/16,172.21.0.0/16 } }
  }
}
secrets {
  ike-site { id-a = on-prem
    id-b = ibm-cloud
    secret = "site-secret" }
  ike-bad { id-a = on-prem-b
    id-b = ibm-cloud-b
    secret = "the-right-secret" }
}
`, gwIP, vpnLAN, vpnBadLAN)
}

func newRemoteSite(t *testing.T, nw *testutil.Network, httpdBin string) *remoteSite {
	t.Helper()
	testutil.RequireTools(t, "charon-systemd libcharon-extra-plugins", "/usr/sbin/charon-systemd")
	testutil.RequireTools(t, "strongswan-swanctl", "swanctl")
	s := &remoteSite{GW: testutil.NewNetns(t, "iks-vpn-rgw"), Host: testutil.NewNetns(t, "iks-vpn-rhost"),
		GWIP: nw.IP("ext", 20), HostIP: vpnLANHost, LAN: vpnLAN, dir: t.TempDir()}
	nw.Attach(s.GW, "ext", s.GWIP, "v-vpn-rgw")
	testutil.MustRun(t, "ip", "link", "add", "lan0", "netns", s.GW.Name, "type", "veth", "peer", "name", "eth0", "netns", s.Host.Name)
	testutil.MustRun(t, "ip", "-n", s.GW.Name, "addr", "add", vpnLANGW+"/24", "dev", "lan0")
	testutil.MustRun(t, "ip", "-n", s.GW.Name, "link", "set", "lan0", "up")
	testutil.MustRun(t, "ip", "-n", s.Host.Name, "addr", "add", vpnLANHost+"/24", "dev", "eth0")
	testutil.MustRun(t, "ip", "-n", s.Host.Name, "link", "set", "eth0", "up")
	testutil.MustRun(t, "ip", "-n", s.Host.Name, "link", "set", "lo", "up")
	testutil.MustRun(t, "ip", "-n", s.Host.Name, "route", "add", "default", "via", vpnLANGW)
	if out, err := s.GW.Exec("sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		t.Fatalf("ip_forward in the remote gateway: %v: %s", err, out)
	}
	conf := fmt.Sprintf(`charon-systemd {
  load = random nonce openssl pem pkcs1 x509 pubkey kdf kernel-libipsec kernel-netlink socket-default vici
  journal { default = -1 }
  plugins { vici { socket = unix://%s/charon.vici } }
}
`, s.dir)
	if err := os.WriteFile(filepath.Join(s.dir, "strongswan.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "swanctl.conf"), []byte(swanctlConf(s.GWIP)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.charon = s.start(t, "charon-daemon", "STRONGSWAN_CONF="+filepath.Join(s.dir, "strongswan.conf"), s.GW, "/usr/sbin/charon-systemd")
	eventually(t, 20*time.Second, "remote charon loads its configuration", func() error {
		out, err := s.swanctl("--load-all", "--file", filepath.Join(s.dir, "swanctl.conf"))
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
	// charon-systemd logs to the journal only: swanctl --log streams it.
	s.start(t, "charon", "", s.GW, "swanctl", "--log", "--uri", "unix://"+s.dir+"/charon.vici")
	s.server = s.start(t, "httpd", "PORT=8080", s.Host, httpdBin)
	return s
}

// start runs bin in ns with one extra environment entry, killed at cleanup.
func (s *remoteSite) start(t *testing.T, name, env string, ns *testutil.Netns, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + ns.Path(), "--", bin}, args...)...)
	cmd.Env = append(os.Environ(), env)
	log, err := os.Create(filepath.Join(s.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = log.Close()
	})
	return cmd
}

// swanctl runs swanctl against the remote charon.
func (s *remoteSite) swanctl(args ...string) (string, error) {
	full := append([]string{"--net=" + s.GW.Path(), "--", "swanctl"}, args...)
	full = append(full, "--uri", "unix://"+s.dir+"/charon.vici")
	out, err := exec.Command("nsenter", full...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// hostGet fetches url from the remote host namespace.
func (s *remoteSite) hostGet(httpdBin, url string) (string, error) {
	out, err := exec.Command("nsenter", "--net="+s.Host.Path(), "--", httpdBin, "get", url).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// addSingle adds connection "single" to the remote, initiated by the
// remote toward the cluster's gateway at gwIP (the cluster side waits:
// ipsec.auto add), and initiates it.
func (s *remoteSite) addSingle(t *testing.T, gwIP, single string) {
	t.Helper()
	conf := swanctlConf(s.GWIP) + fmt.Sprintf(`connections {
  single {
    version = 2
    local_addrs = %s
    remote_addrs = %s
    local { auth = psk
      id = on-prem-s }
    remote { auth = psk
      id = ibm-cloud-s }
    children { single { local_ts = %s
        remote_ts = %s/32 } }
  }
}
secrets {
  ike-single { id-a = on-prem-s
    id-b = ibm-cloud-s
    secret = "single-secret" }
}
`, s.GWIP, gwIP, vpnLAN, single)
	f := filepath.Join(s.dir, "swanctl.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := s.swanctl("--load-all", "--file", f); err != nil {
		t.Fatalf("remote load: %v: %s", err, out)
	}
	eventually(t, 30*time.Second, "the remote initiates single", func() error {
		out, err := s.swanctl("--initiate", "--child", "single", "--timeout", "10")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
}
