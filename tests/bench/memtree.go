package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
	}
	return b.String()
}
