package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// remoteSite is the "remote site" of TestVPN: a gateway namespace on the
// harness's external subnet running stock strongSwan (testutil.Charon:
// Debian's charon-systemd with kernel-libipsec, configured with swanctl),
// and a host namespace on the LAN behind it.
type remoteSite struct {
	GW, Host     *testutil.Netns
	GWIP, HostIP string
	LAN          string // the remote subnet
	charon       *testutil.Charon
	dir          string
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
  lnat {
    version = 2
    local_addrs = %[1]s
    local { auth = psk
      id = on-prem-l }
    remote { auth = psk
      id = ibm-cloud-l }
    children { lnat { local_ts = %[2]s
        remote_ts = 10.252.0.0/16 } }
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
  ike-lnat { id-a = on-prem-l
    id-b = ibm-cloud-l
    secret = "site-secret" }
  ike-bad { id-a = on-prem-b
    id-b = ibm-cloud-b
    secret = "the-right-secret" }
}
`, gwIP, vpnLAN, vpnBadLAN)
}

func newRemoteSite(t *testing.T, nw *testutil.Network, httpdBin string) *remoteSite {
	t.Helper()
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
	s.charon = testutil.StartCharon(t, s.GW, swanctlConf(s.GWIP))
	s.dir = s.charon.Dir
	testutil.SpawnIn(t, s.Host, filepath.Join(s.dir, "httpd.log"), "PORT=8080", httpdBin)
	return s
}

// swanctl runs swanctl against the remote charon.
func (s *remoteSite) swanctl(args ...string) (string, error) { return s.charon.Swanctl(args...) }

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
	s.charon.Load(conf)
	eventually(t, 30*time.Second, "the remote initiates single", func() error {
		out, err := s.swanctl("--initiate", "--child", "single", "--timeout", "10")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
}
