// Package api names iks's own Kubernetes API group, network.iks.io, once
// for every resource in it (IPAMBlock, BGPPeer, PortableSubnet): the
// packages that define those resources take their group and version from
// here. It also holds the identities and labels server and agent share.
package api

// Group and Version of iks's custom resources.
const (
	Group   = "network.iks.io"
	Version = "v1"
)

// Identities and labels shared by server and agent.
const (
	// NodesGroup is the group of every kubelet's identity.
	NodesGroup = "system:nodes"
	// NodeUserPrefix starts a kubelet's user name: system:node:NAME.
	NodeUserPrefix = "system:node:"
	// ManagedByLabel, with value ManagedBy, marks the objects iks writes.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "iks"
)
