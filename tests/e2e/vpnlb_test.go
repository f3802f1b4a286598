package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/internal/vpnconn"
	"github.com/iks-dev/iks/tests/testutil"
)

// The VPN's portable subnet: private, inside the server's subnet "a"
// (10.87.1.0/24), so the server node may hold its IPs and the router
// reaches them by ARP. Service IPs are .100 to .103.
const (
	vpnPortable = "10.87.1.96/29"
	vpnLBInIP   = "10.87.1.100"
	vpnLBOutIP  = "10.87.1.101"
)

// remoteLBConf are the remote's connections to the cluster's load
// balancer IPs: "lbin" initiated by the remote toward vpnLBInIP (the
// cluster waits: ipsec.auto add), "lbout" accepting the cluster only from
// vpnLBOutIP (connectUsingLoadBalancerIP).
func remoteLBConf(gwIP string) string {
	conn := func(name, peer string) string {
		return fmt.Sprintf(`  %[1]s {
    version = 2
    local_addrs = %[2]s
    remote_addrs = %[3]s
    local { auth = psk
      id = on-prem-%[1]s }
    remote { auth = psk
      id = ibm-cloud-%[1]s }
    children { %[1]s { local_ts = %[4]s
        remote_ts = 172.30.0.0/16,172.21.0.0/16 } }
  }
`, name, gwIP, peer, vpnLAN)
	}
	return "connections {\n" + conn("lbin", vpnLBInIP) + conn("lbout", vpnLBOutIP) + `}
secrets {
  ike-lbin { id-a = on-prem-lbin
    id-b = ibm-cloud-lbin
    secret = "site-secret" }
  ike-lbout { id-a = on-prem-lbout
    id-b = ibm-cloud-lbout
    secret = "site-secret" }
}
`
}

