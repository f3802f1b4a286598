package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

type fakeEnv struct {
	euid   int
	addrs  []netip.Addr
	busy   map[int]bool
	fss    map[string]bool
	unwrit string
	// files is the host's /proc, /sys, /boot and /lib/modules as the host
	// checks see them; nil: every path exists and reads as the real file.
	files map[string]string
	// noTools are the programs LookPath does not find.
	noTools map[string]bool
}

func (f fakeEnv) EUID() int                         { return f.euid }
func (f fakeEnv) Hostname() (string, error)         { return "Edge-1", nil }
func (f fakeEnv) LocalAddrs() ([]netip.Addr, error) { return f.addrs, nil }
func (f fakeEnv) PortFree(_ netip.Addr, p int) error {
	if f.busy[p] {
		return errors.New("address already in use")
	}
	return nil
}
func (f fakeEnv) Writable(dir string) error {
	if f.unwrit != "" && strings.HasPrefix(dir, f.unwrit) {
		return errors.New("permission denied")
	}
	return nil
}
func (f fakeEnv) Filesystems() (map[string]bool, error) { return f.fss, nil }
func (f fakeEnv) ReadFile(p string) ([]byte, error) {
	if v, ok := f.files[p]; ok {
		return []byte(v), nil
	}
	if f.files != nil && !strings.HasPrefix(p, os.TempDir()) {
		return nil, fs.ErrNotExist
	}
	return os.ReadFile(p)
}
func (f fakeEnv) Stat(p string) error {
	if _, ok := f.files[p]; ok || f.files == nil {
		return nil
	}
	return fs.ErrNotExist
}
func (f fakeEnv) LookPath(name string) (string, error) {
	if f.noTools[name] {
		return "", errors.New("executable file not found in $PATH")
	}
	return "/usr/sbin/" + name, nil
}

func goodEnv() fakeEnv {
	return fakeEnv{addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("192.168.1.9")},
		fss: map[string]bool{"overlay": true, "cgroup": true}, files: healthyHost()}
}

func flags(t *testing.T, args ...string) *ServerFlags {
	t.Helper()
	var f ServerFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs)
	if err := fs.Parse(append([]string{"--data-dir", t.TempDir()}, args...)); err != nil {
		t.Fatal(err)
	}
	return &f
}

func TestDefaultsValidate(t *testing.T) {
	s, err := flags(t).Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if s.NodeIP.String() != "10.0.0.5" || s.NodeName != "edge-1" {
		t.Fatalf("node ip/name = %s/%s, want first local address and lower-cased host name", s.NodeIP, s.NodeName)
	}
	if s.ClusterCIDR.String() != DefaultClusterCIDR || s.ServiceCIDR.String() != DefaultServiceCIDR {
		t.Fatalf("cidrs %s %s", s.ClusterCIDR, s.ServiceCIDR)
	}
	if s.Agent.NodeIP != s.NodeIP || s.Agent.DataDir != s.DataDir {
		t.Fatal("agent config not derived from server config")
	}
}

func TestComponentArgs(t *testing.T) {
	s, err := flags(t, "--kube-apiserver-arg", "audit-log-path=/var/log/iks/audit.log", "--kube-apiserver-arg", "audit-log-maxage=30",
		"--kube-controller-manager-arg", "terminated-pod-gc-threshold=10", "--kube-scheduler-arg", "v=2").Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.APIServerArgs, " "); got != "--audit-log-path=/var/log/iks/audit.log --audit-log-maxage=30" {
		t.Errorf("APIServerArgs %q", got)
	}
	if got := strings.Join(s.ControllerManagerArgs, " "); got != "--terminated-pod-gc-threshold=10" {
		t.Errorf("ControllerManagerArgs %q", got)
	}
	if got := strings.Join(s.SchedulerArgs, " "); got != "--v=2" {
		t.Errorf("SchedulerArgs %q", got)
	}
}

