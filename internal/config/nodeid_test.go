package config

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestWithNodeIDIsStableAndRecordedOnlyBySave(t *testing.T) {
	dir := t.TempDir()
	parse := func(args ...string) *AgentFlags {
		var f AgentFlags
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		f.AddFlags(fs)
		if err := fs.Parse(append([]string{"--data-dir", dir, "--server", "https://10.0.0.1", "--token", "x"}, args...)); err != nil {
			t.Fatal(err)
		}
		return &f
	}
	j, err := parse("--with-node-id").Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^edge-1-[0-9a-f]{8}$`).MatchString(j.NodeName) || j.NodeName != "edge-1-"+j.NewNodeID {
		t.Fatalf("node name %q (new id %q), want edge-1-<8 hex digits>", j.NodeName, j.NewNodeID)
	}
	if _, err := os.Stat(NodeIDFile(dir)); !os.IsNotExist(err) {
		t.Fatalf("Validate wrote %s (stat: %v)", NodeIDFile(dir), err)
	}
	if err := SaveNodeID(dir, j.NewNodeID); err != nil {
		t.Fatal(err)
	}
	again, err := parse("--with-node-id").Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if again.NodeName != j.NodeName || again.NewNodeID != "" {
		t.Errorf("second start: name %q (new id %q), want %q kept", again.NodeName, again.NewNodeID, j.NodeName)
	}
	named, err := parse("--with-node-id", "--node-name", "web").Validate(goodEnv())
	if err != nil || named.NodeName != "web-"+j.NewNodeID {
		t.Errorf("--node-name web --with-node-id: %q, %v; want web-%s", named.NodeName, err, j.NewNodeID)
	}
	plain, err := parse().Validate(goodEnv())
	if err != nil || plain.NodeName != "edge-1" {
		t.Errorf("without --with-node-id: %q, %v", plain.NodeName, err)
	}

	if err := os.WriteFile(NodeIDFile(dir), []byte("not-hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = parse("--with-node-id").Validate(goodEnv())
	if err == nil || !strings.Contains(err.Error(), NodeIDFile(dir)) || !strings.Contains(err.Error(), "not-hex") {
		t.Errorf("damaged node id: %v, want an error naming the file and its content", err)
	}
}
