package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestALBvsNginx measures the ALB's proxy engine (internal/alb/proxy,
// driven by tests/bench/albproxy with a fixed table) against Debian's
// nginx proxying to the same two backends, on loopback: each proxy gets
// one CPU (taskset, GOMAXPROCS=1 / worker_processes 1), backends and wrk
// share the other. wrk -t1 -c64, keep-alive, HTTP/1.1 and HTTPS.
// Twice: with the whole CPU each, three alternating rounds (where wrk
// and the origins on the other CPU may be what limits both), then with
// each proxy in its own CPU cgroup capped at 0.3 CPU and both loaded at
// once (sameTime), so that the proxy is what limits, on equal CPU.
func TestALBvsNginx(t *testing.T) {
	if os.Getenv("IKS_BENCH") == "" {
		t.Skip("benchmark: run with `make bench`")
	}
	b := startALBBench(t, "raw")
	albPid, ngPid := b.albPid, b.ngPid
	type result struct{ rps, p99, cpuUS float64 }
	run := func(url string, pid int) result {
		cpu0 := cpuSeconds(pid)
		out, err := exec.Command("taskset", "-c", "1", "wrk", "-t1", "-c64", "-d8s", "--latency", url).CombinedOutput()
		cpu := cpuSeconds(pid) - cpu0
		if err != nil {
			t.Fatalf("wrk %s: %v: %s", url, err, out)
		}
		if strings.Contains(string(out), "Non-2xx") {
			t.Fatalf("wrk %s saw errors:\n%s", url, out)
		}
		rps := wrkNumber(t, out, `Requests/sec:\s+([0-9.]+)`)
		total := wrkNumber(t, out, `([0-9]+) requests in`)
		return result{rps: rps, p99: wrkLatency(t, out), cpuUS: cpu / total * 1e6}
	}
	median := func(rs []result) result {
		slices.SortFunc(rs, func(a, b result) int { return int(a.rps - b.rps) })
		p := []float64{rs[0].p99, rs[1].p99, rs[2].p99}
		c := []float64{rs[0].cpuUS, rs[1].cpuUS, rs[2].cpuUS}
		slices.Sort(p)
		slices.Sort(c)
		return result{rps: rs[1].rps, p99: p[1], cpuUS: c[1]}
	}
	table := func(title string) {
		fmt.Printf("\n== Ingress ALB engine vs nginx %s (%s, wrk -c64 keep-alive, 612-byte answers, median of 3) ==\n%-18s %10s %9s %8s %12s %10s %9s %8s %8s %8s\n",
			nginxVersion(), title, "protocol", "ALB req/s", "ALB p99", "ALB cpu", "nginx req/s", "nginx p99", "nginx cpu", "req/s x", "p99 x", "cpu x")
		for _, sc := range []struct{ name, alb, ng string }{
			{"HTTP/1.1", b.albHTTP, b.ngHTTP},
			{"HTTPS (HTTP/1.1)", b.albHTTPS, b.ngHTTPS},
		} {
			var a, n []result
			for range 3 {
				a = append(a, run(sc.alb, albPid))
				n = append(n, run(sc.ng, ngPid))
			}
			ma, mn := median(a), median(n)
			fmt.Printf("%-18s %10.0f %7.1fms %6.1fus %12.0f %8.1fms %7.1fus %7.2fx %7.2fx %7.2fx\n", sc.name, ma.rps, ma.p99, ma.cpuUS,
				mn.rps, mn.p99, mn.cpuUS, ma.rps/mn.rps, ma.p99/mn.p99, ma.cpuUS/mn.cpuUS)
		}
	}
	table("1 CPU each")

	// Equal CPU that the proxy uses up: each proxy in its own CPU cgroup
	// capped at 0.3 CPU (nginx's master and worker together), and both
	// loaded at the same time, each by its own wrk: the machine's speed,
	// which drifts by ±20 % from one round to the next on a shared VM,
	// is then the same for both within a round. 0.3 + 0.3 leaves CPU 0
	// room, and the load side (two wrk, two origins) some idle on CPU 1,
	// printed: with none left, the load would be the limit, not the
	// proxies.
	b.limit(t, proxyCPU)
	fmt.Printf("\n== Ingress ALB engine vs nginx %s (0.3 CPU quota each, loaded at the same time, wrk -c64 keep-alive, 612-byte answers, %d rounds of 4 s) ==\n%-18s %10s %12s %9s %9s %9s %9s %11s\n",
		nginxVersion(), sameTimeRounds, "protocol", "ALB req/s", "nginx req/s", "req/s x", "min x", "max x", "cpu x", "load idle")
	for _, sc := range []struct{ name, alb, ng string }{
		{"HTTP/1.1", b.albHTTP, b.ngHTTP},
		{"HTTPS (HTTP/1.1)", b.albHTTPS, b.ngHTTPS},
	} {
		r := sameTime(t, sc.alb, albPid, sc.ng, ngPid)
		fmt.Printf("%-18s %10.0f %12.0f %8.2fx %8.2fx %8.2fx %8.2fx %10.0f%%\n", sc.name, r.albRPS, r.ngRPS, r.ratio, r.minRatio, r.maxRatio, r.cpuRatio, r.loadIdle*100)
	}
	fmt.Println("req/s x: median of the rounds' ALB/nginx ratios; cpu x: the ALB's CPU time per request over nginx's; load idle: CPU 1's idle share; targets: req/s >= 1.0x nginx, p99 <= 1.1x nginx")
}