func TestBadValuesAreNamedWithAFix(t *testing.T) {
	cases := []struct {
		args []string
		env  func(*fakeEnv)
		want []string
	}{
		{args: []string{"--cluster-cidr", "172.30.0.0/33"}, want: []string{`--cluster-cidr "172.30.0.0/33" is not a CIDR`, "for example"}},
		{args: []string{"--cluster-cidr", "banana"}, want: []string{`"banana"`}},
		{args: []string{"--cluster-cidr", "172.30.1.0/16"}, want: []string{"did you mean 172.30.0.0/16"}},
		{args: []string{"--service-cidr", "172.30.0.0/20"}, want: []string{"overlaps", "disjoint"}},
		{args: []string{"--service-cidr", "10.0.0.0/8"}, want: []string{"between /12 and /28"}},
		{args: []string{"--node-ip", "10.9.9.9"}, want: []string{"--node-ip 10.9.9.9 is not an address of this host", "10.0.0.5"}},
		{args: []string{"--node-ip", "nope"}, want: []string{`--node-ip "nope"`}},
		{args: []string{"--bind-address", "1.2.3"}, want: []string{"--bind-address"}},
		{args: []string{"--node-name", "Bad_Name"}, want: []string{`"Bad_Name"`, "--node-name"}},
		{args: []string{"--node-label", "novalue"}, want: []string{`--node-label "novalue"`}},
		{args: []string{"--kubelet-arg", "--v=2"}, want: []string{"without dashes"}},
		{args: []string{"--kube-apiserver-arg", "--audit-log-path=/x"}, want: []string{`--kube-apiserver-arg "--audit-log-path=/x"`, "without dashes"}},
		{args: []string{"--kube-scheduler-arg", "profiling"}, want: []string{`--kube-scheduler-arg "profiling"`, "flag=value"}},
		{args: []string{"--cgroup-root", "iks"}, want: []string{"--cgroup-root"}},
		{args: []string{"--ipam-block-size", "31"}, want: []string{"--ipam-block-size 31", "between /20 and /30"}},
		{args: []string{"--cluster-cidr", "10.42.0.0/24", "--ipam-block-size", "22"}, want: []string{"--ipam-block-size 22", "does not fit in the pod range 10.42.0.0/24"}},
		{env: func(e *fakeEnv) { e.euid = 1000 }, want: []string{"must run as root"}},
		{env: func(e *fakeEnv) { e.busy = map[int]bool{6443: true} }, want: []string{"port 6443", "in use", "stop whatever"}},
		{env: func(e *fakeEnv) { e.fss = map[string]bool{"cgroup": true} }, want: []string{"overlayfs", "modprobe overlay"}},
		{env: func(e *fakeEnv) { e.unwrit = "/" }, want: []string{"--data-dir", "writable"}},
		{env: func(e *fakeEnv) { e.addrs = nil }, want: []string{"pass --node-ip"}},
	}
	for _, c := range cases {
		env := goodEnv()
		if c.env != nil {
			c.env(&env)
		}
		_, err := flags(t, c.args...).Validate(env)
		if err == nil {
			t.Errorf("%v: accepted, want error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not contain %q", c.args, err, w)
			}
		}
	}
}

