package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// procMem is one process of a node's tree with its memory figures.
type procMem struct {
	PID     string
	Name    string // the role: iks server/agent, containerd, shim, ...
	RSS     int64  // VmRSS
	PSS     int64  // kernel Pss: shared pages divided among their users
	Private int64  // Private_Clean + Private_Dirty
}

// treeProcs lists every process whose command line names the data dir,
// largest RSS first.
func treeProcs(dataDir string) []procMem {
	var ps []procMem
	forTree(dataDir, func(pid string) {
		ps = append(ps, procMem{
			PID:     pid,
			Name:    procRole(pid),
			RSS:     readField(pid, "status", "VmRSS:"),
			PSS:     readField(pid, "smaps_rollup", "Pss:"),
			Private: readField(pid, "smaps_rollup", "Private_Clean:") + readField(pid, "smaps_rollup", "Private_Dirty:"),
		})
	})
	sort.Slice(ps, func(i, j int) bool { return ps[i].RSS > ps[j].RSS })
	return ps
}

// procRole names a process of the tree by its executable and first
// argument: "iks server", "containerd", "containerd-shim-runc-v2".
func procRole(pid string) string {
	cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	if err != nil {
		return "?"
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	name := filepath.Base(args[0])
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		name += " " + args[1]
	}
	return name
}

// treeKernelPSS sums the kernel's Pss over the tree. Pages shared with
// processes outside the tree (another node of the same test running the
// same binary) are divided with them too, so it reads low when several
// nodes run; treePSS does not.
func treeKernelPSS(dataDir string) int64 { return treeMem(dataDir, "smaps_rollup", "Pss:") }

// breakdown formats the tree per process, one line each, for the report.
func breakdown(ps []procMem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %-26s pid %-7s RSS %6.1f MB  PSS %6.1f MB  private %6.1f MB\n",
			p.Name, p.PID, mb(p.RSS), mb(p.PSS), mb(p.Private))
		for _, m := range topMappings(p.PID, 3) {
			fmt.Fprintf(&b, "      %-22s %s  RSS %6.1f MB  private %6.1f MB\n", m.Name, m.Perms, mb(m.RSS), mb(m.Private))
		}
	}
	return b.String()
}

// mapping is one line of /proc/PID/smaps with its resident size.
type mapping struct {
	Name         string // file path, [heap], [anon] ...
	Perms        string
	RSS, Private int64
}

// topMappings returns the n mappings of pid with the largest RSS: where a
// process's memory goes (the binary's text, its embedded data, Go heap).
func topMappings(pid string, n int) []mapping {
	data, err := os.ReadFile(filepath.Join("/proc", pid, "smaps"))
	if err != nil {
		return nil
	}
	var ms []mapping
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			m := mapping{Name: "[anon]", Perms: f[1]}
			if len(f) > 5 {
				m.Name = filepath.Base(f[5])
			}
			ms = append(ms, m)
		case len(ms) > 0 && len(f) >= 2 && f[0] == "Rss:":
			ms[len(ms)-1].RSS = kb(f[1])
		case len(ms) > 0 && len(f) >= 2 && (f[0] == "Private_Clean:" || f[0] == "Private_Dirty:"):
			ms[len(ms)-1].Private += kb(f[1])
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].RSS > ms[j].RSS })
	return ms[:min(n, len(ms))]
}

func kb(s string) int64 {
	v, _ := strconv.ParseInt(s, 10, 64)
	return v << 10
}

func sumRSS(ps []procMem) int64 {
	var total int64
	for _, p := range ps {
		total += p.RSS
	}
	return total
}

// byRole summarises a tree as "iks server 310 MB, iks-cni x3 290 MB, ...",
// largest first.
func byRole(ps []procMem) string {
	rss, count := map[string]int64{}, map[string]int{}
	for _, p := range ps {
		rss[p.Name] += p.RSS
		count[p.Name]++
	}
	roles := make([]string, 0, len(rss))
	for r := range rss {
		roles = append(roles, r)
	}
	sort.Slice(roles, func(i, j int) bool { return rss[roles[i]] > rss[roles[j]] })
	parts := make([]string, len(roles))
	for i, r := range roles {
		name := r
		if count[r] > 1 {
			name = fmt.Sprintf("%s x%d", r, count[r])
		}
		parts[i] = fmt.Sprintf("%s %.0f MB", name, mb(rss[r]))
	}
	return strings.Join(parts, ", ")
}
