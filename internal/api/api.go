// Package api names iks's own Kubernetes API group, network.iks.io, once
// for every resource in it (IPAMBlock, BGPPeer, PortableSubnet): the
// packages that define those resources take their group and version from
// here.
package api

// Group and Version of iks's custom resources.
const (
	Group   = "network.iks.io"
	Version = "v1"
)
