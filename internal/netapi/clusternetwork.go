package netapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/fsutil"

	"github.com/iks-dev/iks/internal/api"
)

// The ConfigMap in which the server publishes the cluster's address plan
// to nodes (readable by system:nodes by name only).
const (
	ClusterNetworkNamespace = "kube-system"
	ClusterNetworkName      = "iks-cluster-network"

	keyPodCIDR       = "podCIDR"
	keyServiceCIDR   = "serviceCIDR"
	keyClusterDomain = "clusterDomain"
	keyBlockSize     = "blockSize"
)

// ClusterNetwork is the address plan of a cluster.
type ClusterNetwork struct {
	PodCIDR       netip.Prefix `json:"podCIDR"`
	ServiceCIDR   netip.Prefix `json:"serviceCIDR"`
	ClusterDomain string       `json:"clusterDomain"`
	// BlockSize is the prefix length of IPAM blocks (e.g. 26).
	BlockSize int `json:"blockSize"`
}

// Validate checks the values agents rely on.
func (c ClusterNetwork) Validate() error {
	var errs []error
	if !c.PodCIDR.IsValid() || !c.PodCIDR.Addr().Is4() || c.PodCIDR.Masked() != c.PodCIDR {
		errs = append(errs, fmt.Errorf("pod range %q is not an IPv4 network prefix", c.PodCIDR))
	}
	if !c.ServiceCIDR.IsValid() || !c.ServiceCIDR.Addr().Is4() {
		errs = append(errs, fmt.Errorf("service range %q is not an IPv4 network prefix", c.ServiceCIDR))
	}
	if c.ClusterDomain == "" {
		errs = append(errs, errors.New("cluster domain is empty"))
	}
	if c.PodCIDR.IsValid() {
		if err := ValidateBlockSize(c.PodCIDR, c.BlockSize); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ConfigMap renders c as the kube-system/iks-cluster-network ConfigMap.
func (c ClusterNetwork) ConfigMap() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ClusterNetworkNamespace, Name: ClusterNetworkName,
			Labels: map[string]string{api.ManagedByLabel: api.ManagedBy}},
		Data: map[string]string{
			keyPodCIDR:       c.PodCIDR.String(),
			keyServiceCIDR:   c.ServiceCIDR.String(),
			keyClusterDomain: c.ClusterDomain,
			keyBlockSize:     strconv.Itoa(c.BlockSize),
		},
	}
}

// ClusterNetworkFromConfigMap parses and validates the ConfigMap.
func ClusterNetworkFromConfigMap(cm *corev1.ConfigMap) (ClusterNetwork, error) {
	var c ClusterNetwork
	var errs []error
	prefix := func(key string) netip.Prefix {
		p, err := netip.ParsePrefix(cm.Data[key])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not a CIDR", key, cm.Data[key]))
		}
		return p
	}
	c.PodCIDR, c.ServiceCIDR = prefix(keyPodCIDR), prefix(keyServiceCIDR)
	c.ClusterDomain = cm.Data[keyClusterDomain]
	size, err := strconv.Atoi(cm.Data[keyBlockSize])
	if err != nil {
		errs = append(errs, fmt.Errorf("%s %q is not a prefix length", keyBlockSize, cm.Data[keyBlockSize]))
	}
	c.BlockSize = size
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return ClusterNetwork{}, fmt.Errorf("ConfigMap %s/%s is invalid (the server writes it at start; restart the server to repair it): %w",
			ClusterNetworkNamespace, ClusterNetworkName, errors.Join(errs...))
	}
	return c, nil
}

// WriteCache saves c to path (0600), for starts while the server is away.
func (c ClusterNetwork) WriteCache(path string) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode cluster network: %w", err)
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o600)
}

// ReadCache loads what WriteCache saved.
func ReadCache(path string) (ClusterNetwork, error) {
	var c ClusterNetwork
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read cached cluster network: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("cached cluster network %s is corrupt (it is re-written from the server's ConfigMap when the server is reachable): %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("cached cluster network %s: %w", path, err)
	}
	return c, nil
}
