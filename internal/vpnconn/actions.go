package vpnconn

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Chart defaults of the ipsec.* timers and actions (values.yaml).
const (
	DefaultCloseAction = "auto"     // restart with ipsec.auto start, none otherwise
	DefaultDPDAction   = "restart"  // re-initiate when the peer stops answering
	DefaultKeyingTries = "%forever" // never give up (swanctl keyingtries 0)
	DefaultMarginTime  = "9m"       // rekey this long before a lifetime ends
)

// Allowed values of ipsec.closeaction and ipsec.dpdaction (ipsec.conf's).
var (
	closeActions = []string{"none", "clear", "hold", "restart", "auto"}
	dpdActions   = []string{"none", "clear", "hold", "restart"}
)

// Actions are the chart's closeaction, dpdaction, keyingtries and the
// lifetimes with margintime, as swanctl settings.
type Actions struct {
	// CloseAction and DPDAction are swanctl's close_action and
	// dpd_action (none, clear, trap, restart).
	CloseAction, DPDAction string
	// DPDDelay is swanctl's dpd_delay: 0s turns DPD off (dpdaction none).
	DPDDelay string
	// KeyingTries is swanctl's keyingtries: 0 tries for ever.
	KeyingTries int
	// The IKE SA rekeys after IKERekey (ikelifetime - margintime) and is
	// closed IKEOver later if that fails; the CHILD SA rekeys after
	// ChildRekey (lifetime - margintime) and is closed at ChildLife
	// (lifetime). Rand (margintime) is subtracted at random from the
	// rekey times, as ipsec.conf's rekeyfuzz 100 %. swanctl durations
	// in seconds ("10260s").
	IKERekey, IKEOver, ChildRekey, ChildLife, Rand string
}

var durationRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?)([smhd]?)$`)

// parseDuration reads an ipsec.conf time: a number (decimals allowed)
// with an optional unit s, m, h or d (seconds without one).
func parseDuration(v string) (time.Duration, bool) {
	m := durationRE.FindStringSubmatch(strings.TrimSpace(v))
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	unit := map[string]time.Duration{"": time.Second, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[3]]
	return time.Duration(n * float64(unit)).Round(time.Second), true
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) + "s" }

// checkActions reads ipsec.closeaction, dpdaction, keyingtries,
// ikelifetime, lifetime and margintime into p.Actions.
func (p *Plan) checkActions(spec Spec) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	restartable := p.Gateway != "%any" // charon cannot re-initiate to %any
	switch v := or(spec.IPsec.CloseAction, DefaultCloseAction); v {
	case "auto":
		p.Actions.CloseAction = "none"
		if p.Auto == "start" {
			p.Actions.CloseAction = "restart"
		}
	case "restart":
		p.Actions.CloseAction = "none"
		if restartable {
			p.Actions.CloseAction = "restart"
		}
	case "hold":
		p.Actions.CloseAction = "trap"
	case "none", "clear":
		p.Actions.CloseAction = v
	default:
		bad("ipsec.closeaction %q: use one of %s (auto: restart with ipsec.auto start, none otherwise)", v, strings.Join(closeActions, ", "))
	}
	p.Actions.DPDDelay = DPDDelay
	switch v := or(spec.IPsec.DPDAction, DefaultDPDAction); v {
	case "restart":
		// With remote.gateway %any the remote re-initiates: close only.
		p.Actions.DPDAction = "clear"
		if restartable {
			p.Actions.DPDAction = "restart"
		}
	case "hold":
		p.Actions.DPDAction = "trap"
	case "clear":
		p.Actions.DPDAction = "clear"
	case "none":
		p.Actions.DPDAction, p.Actions.DPDDelay = "clear", "0s"
	default:
		bad("ipsec.dpdaction %q: use one of %s", v, strings.Join(dpdActions, ", "))
	}
	switch v := or(spec.IPsec.KeyingTries.V, DefaultKeyingTries); v {
	case "%forever", "0":
		p.Actions.KeyingTries = 0
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad("ipsec.keyingtries %q: use a positive number of attempts or %%forever", v)
		}
		p.Actions.KeyingTries = n
	}
	ike, okIKE := parseDuration(p.IKELifetime)
	life, okLife := parseDuration(p.Lifetime)
	margin, okMargin := parseDuration(or(spec.IPsec.MarginTime, DefaultMarginTime))
	for _, f := range []struct {
		field, v string
		ok       bool
		d        time.Duration
	}{{"ipsec.ikelifetime", p.IKELifetime, okIKE, ike}, {"ipsec.lifetime", p.Lifetime, okLife, life},
		{"ipsec.margintime", or(spec.IPsec.MarginTime, DefaultMarginTime), okMargin, margin}} {
		if !f.ok || f.d <= 0 {
			bad("%s %q: give a duration such as 3h, 2.5m or 3600s", f.field, f.v)
		}
	}
	if len(errs) > 0 || !okIKE || !okLife || !okMargin {
		return errs
	}
	for _, l := range []struct {
		field, v string
		d        time.Duration
	}{{"ipsec.ikelifetime", p.IKELifetime, ike}, {"ipsec.lifetime", p.Lifetime, life}} {
		if margin >= l.d {
			bad("ipsec.margintime %s must be shorter than %s %s: rekeying starts margintime before the lifetime ends", or(spec.IPsec.MarginTime, DefaultMarginTime), l.field, l.v)
		}
	}
	p.Actions.IKERekey, p.Actions.IKEOver = seconds(ike-margin), seconds(margin)
	p.Actions.ChildRekey, p.Actions.ChildLife, p.Actions.Rand = seconds(life-margin), seconds(life), seconds(margin)
	return errs
}

// Reinitiate reports whether the gateway re-initiates by itself when
// the tunnel goes down (ipsec.auto start with a restart action and
// keyingtries %forever); otherwise it initiates once and leaves the
// rest to charon's actions and keyingtries.
func (p *Plan) Reinitiate() bool {
	return p.Auto == "start" && p.Actions.KeyingTries == 0 &&
		(p.Actions.CloseAction == "restart" || p.Actions.DPDAction == "restart")
}

// Scalar is a chart option that Helm users write as a string or a
// number (keyingtries: 3 or "%forever"). A struct, not a string type:
// the unstructured converter would turn a number into a rune.
type Scalar struct{ V string }

// UnmarshalJSON accepts a string or a number.
func (s *Scalar) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("decode value: %w", err)
	}
	switch v := v.(type) {
	case string:
		s.V = v
	case float64:
		s.V = strconv.FormatFloat(v, 'f', -1, 64)
	case nil:
		s.V = ""
	default:
		return fmt.Errorf("value %s: write a number or a string", b)
	}
	return nil
}

// MarshalJSON writes the value as a string.
func (s Scalar) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(s.V)
	if err != nil {
		return nil, fmt.Errorf("encode value: %w", err)
	}
	return b, nil
}
