package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/iks-dev/iks/internal/lbpool"
)

func TestPortableSubnetsValidate(t *testing.T) {
	s, err := flags(t, "--portable-public-subnet", "10.95.1.64/29", "--portable-public-subnet", "10.95.2.0/28@dal10,vlan=2234945",
		"--portable-private-subnet", "10.95.1.80/29").Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.PortableSubnets) != 3 || s.PortableSubnets[1].VLAN != "2234945" || s.PortableSubnets[1].Zone != "dal10" || s.PortableSubnets[2].Kind != lbpool.Private {
		t.Fatalf("portable subnets %+v", s.PortableSubnets)
	}
}

func TestBadPortableSubnetsAreNamedWithAFixAndWriteNothing(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--portable-public-subnet", "10.9.0.0/30"}, []string{`"10.9.0.0/30" is too small`, "/29 or larger"}},
		{[]string{"--portable-private-subnet", "10.9.0.0/33"}, []string{`--portable-private-subnet "10.9.0.0/33"`, "CIDR[@ZONE][,vlan=VLAN]"}},
		{[]string{"--portable-public-subnet", "10.9.0.4/29"}, []string{"did you mean 10.9.0.0/29"}},
		{[]string{"--portable-public-subnet", "10.9.0.0/28", "--portable-private-subnet", "10.9.0.8/29"}, []string{"10.9.0.0/28 (public) and 10.9.0.8/29 (private) overlap"}},
		{[]string{"--portable-public-subnet", "172.30.9.0/29"}, []string{"overlaps --cluster-cidr 172.30.0.0/16", "outside"}},
		{[]string{"--portable-private-subnet", "172.21.0.0/29"}, []string{"overlaps --service-cidr 172.21.0.0/16"}},
		{[]string{"--portable-public-subnet", "10.0.0.0/29"}, []string{"contains this node's IP 10.0.0.5"}},
	}
	for _, c := range cases {
		f := flags(t, c.args...)
		_, err := f.Validate(goodEnv())
		if err == nil {
			t.Errorf("%v: accepted, want error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not contain %q", c.args, err, w)
			}
		}
		if entries, _ := os.ReadDir(f.DataDir); len(entries) > 0 {
			t.Errorf("%v: refused validation wrote %v", c.args, entries)
		}
	}
}

func TestPortableSubnetsFromConfigFile(t *testing.T) {
	var f ServerFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs)
	if err := fs.Parse([]string{"--data-dir", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte("portable-public-subnet:\n- 10.95.1.64/29\n- 10.95.1.72/29@11\nportable-private-subnet: 10.95.1.80/29\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ApplyFile(fs, p, true); err != nil {
		t.Fatal(err)
	}
	s, err := f.Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sub := range s.PortableSubnets {
		got = append(got, string(sub.Kind)+":"+sub.String())
	}
	if strings.Join(got, " ") != "public:10.95.1.64/29 public:10.95.1.72/29@11 private:10.95.1.80/29" {
		t.Errorf("from the config file: %v", got)
	}
}
