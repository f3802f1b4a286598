package vpnconn

import (
	"strings"
	"testing"
)

func TestLoggingDefaultAsTheChart(t *testing.T) {
	p, err := Validate("c", validSpec(), testCluster)
	if err != nil {
		t.Fatal(err)
	}
	want := "  default = 1\n  cfg = 2\n  dmn = 2\n  ike = 2\n  net = 0\n"
	if got := p.FilelogLevels("  "); got != want {
		t.Errorf("default levels:\n%s\nwant\n%s", got, want)
	}
}

func TestLoggingLevels(t *testing.T) {
	s := validSpec()
	s.StrongswanLogging = "default = 0\n# debugging the tunnel\nIKE=3, knl = 2\n\nnet = -1"
	p, err := Validate("c", s, testCluster)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.FilelogLevels(""), "default = 0\nike = 3\nknl = 2\nnet = -1\n"; got != want {
		t.Errorf("levels:\n%s\nwant\n%s", got, want)
	}
}

func TestLoggingRefused(t *testing.T) {
	for v, want := range map[string]string{
		"ike 2":          `strongswanLogging "ike 2": write SUBSYSTEM = LEVEL`,
		"ikev2 = 1":      `"ikev2" is not a charon subsystem; use one of default, dmn`,
		"ike = 5":        `strongswanLogging "ike = 5": level "5": use -1 (silent) to 4`,
		"ike = high":     `level "high"`,
		"ike = 1\nike=2": "ike is given twice",
	} {
		s := validSpec()
		s.StrongswanLogging = v
		_, err := Validate("c", s, testCluster)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("strongswanLogging %q: error %v, want %q", v, err, want)
		}
	}
}
