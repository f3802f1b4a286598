package route

import (
	"fmt"
	"runtime"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// BenchmarkBuild1000 builds a table of 1,000 Ingresses (one host and
// two paths each: 2,000 rules) and reports the build time and the heap
// the table keeps (MB per 1,000 rules), for the ALB's memory target.
func BenchmarkBuild1000(b *testing.B) {
	var ings []*networkingv1.Ingress
	for i := range 1000 {
		ings = append(ings, ing(fmt.Sprintf("i%d", i), i, nil,
			path{fmt.Sprintf("h%d.example.com", i), "/", PathPrefix, "svc-a"},
			path{fmt.Sprintf("h%d.example.com", i), "/api", PathPrefix, "svc-b"}))
	}
	in := input(ings...)
	Build(in) // warm: the input's lazily made objects are not the table's
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	keep, _ := Build(in)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if keep.Rules != 2000 {
		b.Fatalf("rules = %d", keep.Rules)
	}
	retained := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20) / 2
	runtime.KeepAlive(keep)
	b.ResetTimer()
	for range b.N {
		Build(in)
	}
	b.ReportMetric(retained, "MB/1000rules")
}

// BenchmarkLookup is the per-request routing cost in a 2,000-rule table.
func BenchmarkLookup(b *testing.B) {
	var ings []*networkingv1.Ingress
	for i := range 1000 {
		ings = append(ings, ing(fmt.Sprintf("i%d", i), i, nil,
			path{fmt.Sprintf("h%d.example.com", i), "/", PathPrefix, "svc-a"},
			path{fmt.Sprintf("h%d.example.com", i), "/api", PathPrefix, "svc-b"}))
	}
	tb, _ := Build(input(ings...))
	b.ResetTimer()
	for i := range b.N {
		if r, _ := tb.Lookup("h500.example.com", "/api/v1"); r == nil || i < 0 {
			b.Fatal("no route")
		}
	}
}
