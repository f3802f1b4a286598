package config

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

// kernelConfig is a kernel build configuration with every feature iks
// uses, except IP-in-IP (as on the test machines).
var kernelConfig = []string{"CONFIG_VETH=y", "CONFIG_NF_CONNTRACK=m", "CONFIG_NF_NAT=m",
	"CONFIG_NETFILTER_XT_TARGET_MASQUERADE=m", "CONFIG_NETFILTER_XT_MATCH_COMMENT=m",
	"CONFIG_NF_TABLES=m", "CONFIG_IP_NF_IPTABLES=m", "CONFIG_VXLAN=m", "# CONFIG_NET_IPIP is not set"}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// healthyHost is a node-capable host as the host checks read it.
func healthyHost() map[string]string {
	return map[string]string{
		"/proc/sys/kernel/osrelease":        "6.1.0-test\n",
		"/proc/config.gz":                   gz(strings.Join(kernelConfig, "\n") + "\n"),
		"/proc/cgroups":                     "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t0\t1\t1\nmemory\t0\t1\t1\npids\t0\t1\t1\n",
		"/sys/fs/cgroup/cgroup.controllers": "cpu memory pids\n",
		"/proc/self/status":                 "Name:\tx\nSeccomp:\t0\nSeccomp_filters:\t0\n",
		"/sys/module/overlay":               "",
		"/sys/module/nf_conntrack":          "",
	}
}

func hostEnv(edit func(e *fakeEnv)) fakeEnv {
	e := goodEnv()
	if edit != nil {
		edit(&e)
	}
	return e
}

func find(t *testing.T, cs []HostCheck, name string) HostCheck {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check named %s in %v", name, cs)
	return HostCheck{}
}

func TestHostChecksHealthy(t *testing.T) {
	cs := CheckHost(hostEnv(nil))
	if errs := HostErrors(cs); len(errs) != 0 {
		t.Fatalf("a healthy host is refused: %v", errs)
	}
	for name, detail := range map[string]string{"overlay": "in /proc/filesystems", "cgroups": "v2 (unified)", "seccomp": "Seccomp",
		"veth": "built in", "nf_nat": "module", "nf_conntrack": "loaded", "iptables": "/usr/sbin/iptables", "nft": "/usr/sbin/nft"} {
		c := find(t, cs, name)
		if c.State != Found || !strings.Contains(c.Detail, detail) {
			t.Errorf("%s: %s (%s), want found (%s)", name, c.State, c.Detail, detail)
		}
	}
	fb := HostFallbacks(cs)
	if len(fb) != 1 || fb[0].Name != "ipip" || !strings.Contains(fb[0].Fallback, "VXLAN") ||
		!strings.Contains(fb[0].Detail, "CONFIG_NET_IPIP is not set in /proc/config.gz") {
		t.Errorf("fallbacks = %+v, want ipip -> VXLAN (CONFIG_NET_IPIP not set)", fb)
	}
}

func TestHostChecksMissing(t *testing.T) {
	cases := []struct {
		name     string
		edit     func(e *fakeEnv)
		wantErr  []string // in the joined error; none = no error
		fallback string   // a missing optional check and its fallback
	}{
		{name: "nft", edit: func(e *fakeEnv) { e.noTools = map[string]bool{"nft": true} },
			fallback: "nft: iptables mode"},
		{name: "iptables", edit: func(e *fakeEnv) { e.noTools = map[string]bool{"iptables": true, "iptables-restore": true} },
			fallback: "iptables: nftables mode"},
		{name: "neither nft nor iptables", edit: func(e *fakeEnv) { e.noTools = map[string]bool{"nft": true, "iptables-restore": true} },
			wantErr: []string{"tool nft or iptables is missing", "apt-get install nftables", "NAT outgoing"}},
		{name: "mount", edit: func(e *fakeEnv) { e.noTools = map[string]bool{"mount": true} },
			wantErr: []string{"tool mount is missing", "apt-get install mount"}},
		{name: "veth", edit: func(e *fakeEnv) { e.files["/proc/config.gz"] = gz("# CONFIG_VETH is not set\nCONFIG_NF_TABLES=y\n") },
			wantErr: []string{"kernel veth is missing", "CONFIG_VETH is not set", "modprobe veth"}},
		{name: "no netfilter back-end", edit: func(e *fakeEnv) {
			cfg := strings.Join(kernelConfig, "\n")
			cfg = strings.ReplaceAll(cfg, "CONFIG_NF_TABLES=m", "# CONFIG_NF_TABLES is not set")
			e.files["/proc/config.gz"] = gz(strings.ReplaceAll(cfg, "CONFIG_IP_NF_IPTABLES=m", ""))
		}, wantErr: []string{"nf_tables or ip_tables is missing", "neither netfilter back-end"}},
		{name: "pids controller", edit: func(e *fakeEnv) { e.files["/proc/cgroups"] = "cpu\t0\t1\t1\nmemory\t0\t1\t1\npids\t0\t1\t0\n" },
			wantErr: []string{"kernel cgroups is missing", "without the pids controller"}},
		{name: "overlay", edit: func(e *fakeEnv) { e.fss = map[string]bool{"cgroup2": true} },
			wantErr: []string{"kernel overlay is missing", "modprobe overlay"}},
		{name: "vxlan", edit: func(e *fakeEnv) {
			e.files["/proc/config.gz"] = gz(strings.ReplaceAll(strings.Join(kernelConfig, "\n"), "CONFIG_VXLAN=m", ""))
		}, fallback: "vxlan: pods reach only nodes on the same subnet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := goodEnv()
			c.edit(&env)
			cs := CheckHost(env)
			errs := HostErrors(cs)
			if len(c.wantErr) == 0 && len(errs) > 0 {
				t.Fatalf("refused: %v", errs)
			}
			msg := ""
			for _, e := range errs {
				msg += e.Error() + "\n"
			}
			for _, w := range c.wantErr {
				if !strings.Contains(msg, w) {
					t.Errorf("errors %q do not contain %q", msg, w)
				}
			}
			if c.fallback != "" {
				found := false
				for _, f := range HostFallbacks(cs) {
					found = found || strings.HasPrefix(c.fallback, f.Name+": ") && strings.Contains(f.Fallback, strings.TrimPrefix(c.fallback, f.Name+": "))
				}
				if !found {
					t.Errorf("fallbacks %+v do not contain %q", HostFallbacks(cs), c.fallback)
				}
			}
		})
	}
}