// testVPNLoadBalancerIP: loadBalancerIP outside the portable subnets is
// named in condition Valid; with a portable IP the remote connects to
// that IP (kube-proxy forwards UDP 500/4500 to the gateway on the node
// holding it); with connectUsingLoadBalancerIP (a YAML boolean) the
// cluster connects from it and the remote, which accepts only that
// address, sees it; moved to another node, the gateway takes the IP
// along where that node can hold it, and says that it waits otherwise.
func testVPNLoadBalancerIP(t *testing.T, v *vpnCluster) {
	applyVPN(t, v.srv, fmt.Sprintf(`{"apiVersion":"network.iks.io/v1","kind":"PortableSubnet","metadata":{"name":"vpn"},"spec":{"type":"private","cidr":%q}}`, vpnPortable))
	eventually(t, 30*time.Second, "the pools list "+vpnPortable, func() error {
		cm, err := v.cs.CoreV1().ConfigMaps(lbpool.ConfigMapNamespace).Get(context.Background(), lbpool.ConfigMapName, metav1.GetOptions{})
		if err == nil && !strings.Contains(cm.Data[lbpool.ConfigMapKey], vpnPortable) {
			err = fmt.Errorf("not yet: %s", cm.Data[lbpool.ConfigMapKey])
		}
		return err
	})
	applyVPN(t, v.srv, `{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":"lbbad"},
"spec":{"loadBalancerIP":"10.87.1.50","remote":{"subnet":"192.168.89.0/24"},"preshared":{"secretName":"site-psk"}}}`)
	c := waitVPN(t, v.dyn, "lbbad", 30*time.Second, func(c *vpnconn.Conn) error {
		if e := c.Status.Condition(vpnconn.ConditionValid); e == nil || e.Status != metav1.ConditionFalse {
			return fmt.Errorf("Valid %+v, want False", e)
		}
		return nil
	})
	if msg := c.Status.Condition(vpnconn.ConditionValid).Message; !strings.Contains(msg, "loadBalancerIP 10.87.1.50 is outside the portable subnets") || !strings.Contains(msg, vpnPortable) {
		t.Errorf("Valid message %q: want the IP, the subnets and the fix", msg)
	}
	v.deleteVPN(t, "lbbad")
	v.site.charon.Load(swanctlConf(v.site.GWIP) + remoteLBConf(v.site.GWIP))

	// The gateway on the server node: the one node of the test on the
	// portable subnet's network that is never killed.
	spec := func(name, node, gateway, extra string) string {
		return fmt.Sprintf(`{"apiVersion":"network.iks.io/v1","kind":"VPNConnection","metadata":{"name":%q},
"spec":{%s"local":{"id":"ibm-cloud-%s"},"remote":{"gateway":%q,"id":"on-prem-%s","subnet":%q},"preshared":{"secretName":"site-psk"},
"nodeSelector":{"kubernetes.io/hostname":%q}}}`, name, extra, name, gateway, name, v.site.LAN, node)
	}
	applyVPN(t, v.srv, spec("lbin", v.srv.Name, "%any", fmt.Sprintf(`"loadBalancerIP":%q,`, vpnLBInIP)))
	waitVPN(t, v.dyn, "lbin", 60*time.Second, func(c *vpnconn.Conn) error {
		if e := c.Status.Condition(vpnconn.ConditionEstablished); e == nil || e.Reason != vpnconn.ReasonWaitingForPeer || !strings.Contains(e.Message, vpnLBInIP) {
			return fmt.Errorf("Established %+v, want %s naming %s", e, vpnconn.ReasonWaitingForPeer, vpnLBInIP)
		}
		return nil
	})
	eventually(t, 60*time.Second, "the remote initiates lbin toward "+vpnLBInIP, func() error {
		out, err := v.site.swanctl("--initiate", "--child", "lbin", "--timeout", "10")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
	waitVPN(t, v.dyn, "lbin", 30*time.Second, func(c *vpnconn.Conn) error {
		if !c.Up() || c.Status.Gateway.LoadBalancerIP != vpnLBInIP {
			return fmt.Errorf("established %v, gateway %+v: want established with %s on the gateway's node", c.Up(), c.Status.Gateway, vpnLBInIP)
		}
		return nil
	})
	if out, err := v.srv.Command("vpn", "status").CombinedOutput(); err != nil || !strings.Contains(string(out), v.srv.Name+" ("+vpnLBInIP+")") {
		t.Errorf("iks vpn status: %v: want the gateway node with its load balancer IP\n%s", err, out)
	}
	if out, err := v.srv.Command("vpn", "check", "lbin").CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS  load balancer IP") {
		t.Errorf("iks vpn check lbin: %v: want the load balancer IP check passed\n%s", err, out)
	}
	if out, err := v.site.swanctl("--list-sas", "--ike", "lbin"); err != nil || !strings.Contains(out, "ESTABLISHED") || !strings.Contains(out, vpnLBInIP) {
		t.Errorf("remote SA of lbin: %v\n%s\nwant ESTABLISHED with %s", err, out, vpnLBInIP)
	}
	v.reachesRemote(t)
	v.deleteVPN(t, "lbin")

	lbout := fmt.Sprintf(`"ipsec":{"auto":"start"},"loadBalancerIP":%q,"connectUsingLoadBalancerIP":true,`, vpnLBOutIP)
	applyVPN(t, v.srv, spec("lbout", v.srv.Name, v.site.GWIP, lbout))
	c = waitVPN(t, v.dyn, "lbout", 90*time.Second, func(c *vpnconn.Conn) error {
		if !c.Up() {
			return fmt.Errorf("not established: %+v", c.Status.Conditions)
		}
		return nil
	})
	if c.Status.Gateway.LoadBalancerIP != vpnLBOutIP || c.Status.IKE.LocalHost != vpnLBOutIP {
		t.Errorf("gateway %+v IKE %+v: want charon on the load balancer IP %s", c.Status.Gateway, c.Status.IKE, vpnLBOutIP)
	}
	if out, err := v.site.swanctl("--list-sas", "--ike", "lbout"); err != nil || !strings.Contains(out, "ESTABLISHED") || !strings.Contains(out, vpnLBOutIP) {
		t.Errorf("remote SA of lbout: %v\n%s\nwant ESTABLISHED from %s", err, out, vpnLBOutIP)
	}
	v.reachesRemote(t)

	// The gateway moves to the surviving worker: on subnet a the IP
	// follows it and charon connects from it again; on subnet b no node
	// there may hold it, and the condition says what charon waits for.
	var worker *testutil.Node
	for _, n := range v.alive {
		if n != v.srv {
			worker = n
		}
	}
	oldPod := c.Status.Gateway.Pod
	applyVPN(t, v.srv, spec("lbout", worker.Name, v.site.GWIP, lbout))
	network := netip.PrefixFrom(netip.MustParsePrefix(vpnPortable).Addr(), 24) // subnet a
	if network.Contains(netip.MustParseAddr(worker.IP)) {
		c = waitVPN(t, v.dyn, "lbout", 60*time.Second, func(c *vpnconn.Conn) error {
			if c.Status.Gateway.Node != worker.Name || !c.Up() || c.Status.Gateway.LoadBalancerIP != vpnLBOutIP {
				return fmt.Errorf("gateway %+v established %v: want %s up on %s", c.Status.Gateway, c.Up(), vpnLBOutIP, worker.Name)
			}
			return nil
		})
		if out, err := v.site.swanctl("--list-sas", "--ike", "lbout"); err != nil || !strings.Contains(out, "ESTABLISHED") || !strings.Contains(out, vpnLBOutIP) {
			t.Errorf("remote SA of lbout after the move to %s: %v\n%s\nwant ESTABLISHED from %s", worker.Name, err, out, vpnLBOutIP)
		}
		return
	}
	waitVPN(t, v.dyn, "lbout", 60*time.Second, func(c *vpnconn.Conn) error {
		e := c.Status.Condition(vpnconn.ConditionEstablished)
		if c.Status.Gateway.Pod == oldPod || e == nil || e.Status != metav1.ConditionFalse || !strings.Contains(e.Message, "waiting for the load balancer IP "+vpnLBOutIP) {
			return fmt.Errorf("gateway %+v, Established %+v: want it waiting for %s on %s", c.Status.Gateway, e, vpnLBOutIP, worker.Name)
		}
		return nil
	})
}