// proxyCPU is the CPU quota each proxy gets where the proxies, not the
// load side, must be the limit.
const proxyCPU = 0.3

// limit moves the ALB engine and nginx (master and worker) into CPU
// cgroups of their own, each capped at cpus.
func (b *albBench) limit(t *testing.T, cpus float64) {
	t.Helper()
	albG, ngG := testutil.NewCPUGroup(t, "iks-bench-alb"), testutil.NewCPUGroup(t, "iks-bench-nginx")
	albG.Add(t, b.albPid)
	for _, p := range append([]int{b.ngPid}, childPids(b.ngPid)...) {
		ngG.Add(t, p)
	}
	albG.Limit(t, cpus)
	ngG.Limit(t, cpus)
}

// sameTimeRounds is how many rounds sameTime measures.
const sameTimeRounds = 7

// sameTimeResult is what sameTime measured: medians over the rounds.
type sameTimeResult struct {
	albRPS, ngRPS, ratio, minRatio, maxRatio, cpuRatio, loadIdle float64
}

// sameTime loads the ALB and nginx at the same time, each with its own
// wrk on CPU 1, for sameTimeRounds rounds.
func sameTime(t *testing.T, albURL string, albPid int, ngURL string, ngPid int) sameTimeResult {
	t.Helper()
	wrk := func(url string, out *[]byte, errp *error, done chan<- struct{}) {
		*out, *errp = exec.Command("taskset", "-c", "1", "wrk", "-t1", "-c64", "-d4s", url).CombinedOutput()
		done <- struct{}{}
	}
	var albR, ngR, ratios, cpuR, idle []float64
	for range sameTimeRounds {
		var ao, no []byte
		var ae, ne error
		done := make(chan struct{}, 2)
		a0, n0, i0 := cpuSeconds(albPid), cpuSeconds(ngPid), cpuIdle(t, 1)
		t0 := time.Now()
		go wrk(albURL, &ao, &ae, done)
		go wrk(ngURL, &no, &ne, done)
		<-done
		<-done
		wall := time.Since(t0).Seconds()
		a1, n1, i1 := cpuSeconds(albPid), cpuSeconds(ngPid), cpuIdle(t, 1)
		for _, r := range []struct {
			url string
			out []byte
			err error
		}{{albURL, ao, ae}, {ngURL, no, ne}} {
			if r.err != nil || strings.Contains(string(r.out), "Non-2xx") || strings.Contains(string(r.out), "Socket errors") {
				t.Fatalf("wrk %s: %v:\n%s", r.url, r.err, r.out)
			}
		}
		ar, nr := wrkNumber(t, ao, `Requests/sec:\s+([0-9.]+)`), wrkNumber(t, no, `Requests/sec:\s+([0-9.]+)`)
		at, nt := wrkNumber(t, ao, `([0-9]+) requests in`), wrkNumber(t, no, `([0-9]+) requests in`)
		albR, ngR, ratios = append(albR, ar), append(ngR, nr), append(ratios, ar/nr)
		cpuR = append(cpuR, ((a1-a0)/at)/((n1-n0)/nt))
		idle = append(idle, (i1-i0)/wall)
	}
	return sameTimeResult{albRPS: medianOf(albR), ngRPS: medianOf(ngR), ratio: medianOf(ratios), minRatio: slices.Min(ratios),
		maxRatio: slices.Max(ratios), cpuRatio: medianOf(cpuR), loadIdle: medianOf(idle)}
}

// cpuIdle is CPU cpu's idle time so far in seconds, from /proc/stat.
func cpuIdle(t *testing.T, cpu int) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("cpu%d ", cpu)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); strings.HasPrefix(l, prefix) && len(f) > 4 {
			v, _ := strconv.ParseFloat(f[4], 64)
			return v / 100 // USER_HZ
		}
	}
	t.Fatalf("no %q line in /proc/stat", prefix)
	return 0
}

