package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestALBAtRate is the latency half of the engine-vs-nginx comparison.
// nginx's peak rate is the highest rate the open-loop generator
// (albproxy -load: fixed schedule, latency from the scheduled send time,
// as wrk2) keeps through nginx: from nginx's wrk peak (closed loop,
// -c64, median of 3), lowered in 10 % steps until a 3 s run through
// nginx answers 99 % of the rate with a p99 under 50 ms (the closed-loop
// wrk peak overstates what an open-loop load gets through: no batching).
// Then the ALB engine and nginx each get 80 % of that rate for 10 s,
// three alternating rounds, same pinning as TestALBvsNginx (proxy on CPU
// 0, origins and generator on CPU 1). The generator is also run straight
// at one origin at the same rate: the p99 the setup itself adds. Target:
// the ALB's p99 <= 1.1x nginx's at the same rate.
func TestALBAtRate(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	b := startALBBench(t, "raw")
	peak := func(url string) float64 {
		var r []float64
		for range 3 {
			out, err := exec.Command("taskset", "-c", "1", "wrk", "-t1", "-c64", "-d8s", url).CombinedOutput()
			if err != nil {
				t.Fatalf("wrk %s: %v: %s", url, err, out)
			}
			r = append(r, wrkNumber(t, out, `Requests/sec:\s+([0-9.]+)`))
		}
		slices.Sort(r)
		return r[1]
	}
	// loadFor runs the generator; errors fail the test unless probing.
	loadFor := func(url string, rate float64, d string, probe bool) loadResult {
		out, err := exec.Command("taskset", "-c", "1", b.bin, "-load", url, "-rate", fmt.Sprint(rate), "-duration", d, "-conns", "64").Output()
		if err != nil {
			t.Fatalf("load %s: %v: %s", url, err, out)
		}
		var r loadResult
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("load %s: %v: %s", url, err, out)
		}
		if r.Errors > 0 && !probe {
			t.Errorf("load %s at %.0f/s: %d of %d requests failed", url, rate, r.Errors, r.Sent)
		}
		return r
	}
	load := func(url string, rate float64) loadResult { return loadFor(url, rate, "10s", false) }
	// sustained lowers rate until nginx keeps it (see above).
	sustained := func(url string, rate float64) float64 {
		for r := rate; r > rate/4; r *= 0.9 {
			if res := loadFor(url, r, "3s", true); res.Errors == 0 && res.Achieved >= 0.99*r && res.P99 < 50 {
				return r
			}
		}
		t.Fatalf("nginx at %s keeps no rate above a quarter of its wrk peak %.0f/s", url, rate)
		return 0
	}
	med := func(rs []loadResult) loadResult {
		p := func(f func(loadResult) float64) float64 {
			v := []float64{f(rs[0]), f(rs[1]), f(rs[2])}
			slices.Sort(v)
			return v[1]
		}
		return loadResult{Achieved: p(func(r loadResult) float64 { return r.Achieved }), P50: p(func(r loadResult) float64 { return r.P50 }),
			P99: p(func(r loadResult) float64 { return r.P99 }), P999: p(func(r loadResult) float64 { return r.P999 })}
	}
	var lines []string
	for _, sc := range []struct{ name, alb, ng string }{
		{"HTTP/1.1", b.albHTTP, b.ngHTTP},
		{"HTTPS (HTTP/1.1)", b.albHTTPS, b.ngHTTPS},
	} {
		wrkPeak := peak(sc.ng)
		rate := 0.8 * sustained(sc.ng, wrkPeak)
		var a, n, o []loadResult
		for range 3 {
			a = append(a, load(sc.alb, rate))
			n = append(n, load(sc.ng, rate))
			o = append(o, load(b.origin, rate))
		}
		ma, mn, mo := med(a), med(n), med(o)
		lines = append(lines, fmt.Sprintf("%-18s %8.0f %8.0f %9.0f %8.2fms %8.2fms %8.2fms %9.0f %8.2fms %8.2fms %8.2fms %7.2fx %9.0f %8.2fms",
			sc.name, wrkPeak, rate, ma.Achieved, ma.P50, ma.P99, ma.P999, mn.Achieved, mn.P50, mn.P99, mn.P999, ma.P99/mn.P99, mo.Achieved, mo.P99))
	}
	load1, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\n== Ingress ALB engine vs nginx %s at 80%% of nginx's peak under open-loop load (open loop, latency from the scheduled time, 10 s, median of 3) ==\n", nginxVersion())
	fmt.Printf("%-18s %8s %8s %9s %10s %10s %10s %9s %10s %10s %10s %8s %9s %10s\n", "protocol", "wrk peak", "rate/s", "ALB done", "ALB p50", "ALB p99", "ALB p99.9",
		"nginx done", "nginx p50", "nginx p99", "ngx p99.9", "p99 x", "orig done", "orig p99")
	fmt.Println(strings.Join(lines, "\n"))
	fmt.Println("wrk peak: nginx's closed-loop peak; rate/s: 80% of the highest rate (from the wrk peak down in 10% steps) that nginx keeps under the open-loop generator")
	fmt.Println("done: answered/s (below rate/s: the proxy, or the machine, could not keep the rate and the latencies are queueing);")
	fmt.Println("orig: the generator straight to one origin (plain HTTP) at the same rate: what the generator and CPU 1 sustain without a proxy")
	fmt.Printf("target: ALB p99 <= 1.1x nginx's; load average %s", load1)
}

// loadResult is albproxy -load's JSON line.
type loadResult struct {
	Rate     float64 `json:"rate"`
	Achieved float64 `json:"achieved"`
	Sent     int     `json:"sent"`
	Errors   int     `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p999_ms"`
	Max      float64 `json:"max_ms"`
}
