package vpnconn

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestRefusedOptions(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want string // "" = accepted
	}{
		{`{"ipsec":{"additionalOptions":{}}}`, ""}, // the chart's default
		{`{"ipsec":{"additionalOptions":""}}`, ""},
		{`{"ipsec":{"additionalOptions":null}}`, ""},
		{`{"ipsec":{"additionalOptions":"dpddelay=30s\ndpdtimeout=150s"}}`,
			`ipsec.additionalOptions "dpddelay=30s\ndpdtimeout=150s" is not supported: iks does not inject raw ipsec.conf lines; remove it and use the typed fields ipsec.auto`},
		{`{"ipsec":{"additionalOptions":{"dpddelay":"30s"}}}`, `ipsec.additionalOptions {"dpddelay":"30s"} is not supported`},
		{`{"overRideIpsecConf":"conn x\n  left=%any"}`, "overRideIpsecConf is not supported"},
		{`{"overRideIpsecSecrets":": PSK \"x\""}`, "overRideIpsecSecrets is not supported"},
		{`{"overRideIpsecConf":{}}`, ""},
	} {
		checkSpec(t, tc.spec, tc.want)
	}
}

func TestRawRoundTrip(t *testing.T) {
	var s Spec
	if err := json.Unmarshal([]byte(`{"ipsec":{"additionalOptions":"a=b"}}`), &s); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"additionalOptions":"a=b"`) || strings.Contains(string(b), "overRideIpsecConf") {
		t.Errorf("marshalled %s: want additionalOptions kept, unset options left out", b)
	}
}

func TestRawFromUnstructured(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"ipsec":             map[string]any{"additionalOptions": "dpddelay=30s", "keyingtries": int64(3)},
		"overRideIpsecConf": map[string]any{},
	}}}
	c, err := FromUnstructured(u)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Spec.IPsec.AdditionalOptions.IsSet() || c.Spec.OverRideIpsecConf.IsSet() || c.Spec.IPsec.KeyingTries.V != "3" {
		t.Errorf("spec %+v", c.Spec)
	}
}

func TestMonitoring(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		// The chart's default block.
		{`{"monitoring":{"enable":false,"clusterName":"","privateIPs":"","timeout":5,"delay":120,"slackUsername":"IBM strongSwan VPN","slackIcon":":swan:"}}`, ""},
		{`{"monitoring":{"enable":"false"}}`, ""},
		{`{"monitoring":{}}`, ""},
		{`{"monitoring":{"enable":true,"privateIPs":"10.91.152.137","slackWebhook":"https://hooks.slack.com/services/x"}}`,
			"monitoring.enable true is not supported: iks has no Slack monitoring"},
		{`{"monitoring":{"enable":"true"}}`, "monitoring.enable true is not supported"},
		{`{"monitoring":"on"}`, `monitoring "on": write the chart's monitoring block`},
	} {
		checkSpec(t, tc.spec, tc.want)
	}
}

// checkSpec validates validSpec() with spec merged in: accepted when want
// is empty, else refused with an error containing want.
func checkSpec(t *testing.T, spec, want string) {
	t.Helper()
	s := validSpec()
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatalf("%s: %v", spec, err)
	}
	_, err := Validate("c", s, testCluster)
	switch {
	case want == "" && err != nil:
		t.Errorf("%s refused: %v", spec, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: error %v, want %q", spec, err, want)
	}
}
