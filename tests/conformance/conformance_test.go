// Package conformance runs the upstream Kubernetes conformance suite
// (../shared/conformance, e2e.test of k8s.io/kubernetes v1.36.3, offline)
// against a three-node iks cluster on two subnets in the e2e harness:
// `make conformance`. It is a 30-40 minute yardstick, not part of
// `make test`.
package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestConformance brings up a server and two agents (one on the server's
// subnet, one across the router), side-loads the conformance images into
// every node and runs the suite from inside the server's network
// namespace. IKS_CONFORMANCE_FOCUS picks the specs (default: sig-network
// conformance), IKS_CONFORMANCE_PROCS the parallelism (default 3).
func TestConformance(t *testing.T) {
	if os.Getenv("IKS_CONFORMANCE") == "" {
		t.Skip("conformance: run with `make conformance`")
	}
	testutil.RequireRoot(t)
	conf := envOr("IKS_CONFORMANCE_DIR", "/tmp/conf")
	images, _ := filepath.Glob(filepath.Join(conf, "images", "*.tar"))
	for _, f := range []string{"e2e.test", "ginkgo"} {
		if _, err := os.Stat(filepath.Join(conf, f)); err != nil || len(images) == 0 {
			t.Fatalf("%s has no %s or no images/*.tar: build them with ../shared/conformance/setup.sh %s", conf, f, conf)
		}
	}
	runner, err := filepath.Abs(envOr("IKS_CONFORMANCE_RUN", "../../../shared/conformance/run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(runner); err != nil {
		t.Fatalf("conformance runner: %v (set IKS_CONFORMANCE_RUN to run.sh of the conformance tools)", err)
	}

	nw := testutil.NewNetwork(t, "cf", 92)
	srv := testutil.NewNodeOn(t, "cf-s", nw, "a", 1)
	stage := func(n *testutil.Node) {
		for _, img := range images {
			n.StageImage(img, filepath.Base(img))
		}
	}
	stage(srv)
	srv.Start()
	srv.WaitReady(5 * time.Minute)
	tok, err := os.ReadFile(filepath.Join(srv.DataDir, "server", "token"))
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + srv.IP + ":6443"
	workers := []*testutil.Node{
		testutil.NewNodeOn(t, "cf-w1", nw, "a", 2).AsAgent(url, strings.TrimSpace(string(tok))),
		testutil.NewNodeOn(t, "cf-w2", nw, "b", 1).AsAgent(url, strings.TrimSpace(string(tok))),
	}
	for _, w := range workers {
		stage(w)
		w.Start()
	}
	for _, w := range workers {
		w.WaitReady(5 * time.Minute)
	}

	// kubectl for the kubectl-based specs: iks's own, with the admin
	// kubeconfig (run.sh passes --kubeconfig too).
	kubectl := filepath.Join(t.TempDir(), "kubectl")
	script := "#!/bin/sh\nexec " + srv.Bin + " kubectl \"$@\"\n"
	if err := os.WriteFile(kubectl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out := envOr("IKS_CONFORMANCE_OUT", filepath.Join(t.TempDir(), "results"))
	focus := envOr("IKS_CONFORMANCE_FOCUS", `\[sig-network\].*\[Conformance\]`)
	cmd := exec.Command("nsenter", "--net="+srv.Net.Path(), "--", "bash", runner, srv.Kubeconfig(), focus)
	cmd.Env = append(os.Environ(), "E2E="+filepath.Join(conf, "e2e.test"), "GINKGO="+filepath.Join(conf, "ginkgo"),
		"KUBECTL="+kubectl, "OUT="+out, "PROCS="+envOr("IKS_CONFORMANCE_PROCS", "3"))
	res, err := cmd.CombinedOutput()
	t.Logf("conformance (%s), results in %s:\n%s", focus, out, res)
	if err != nil {
		summary, _ := os.ReadFile(filepath.Join(out, "summary.txt"))
		t.Fatalf("conformance failed: %v\n%s", err, summary)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
