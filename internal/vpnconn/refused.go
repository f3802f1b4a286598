package vpnconn

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Raw is a chart option kept as written (any JSON type) so that the
// controller can refuse it by name instead of the API server dropping
// it unseen. Empty values (null, "", {}, []) count as unset: the chart's
// values.yaml writes additionalOptions: {}.
type Raw struct{ json.RawMessage }

// UnmarshalJSON keeps the value.
func (r *Raw) UnmarshalJSON(b []byte) error {
	r.RawMessage = append(json.RawMessage(nil), b...)
	return nil
}

// MarshalJSON writes the value back (null when unset).
func (r Raw) MarshalJSON() ([]byte, error) {
	if len(r.RawMessage) == 0 {
		return []byte("null"), nil
	}
	return r.RawMessage, nil
}

// IsSet reports whether the option holds more than an empty value.
func (r Raw) IsSet() bool {
	v := bytes.TrimSpace(r.RawMessage)
	for _, empty := range []string{"", "null", `""`, "{}", "[]"} {
		if string(v) == empty {
			return false
		}
	}
	return true
}

// typedIPsecFields replace ipsec.additionalOptions.
const typedIPsecFields = "ipsec.auto, ipsec.keyexchange, ipsec.ike, ipsec.esp, ipsec.ikelifetime, ipsec.lifetime, " +
	"ipsec.margintime, ipsec.keyingtries, ipsec.closeaction, ipsec.dpdaction, ipsec.authby"

// checkRefused refuses the chart's raw ipsec.conf injection paths: iks
// builds charon's configuration from typed, validated fields only (a
// raw line could undo the traffic selectors the routes and NAT rely on,
// or break the VICI loading the gateway does).
func checkRefused(spec Spec) []error {
	var errs []error
	if spec.IPsec.AdditionalOptions.IsSet() {
		errs = append(errs, fmt.Errorf("ipsec.additionalOptions %s is not supported: iks does not inject raw ipsec.conf lines; "+
			"remove it and use the typed fields %s (dead peer detection runs every %s; dpdtimeout follows charon's retransmissions, ~8 s)",
			short(spec.IPsec.AdditionalOptions), typedIPsecFields, DPDDelay))
	}
	for _, f := range []struct {
		field string
		v     Raw
	}{{"overRideIpsecConf", spec.OverRideIpsecConf}, {"overRideIpsecSecrets", spec.OverRideIpsecSecrets}} {
		if f.v.IsSet() {
			errs = append(errs, fmt.Errorf("%s is not supported: iks loads charon over VICI from the typed fields, not from an ipsec.conf/ipsec.secrets file; "+
				"remove it and use %s, local.*, remote.* and preshared.secretName or certificate.secretName", f.field, typedIPsecFields))
		}
	}
	return errs
}

// checkMonitoring refuses monitoring.enable true. The chart's monitoring
// pings monitoring.privateIPs and fetches monitoring.httpEndpoints
// through the tunnel every monitoring.delay seconds and posts changes to
// a Slack webhook: iks runs air-gapped and sends nothing out of the
// cluster on its own, and the tunnel's state is already in the
// resource. The chart's default block (enable false, whatever else it
// holds) is accepted: it does nothing there either.
func checkMonitoring(spec Spec) []error {
	if !spec.Monitoring.IsSet() {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(spec.Monitoring.RawMessage, &m); err != nil {
		return []error{fmt.Errorf("monitoring %s: write the chart's monitoring block (enable: false), or leave it out", short(spec.Monitoring))}
	}
	switch e := m["enable"].(type) {
	case nil:
		return nil
	case bool:
		if !e {
			return nil
		}
	case string:
		if e == "false" || e == "" {
			return nil
		}
	}
	return []error{fmt.Errorf("monitoring.enable %v is not supported: iks has no Slack monitoring (an air-gapped cluster cannot post to a webhook, and iks sends nothing out of the cluster by itself); "+
		"set monitoring.enable false and watch condition Established (kubectl get vpnconnections -w, iks vpn status --json: IKE/CHILD state, bytes, last error), "+
		"and run `iks vpn check NAME` (pings remote.privateIPtoPing from a pod) from your own monitoring", m["enable"])}
}

// short quotes a value for a message, cut at 60 bytes.
func short(r Raw) string {
	s := string(bytes.TrimSpace(r.RawMessage))
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