// albBench is the engine-vs-nginx setup: the ALB engine and nginx each
// pinned to CPU 0 in front of the same two origins on CPU 1.
type albBench struct {
	bin                                string // albproxy: engine, origin and load generator
	origin                             string // URL of the first origin
	albPid, ngPid                      int
	albHTTP, albHTTPS, ngHTTP, ngHTTPS string // URLs
}

// startALBBench starts the origins (albproxy -origin-kind originKind),
// the ALB engine and nginx, and waits for both proxies to answer 200.
func startALBBench(t *testing.T, originKind string) *albBench {
	t.Helper()
	for _, tool := range []string{"nginx", "wrk", "taskset", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: apt-get install nginx-light wrk util-linux openssl", tool)
		}
	}
	dir := t.TempDir()
	bin := testutil.BuildBinary(t, "./tests/bench/albproxy")
	start := func(cpu string, env []string, name string, args ...string) int {
		cmd := exec.Command("taskset", append([]string{"-c", cpu, name}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// SIGTERM first: nginx's master then stops its worker too.
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		return cmd.Process.Pid
	}
	// Ports in 2xxxx on 127.0.0.1 only, distinct from other tests.
	const o1, o2, albHTTP, albHTTPS, ngHTTP, ngHTTPS = "127.0.0.1:21181", "127.0.0.1:21182", "127.0.0.1:21080", "127.0.0.1:21443", "127.0.0.1:22080", "127.0.0.1:22443"
	start("1", nil, bin, "-origin", o1, "-origin-kind", originKind)
	start("1", nil, bin, "-origin", o2, "-origin-kind", originKind)
	albPid := start("0", []string{"GOMAXPROCS=1"}, bin, "-http", albHTTP, "-https", albHTTPS, "-backends", o1+","+o2)
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "k.pem"), "-out", filepath.Join(dir, "c.pem"), "-days", "2", "-subj", "/CN=bench").CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v: %s", err, out)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(dir, o1, o2, ngHTTP, ngHTTPS)), 0o600); err != nil {
		t.Fatal(err)
	}
	ngPid := start("0", nil, "nginx", "-c", conf, "-e", filepath.Join(dir, "error.log"))
	for _, a := range []string{albHTTP, ngHTTP} {
		waitHTTP(t, "http://"+a+"/")
	}
	return &albBench{bin: bin, origin: "http://" + o1 + "/", albPid: albPid, ngPid: ngPid, albHTTP: "http://" + albHTTP + "/", albHTTPS: "https://" + albHTTPS + "/",
		ngHTTP: "http://" + ngHTTP + "/", ngHTTPS: "https://" + ngHTTPS + "/"}
}

func nginxConf(dir, o1, o2, httpAddr, httpsAddr string) string {
	return fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  upstream b { server %[2]s; server %[3]s; keepalive 256; }
  server {
    listen %[4]s;
    listen %[5]s ssl http2;
    ssl_certificate %[1]s/c.pem; ssl_certificate_key %[1]s/k.pem; ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Real-IP $remote_addr;
    }
  }
}
`, dir, o1, o2, httpAddr, httpsAddr)
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext}}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within 20 s", url)
}

func wrkNumber(t *testing.T, out []byte, re string) float64 {
	t.Helper()
	m := regexp.MustCompile(re).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no %s in wrk output:\n%s", re, out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// wrkLatency returns the 99% latency in milliseconds.
func wrkLatency(t *testing.T, out []byte) float64 {
	t.Helper()
	m := regexp.MustCompile(`99%\s+([0-9.]+)(us|ms|s)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no 99%% latency in wrk output:\n%s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	switch string(m[2]) {
	case "us":
		v /= 1000
	case "s":
		v *= 1000
	}
	return v
}

// cpuSeconds is the user+system CPU time of pid and its child processes
// (nginx's worker), from /proc.
func cpuSeconds(pid int) float64 {
	total := 0.0
	for _, p := range append([]int{pid}, childPids(pid)...) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// Fields after the ")" of the command: utime and stime are the
		// 12th and 13th (clock ticks, 100 per second on Linux).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			total += (u + st) / 100
		}
	}
	return total
}

// childPids lists pid's child processes (nginx's worker), from /proc.
func childPids(pid int) []int {
	var pids []int
	if kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(kids)) {
			if k, err := strconv.Atoi(f); err == nil {
				pids = append(pids, k)
			}
		}
	}
	return pids
}

func nginxVersion() string {
	out, _ := exec.Command("nginx", "-v").CombinedOutput()
	return strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
}
