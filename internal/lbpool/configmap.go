package lbpool

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// Published is one subnet as the server publishes it in the ConfigMap
// kube-system/iks-portable-subnets (key subnets.json), with the derived
// addresses spelled out for people reading it.
type Published struct {
	Subnet
	Reserved   []netip.Addr `json:"reserved"`
	ALB        netip.Addr   `json:"albIP"`
	ServiceIPs []netip.Addr `json:"serviceIPs"`
}

// Encode renders the ConfigMap value for subnets.
func Encode(subnets []Subnet) (string, error) {
	out := make([]Published, 0, len(subnets))
	for _, s := range subnets {
		out = append(out, Published{Subnet: s, Reserved: s.Reserved(), ALB: s.ALBIP(), ServiceIPs: s.ServiceIPs()})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode portable subnets: %w", err)
	}
	return string(b), nil
}

// Decode reads the ConfigMap value back into subnets.
func Decode(data string) ([]Subnet, error) {
	var in []Published
	if err := json.Unmarshal([]byte(data), &in); err != nil {
		return nil, fmt.Errorf("decode %s/%s %s: %w", ConfigMapNamespace, ConfigMapName, ConfigMapKey, err)
	}
	out := make([]Subnet, 0, len(in))
	for _, p := range in {
		if !p.Prefix.IsValid() || (p.Kind != Public && p.Kind != Private) {
			return nil, fmt.Errorf("decode %s/%s: bad subnet entry %+v", ConfigMapNamespace, ConfigMapName, p.Subnet)
		}
		out = append(out, p.Subnet)
	}
	return out, nil
}