// Without a kernel config, modules.builtin and modules.dep decide; with
// none of them the answer is unknown, which never refuses a start.
func TestHostChecksModuleLists(t *testing.T) {
	env := goodEnv()
	delete(env.files, "/proc/config.gz")
	env.files["/lib/modules/6.1.0-test/modules.builtin"] = "kernel/drivers/net/veth.ko\nkernel/net/netfilter/nf_conntrack.ko\n"
	env.files["/lib/modules/6.1.0-test/modules.dep"] = "kernel/net/ipv4/ipip.ko.xz: kernel/net/ipv4/tunnel4.ko.xz\n" +
		"kernel/net/netfilter/xt_comment.ko.zst:\nkernel/net/netfilter/xt_MASQUERADE.ko:\nkernel/net/netfilter/nf_tables.ko:\n"
	cs := CheckHost(env)
	for name, want := range map[string]string{"veth": "built in", "ipip": "module", "xt_comment": "module"} {
		if c := find(t, cs, name); c.State != Found || c.Detail != want {
			t.Errorf("%s: %s (%s), want found (%s)", name, c.State, c.Detail, want)
		}
	}
	if c := find(t, cs, "nf_nat"); c.State != Missing || !strings.Contains(c.Detail, "/lib/modules/6.1.0-test") {
		t.Errorf("nf_nat: %s (%s), want missing from /lib/modules", c.State, c.Detail)
	}

	env = goodEnv()
	delete(env.files, "/proc/config.gz")
	cs = CheckHost(env)
	if c := find(t, cs, "veth"); c.State != Unknown {
		t.Errorf("veth with no way to tell: %s (%s), want unknown", c.State, c.Detail)
	}
	if errs := HostErrors(cs); len(errs) != 0 {
		t.Errorf("unknown features refuse the start: %v", errs)
	}
}

// iks server and iks agent refuse a host without a required tool, and a
// server without an agent does not check the node's needs.
func TestValidateRunsHostChecks(t *testing.T) {
	env := hostEnv(func(e *fakeEnv) { e.noTools = map[string]bool{"iptables": true, "nft": true} })
	_, err := flags(t).Validate(env)
	if err == nil || !strings.Contains(err.Error(), "tool nft or iptables is missing") || strings.Contains(err.Error(), "tool nft is missing") {
		t.Errorf("server: %v, want 'nft or iptables' (required) refused and neither alone (optional)", err)
	}
	_, err = agentFlags(t, "--server", "https://10.0.0.1", "--token", "x").Validate(env)
	if err == nil || !strings.Contains(err.Error(), "tool nft or iptables is missing") {
		t.Errorf("agent: %v, want the missing packet-rule tools refused", err)
	}
	if _, err := flags(t, "--disable-agent").Validate(env); err != nil {
		t.Errorf("server --disable-agent: %v, want no node checks", err)
	}
	env = hostEnv(func(e *fakeEnv) { e.noTools = map[string]bool{"nft": true} })
	s, err := flags(t).Validate(env)
	if err != nil {
		t.Fatal(err)
	}
	if fb := HostFallbacks(s.Agent.Host); len(fb) != 2 || fb[0].Name != "nft" && fb[1].Name != "nft" {
		t.Errorf("fallbacks kept for the log = %+v, want ipip and nft", fb)
	}
}
