package ipam

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// Environment of the helper process started by TestConcurrentProcesses.
const (
	helperDirEnv   = "IKS_IPAM_TEST_HELPER_DIR"
	helperNameEnv  = "IKS_IPAM_TEST_HELPER_NAME"
	helperCountEnv = "IKS_IPAM_TEST_HELPER_COUNT"
)

var concurrencyBlocks = []netip.Prefix{
	netip.MustParsePrefix("172.30.9.0/26"),
	netip.MustParsePrefix("172.30.9.64/26"),
	netip.MustParsePrefix("172.30.9.128/25"),
}

// TestMain turns the test binary into an allocating helper process when
// helperDirEnv is set.
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDirEnv); dir != "" {
		if err := runHelper(dir, os.Getenv(helperNameEnv), os.Getenv(helperCountEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	os.Exit(m.Run())
}

func runHelper(dir, name, countStr string) error {
	count, err := strconv.Atoi(countStr)
	if err != nil {
		return fmt.Errorf("bad %s %q: %w", helperCountEnv, countStr, err)
	}
	s, err := Open(dir)
	if err != nil {
		return err
	}
	for i := range count {
		ip, err := s.Allocate(concurrencyBlocks, fmt.Sprintf("%s-%d", name, i))
		if err != nil {
			return err
		}
		fmt.Println(ip)
	}
	return nil
}

// allocateConcurrently runs workers goroutines, each with its own Store on
// dir, each allocating perWorker handles, and returns all addresses.
func allocateConcurrently(t *testing.T, dir, prefix string, workers, perWorker int) []netip.Addr {
	t.Helper()
	var mu sync.Mutex
	var out []netip.Addr
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			s, err := Open(dir)
			if err != nil {
				errs <- err
				return
			}
			for i := range perWorker {
				ip, err := s.Allocate(concurrencyBlocks, fmt.Sprintf("%s-%d-%d", prefix, w, i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				out = append(out, ip)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Allocate: %v", err)
	}
	return out
}

func assertDistinct(t *testing.T, dir string, ips []netip.Addr, want int) {
	t.Helper()
	if len(ips) != want {
		t.Fatalf("got %d addresses, want %d", len(ips), want)
	}
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		if seen[ip] {
			t.Errorf("address %s handed out twice", ip)
		}
		seen[ip] = true
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.Allocations()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != want {
		t.Errorf("state holds %d allocations, want %d", len(all), want)
	}
	for _, a := range all {
		if !seen[a.IP] {
			t.Errorf("state holds %s for %q, which no caller received", a.IP, a.Handle)
		}
	}
}

func TestConcurrentGoroutines(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ipam")
	ips := allocateConcurrently(t, dir, "g", 8, 20)
	assertDistinct(t, dir, ips, 160)
}

func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ipam")
	const procs, perProc = 4, 30
	type result struct {
		ips []netip.Addr
		err error
	}
	results := make(chan result, procs)
	for p := range procs {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(),
			helperDirEnv+"="+dir,
			helperNameEnv+"=proc"+strconv.Itoa(p),
			helperCountEnv+"="+strconv.Itoa(perProc))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		go func() {
			out, err := cmd.Output()
			if err != nil {
				results <- result{err: fmt.Errorf("helper %d: %w: %s", p, err, stderr.String())}
				return
			}
			var ips []netip.Addr
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				ip, err := netip.ParseAddr(sc.Text())
				if err != nil {
					results <- result{err: fmt.Errorf("helper %d printed %q: %w", p, sc.Text(), err)}
					return
				}
				ips = append(ips, ip)
			}
			results <- result{ips: ips}
		}()
	}
	// Allocate from this process at the same time.
	all := allocateConcurrently(t, dir, "parent", 2, 10)
	for range procs {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		all = append(all, r.ips...)
	}
	assertDistinct(t, dir, all, procs*perProc+20)
}
