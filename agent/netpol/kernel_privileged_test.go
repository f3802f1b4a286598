package netpol

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/iks-dev/iks/tests/testutil"
)

// BenchmarkKernel programs 10,000 pods / 5,000 policies into a real
// table in a fresh network namespace, then changes one pod's labels per
// iteration (ns/op), the full build as a metric. incremental is what the
// engine does for a pod change (that pod re-checked against the cached
// selectors, only set elements sent); recompile translates and compiles
// everything and diffs (what it does for a policy change).
func BenchmarkKernel(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("needs root (network namespace, nftables)")
	}
	host := testutil.NewNetns(b, fmt.Sprintf("npk%d", os.Getpid()%100000))
	ps, nss, nps := synthetic(10000, 5000)
	var w *Writer
	if err := inHost(host, func() error {
		nft, err := knftables.New(knftables.InetFamily, TableName)
		w = NewWriter(nft)
		return err
	}); err != nil {
		b.Skipf("nftables unusable: %v", err)
	}
	ctx := context.Background()
	pols, eps := Translate(ps, nss, nps, func(error) {})
	t0 := time.Now()
	prog := Compile(pols, eps, "n1", "cali")
	if err := inHost(host, func() error { _, err := w.Apply(ctx, prog); return err }); err != nil {
		b.Fatal(err)
	}
	full := time.Since(t0)
	nsLabels := map[string]map[string]string{}
	for _, ns := range nss {
		nsLabels[ns.Name] = ns.Labels
	}
	b.Run("incremental", func(b *testing.B) {
		old, _ := FromPod(ps[0], nsLabels[ps[0].Namespace])
		for i := 0; b.Loop(); i++ {
			p := ps[0].DeepCopy()
			p.Labels = map[string]string{"app": fmt.Sprint(i % 10), "role": fmt.Sprint(i % 7)}
			ps[0] = p
			now, _ := FromPod(p, nsLabels[p.Namespace])
			prog = UpdatePods(prog, []PodChange{{Old: old, New: now}})
			old = now
			if err := inHost(host, func() error { _, err := w.Apply(ctx, prog); return err }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(full.Seconds(), "full-build-s")
	})
	b.Run("recompile", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			p := ps[0].DeepCopy()
			p.Labels = map[string]string{"app": fmt.Sprint(i % 10), "role": fmt.Sprint(i % 7)}
			ps[0] = p
			pols, eps := Translate(ps, nss, nps, func(error) {})
			prog = Compile(pols, eps, "n1", "cali")
			if err := inHost(host, func() error { _, err := w.Apply(ctx, prog); return err }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
