package bench

import (
	"regexp"
	"strings"
)

// phaseLine matches the component manager's `NAME ready ... took=D` lines
// and the final `node NAME is Ready in D`.
var phaseLine = regexp.MustCompile(`msg="?([a-z0-9-]+) ready"? .*took=([0-9.]+[µmn]?s)`)

// phases lists the start-up phases a node printed in log, in order, as
// "etcd 1.2s, apiserver 3.4s, ...": each phase's own duration (the manager
// starts them one after the other behind readiness gates).
func phases(log string) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if m := phaseLine.FindStringSubmatch(line); m != nil {
			out = append(out, m[1]+" "+m[2])
		}
	}
	return strings.Join(out, ", ")
}
