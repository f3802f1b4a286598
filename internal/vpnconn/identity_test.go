package vpnconn

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestLocalIDVariables(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{`{"local":{"id":"%nodePublicIP"}}`, ""},
		{`{"local":{"id":"%loadBalancerIP"},"loadBalancerIP":"10.87.1.100"}`, ""},
		{`{"local":{"id":"%loadBalancerIP"},"zoneLoadBalancer":"z1=10.87.1.100"}`, ""},
		{`{"local":{"id":"%any"}}`, ""},
		{`{"local":{"zoneSubnet":{}}}`, ""},
		{`{"local":{"id":"%loadBalancerIP"}}`, "local.id %loadBalancerIP needs loadBalancerIP or zoneLoadBalancer"},
		{`{"local":{"id":"%nodeIP"}}`, `local.id "%nodeIP" is not a variable iks knows: use a string or IP, %nodePublicIP`},
		{`{"local":{"zoneSubnet":"dal10=192.168.168.10/32"}}`, "local.zoneSubnet (and local.subnet %zoneSubnet) is not supported"},
		{`{"local":{"subnet":"%zoneSubnet"}}`, "local.zoneSubnet (and local.subnet %zoneSubnet) is not supported"},
	} {
		s := validSpec()
		if err := json.Unmarshal([]byte(tc.spec), &s); err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		p, err := Validate("c", s, testCluster)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s refused: %v", tc.spec, err)
		case tc.want == "" && s.Local.ID != "" && p.LocalID != s.Local.ID:
			t.Errorf("%s: local id %q, want the variable kept for the gateway", tc.spec, p.LocalID)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.spec, err, tc.want)
		}
	}
}
