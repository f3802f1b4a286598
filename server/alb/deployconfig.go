package alb

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// DeployConfig is IKS's ibm-ingress-deploy-config ConfigMap in
// kube-system: for each ALB (key: the ALB's name) a JSON object of
// deployment settings with string values, such as
// {"enableSslPassthrough":"true"}. iks reads enableSslPassthrough; the
// other IKS settings are not read yet.
const DeployConfig = "ibm-ingress-deploy-config"

// deploySettings are the settings of one ALB.
type deploySettings struct {
	// SSLPassthrough runs the ALB with --enable-ssl-passthrough.
	SSLPassthrough bool
}

// parseDeploy reads the settings of ALB name from the ConfigMap's data.
func parseDeploy(data map[string]string, name string) (deploySettings, error) {
	var ds deploySettings
	raw, ok := data[name]
	if !ok || strings.TrimSpace(raw) == "" {
		return ds, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		return ds, fmt.Errorf("%s key %s: not a JSON object: %w", DeployConfig, name, err)
	}
	if v, ok := fields["enableSslPassthrough"]; ok {
		s := strings.Trim(string(v), `"`)
		b, err := strconv.ParseBool(s)
		if err != nil {
			return ds, fmt.Errorf("%s key %s: enableSslPassthrough %s: use \"true\" or \"false\"", DeployConfig, name, v)
		}
		ds.SSLPassthrough = b
	}
	return ds, nil
}