func TestDataDirFromAnotherClusterIsRefused(t *testing.T) {
	f := flags(t)
	s, err := f.Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordClusterInfo(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(s.DataDir, "server", "cluster.json"))
	f.ClusterCIDR = "10.42.0.0/16"
	_, err = f.Validate(goodEnv())
	if err == nil || !strings.Contains(err.Error(), "pass --cluster-cidr 172.30.0.0/16") {
		t.Fatalf("want refusal naming the recorded cidr, got %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(s.DataDir, "server", "cluster.json"))
	if string(before) != string(after) {
		t.Fatal("cluster.json changed by a refused start")
	}
	f.ClusterCIDR = DefaultClusterCIDR
	f.IPAMBlockSize = 27
	_, err = f.Validate(goodEnv())
	if err == nil || !strings.Contains(err.Error(), "created with --ipam-block-size 26, not 27") {
		t.Fatalf("want refusal naming the recorded block size, got %v", err)
	}
	f.IPAMBlockSize = DefaultIPAMBlockSize
	if _, err := f.Validate(goodEnv()); err != nil {
		t.Fatalf("same settings refused: %v", err)
	}
}

func TestBlockSizeRecordedForOldDataDirs(t *testing.T) {
	f := flags(t, "--ipam-block-size", "27")
	s, err := f.Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.DataDir, "server", "cluster.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	old := `{"format":1,"clusterCIDR":"172.30.0.0/16","serviceCIDR":"172.21.0.0/16","clusterDomain":"cluster.local"}`
	if err := os.WriteFile(p, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Validate(goodEnv()); err != nil {
		t.Fatalf("data dir without a recorded block size refused: %v", err)
	}
	if err := s.RecordClusterInfo(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); !strings.Contains(string(data), `"ipamBlockSize": 27`) {
		t.Fatalf("block size not recorded: %s", data)
	}
	f.IPAMBlockSize = 26
	if _, err := f.Validate(goodEnv()); err == nil {
		t.Fatal("changed block size accepted after it was recorded")
	}
}

func TestForeignNonEmptyDataDirIsRefused(t *testing.T) {
	f := flags(t)
	if err := os.WriteFile(filepath.Join(f.DataDir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Validate(goodEnv()); err == nil || !strings.Contains(err.Error(), "not an iks data dir") {
		t.Fatalf("got %v", err)
	}
}

func TestConfigFileFlagsWin(t *testing.T) {
	var f ServerFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs)
	if err := fs.Parse([]string{"--node-name", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(p, []byte("node-name: from-file\ncluster-cidr: 10.50.0.0/16\ndebug: true\nnode-label:\n- a=b\n- c=d\n"), 0o600)
	if err := ApplyFile(fs, p, true); err != nil {
		t.Fatal(err)
	}
	if f.NodeName != "from-flag" || f.ClusterCIDR != "10.50.0.0/16" || !f.Debug || strings.Join(f.NodeLabels, ",") != "a=b,c=d" {
		t.Fatalf("got %+v", f)
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"bogus-key: 1\n":         `unknown key "bogus-key"`,
		"debug: [1, 2]\n":        `key "debug" takes one value`,
		"cluster-cidr: {a: b}\n": `key "cluster-cidr"`,
		"node-name: [\n":         "not valid YAML",
		"disable-agent: maybe\n": `invalid value "maybe"`,
	} {
		var f ServerFlags
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		f.AddFlags(fs)
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(content), 0o600)
		if err := ApplyFile(fs, p, true); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", content, err, want)
		}
	}
	var f ServerFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs)
	if err := ApplyFile(fs, filepath.Join(dir, "missing.yaml"), false); err != nil {
		t.Fatalf("missing default config must be fine: %v", err)
	}
	if err := ApplyFile(fs, filepath.Join(dir, "missing.yaml"), true); err == nil {
		t.Fatal("missing explicit --config must be an error")
	}
}

func TestDisableNetworkPolicyIsRefused(t *testing.T) {
	_, err := flags(t, "--disable", "network-policy").Validate(goodEnv())
	if err == nil || !strings.Contains(err.Error(), "--disable network-policy cannot be used") {
		t.Errorf("--disable network-policy: %v, want a refusal naming it", err)
	}
	if _, err := flags(t, "--disable", "coredns").Validate(goodEnv()); err != nil {
		t.Errorf("--disable coredns: %v", err)
	}
}

func TestDisableALB(t *testing.T) {
	s, err := flags(t, "--disable", "alb").Validate(goodEnv())
	if err != nil || len(s.Disable) != 1 || s.Disable[0] != "alb" {
		t.Errorf("--disable alb: %+v, %v; want it accepted (the Ingress ALBs are an add-on)", s, err)
	}
}

// The README's config-file form of the component flags.
func TestComponentArgsFromConfigFile(t *testing.T) {
	var f ServerFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs)
	if err := fs.Parse([]string{"--data-dir", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "config.yaml")
	cfg := "kube-apiserver-arg: [audit-log-path=/var/log/iks/audit.log, audit-log-maxage=30]\nkube-scheduler-arg: []\n"
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ApplyFile(fs, p, true); err != nil {
		t.Fatal(err)
	}
	s, err := f.Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.APIServerArgs, " "); got != "--audit-log-path=/var/log/iks/audit.log --audit-log-maxage=30" {
		t.Errorf("APIServerArgs from the config file = %q", got)
	}
	if len(s.SchedulerArgs) != 0 {
		t.Errorf("SchedulerArgs from an empty list = %v", s.SchedulerArgs)
	}
}
