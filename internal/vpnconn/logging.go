package vpnconn

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DefaultLogging is the chart's strongswanLogging: basic logging for
// every subsystem, more for configuration, daemon and IKE, none for
// the network layer (a line per packet).
const DefaultLogging = "default = 1\ncfg = 2\ndmn = 2\nike = 2\nnet = 0"

// logGroups are charon's log subsystems (strongSwan's LoggerConfiguration).
var logGroups = []string{"default", "dmn", "mgr", "ike", "chd", "job", "cfg", "knl", "net", "asn", "enc", "tnc", "imc", "imv", "pts", "tls", "esp", "lib"}

// LogLevel is one subsystem's level in charon's log (-1 silent .. 4).
type LogLevel struct {
	Group string
	Level int
}

// checkLogging reads strongswanLogging: lines (or comma-separated
// entries) "SUBSYSTEM = LEVEL", as the chart writes them into charon's
// filelog section.
func (p *Plan) checkLogging(spec Spec) []error {
	v := spec.StrongswanLogging
	if strings.TrimSpace(v) == "" {
		v = DefaultLogging
	}
	var errs []error
	seen := map[string]bool{}
	for _, e := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == ',' || r == ';' }) {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		g, l, ok := strings.Cut(e, "=")
		g, l = strings.ToLower(strings.TrimSpace(g)), strings.TrimSpace(l)
		n, err := strconv.Atoi(l)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("strongswanLogging %q: write SUBSYSTEM = LEVEL, one per line, e.g. ike = 2", e))
			continue
		case !slices.Contains(logGroups, g):
			errs = append(errs, fmt.Errorf("strongswanLogging %q: %q is not a charon subsystem; use one of %s", e, g, strings.Join(logGroups, ", ")))
			continue
		case err != nil || n < -1 || n > 4:
			errs = append(errs, fmt.Errorf("strongswanLogging %q: level %q: use -1 (silent) to 4 (most detailed)", e, l))
			continue
		case seen[g]:
			errs = append(errs, fmt.Errorf("strongswanLogging: %s is given twice: keep one level per subsystem", g))
			continue
		}
		seen[g] = true
		p.Logging = append(p.Logging, LogLevel{Group: g, Level: n})
	}
	return errs
}

// FilelogLevels renders p.Logging as the settings of a charon filelog
// or syslog section.
func (p *Plan) FilelogLevels(indent string) string {
	var b strings.Builder
	for _, l := range p.Logging {
		fmt.Fprintf(&b, "%s%s = %d\n", indent, l.Group, l.Level)
	}
	return b.String()
}
