// Package vpnconn is the VPNConnection resource (vpnconnections.network.iks.io,
// cluster-scoped): a strongSwan IPsec connection from the cluster to a
// remote site with the options of the IKS strongSwan Helm chart
// (IBM-Cloud/iks-strongswan), under the same names and defaults.
//
//	apiVersion: network.iks.io/v1
//	kind: VPNConnection
//	metadata: {name: onprem}
//	spec:
//	  ipsec: {auto: start, keyexchange: ikev2, ike: aes256-sha256-modp2048!, esp: aes256-sha256!}
//	  local: {id: ibm-cloud, subnet: "172.30.0.0/16,172.21.0.0/16"}
//	  remote: {gateway: 198.51.100.7, id: on-prem, subnet: 10.91.152.128/26, privateIPtoPing: 10.91.152.137}
//	  localSubnetNAT: ""      # "orig=mapped,..." (NETMAP pairs)
//	  remoteSubnetNAT: ""     # "real=mapped,...": pods use the mapped range
//	  enableSingleSourceIP: false
//	  enablePodSNAT: auto     # pods as the gateway node when local.subnet leaves them out
//	  preshared: {secretName: onprem-psk, key: psk}   # Secret in kube-system
//	  nodeSelector: {...}; tolerations: [...]
//
// It is shared by the server (CRD, validation, the gateway Deployment),
// the gateway supervisor cmd/iks-vpn (swanctl settings over VICI, status)
// and every agent (routes and NAT rules).
package vpnconn

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/iks-dev/iks/internal/api"
)

// API coordinates.
const (
	Group    = api.Group
	Version  = api.Version
	Resource = "vpnconnections"
	Kind     = "VPNConnection"
	CRDName  = Resource + "." + Group
)

// GVR is the resource of VPNConnection objects.
var GVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// Namespace holds the gateway Deployments and the pre-shared key Secrets.
const Namespace = "kube-system"

// Chart defaults (iks-strongswan values.yaml).
const (
	DefaultAuto        = "add"
	DefaultKeyExchange = "ikev2"
	DefaultLocalID     = "ibm-cloud"
	DefaultRemoteID    = "on-prem"
	DefaultGateway     = "%any"
	DefaultIKELifetime = "3h"
	DefaultLifetime    = "1h"
	// DefaultEnablePodSNAT: pods take the gateway node's address when
	// local.subnet leaves them out.
	DefaultEnablePodSNAT = "auto"
	DefaultSecretKey     = "psk"
	DefaultAuthBy        = AuthPSK
)

// Authentication methods (ipsec.authby).
const (
	AuthPSK    = "psk"
	AuthPubkey = "pubkey"
)

// Keys of the certificate Secret (a kubernetes.io/tls Secret with the
// CA, as cert-manager writes them).
const (
	CertKey = "tls.crt" // the cluster's certificate (PEM; intermediates may follow)
	KeyKey  = "tls.key" // its private key (PEM: PKCS#1, SEC 1 or PKCS#8)
	CAKey   = "ca.crt"  // the CA the remote's certificate must chain to
)

// Spec is a VPNConnection's spec, as the chart's values.
type Spec struct {
	IPsec                IPsec             `json:"ipsec,omitempty"`
	Local                Local             `json:"local,omitempty"`
	Remote               Remote            `json:"remote,omitempty"`
	LocalSubnetNAT       string            `json:"localSubnetNAT,omitempty"`
	RemoteSubnetNAT      string            `json:"remoteSubnetNAT,omitempty"`
	EnableSingleSourceIP bool              `json:"enableSingleSourceIP,omitempty"`
	Preshared            Preshared         `json:"preshared,omitempty"`
	Certificate          Certificate       `json:"certificate,omitempty"`
	NodeSelector         map[string]string `json:"nodeSelector,omitempty"`
	ZoneSelector         string            `json:"zoneSelector,omitempty"`
	// ZoneSpecificRoutes: only nodes of zoneSelector's zone route to
	// the gateway (placement.go).
	ZoneSpecificRoutes         bool                `json:"zoneSpecificRoutes,omitempty"`
	Tolerations                []corev1.Toleration `json:"tolerations,omitempty"`
	LoadBalancerIP             string              `json:"loadBalancerIP,omitempty"`
	ConnectUsingLoadBalancerIP Flag                `json:"connectUsingLoadBalancerIP,omitempty"`
	// ZoneLoadBalancer: "ZONE=IP" lines or a map (zonelb.go).
	ZoneLoadBalancer Raw `json:"zoneLoadBalancer,omitzero"`
	// EnablePodSNAT: auto (default), true or false (podsnat.go).
	EnablePodSNAT Flag `json:"enablePodSNAT,omitempty"`
	// OverRideIpsecConf and OverRideIpsecSecrets (whole files) are
	// refused as ipsec.additionalOptions (refused.go).
	OverRideIpsecConf    Raw `json:"overRideIpsecConf,omitzero"`
	OverRideIpsecSecrets Raw `json:"overRideIpsecSecrets,omitzero"`
	// LocalNonClusterSubnet: comma-separated subnets outside the cluster
	// the remote reaches, masqueraded by the gateway node (noncluster.go).
	LocalNonClusterSubnet string `json:"localNonClusterSubnet,omitempty"`
	// EnableServiceSourceIP: the chart's externalTrafficPolicy Local on
	// the load balancer Service; iks's Service always is (lbservice.go).
	EnableServiceSourceIP bool `json:"enableServiceSourceIP,omitempty"`
	// Monitoring: the chart's monitoring block; enable true is refused
	// (refused.go).
	Monitoring Raw `json:"monitoring,omitzero"`
	// StrongswanLogging: "SUBSYSTEM = LEVEL" lines for charon's log
	// (default DefaultLogging, logging.go).
	StrongswanLogging string `json:"strongswanLogging,omitempty"`
}

// IPsec are the chart's ipsec.* options.
type IPsec struct {
	Auto        string `json:"auto,omitempty"`        // add (wait for the peer) | start (initiate)
	KeyExchange string `json:"keyexchange,omitempty"` // ikev2 | ikev1
	IKE         string `json:"ike,omitempty"`         // ipsec.conf proposals; a trailing ! = only these
	ESP         string `json:"esp,omitempty"`
	IKELifetime string `json:"ikelifetime,omitempty"` // 3h
	Lifetime    string `json:"lifetime,omitempty"`    // 1h
	AuthBy      string `json:"authby,omitempty"`      // psk (default, also "secret") | pubkey (also rsasig, ecdsasig)
	CloseAction string `json:"closeaction,omitempty"` // auto (default) | none | clear | hold | restart
	DPDAction   string `json:"dpdaction,omitempty"`   // restart (default) | none | clear | hold
	KeyingTries Scalar `json:"keyingtries,omitzero"`  // %forever (default) | N
	MarginTime  string `json:"margintime,omitempty"`  // 9m: rekey this long before a lifetime ends
	// AdditionalOptions (raw ipsec.conf lines) is refused (refused.go).
	AdditionalOptions Raw `json:"additionalOptions,omitzero"`
}

// Local is the cluster side.
type Local struct {
	ID     string `json:"id,omitempty"`
	Subnet string `json:"subnet,omitempty"` // comma-separated CIDRs; default pod,service range
	// ZoneSubnet (the chart's per-zone local.subnet) is refused (identity.go).
	ZoneSubnet Raw `json:"zoneSubnet,omitzero"`
}

// Remote is the remote site.
type Remote struct {
	Gateway         string `json:"gateway,omitempty"` // IP or DNS name; %any = accept any
	ID              string `json:"id,omitempty"`
	Subnet          string `json:"subnet,omitempty"` // comma-separated CIDRs
	PrivateIPtoPing string `json:"privateIPtoPing,omitempty"`
}

// Preshared names the Secret (in Namespace) holding the pre-shared key.
type Preshared struct {
	SecretName string `json:"secretName,omitempty"`
	Key        string `json:"key,omitempty"` // default psk
}

// Certificate names the Secret (in Namespace) holding the cluster's
// certificate and key and the remote's CA (ipsec.authby pubkey).
type Certificate struct {
	SecretName string `json:"secretName,omitempty"`
}

// Condition types and reasons of a VPNConnection's status.
const (
	// ConditionValid is set by the server: the spec was accepted.
	ConditionValid = "Valid"
	// ConditionEstablished is set by the gateway: IKE and CHILD SAs up.
	ConditionEstablished = "Established"

	ReasonValid            = "Valid"
	ReasonInvalidSpec      = "InvalidSpec"
	ReasonEstablished      = "Established"
	ReasonConnecting       = "Connecting"
	ReasonWaitingForPeer   = "WaitingForPeer"
	ReasonAuthFailed       = "AuthenticationFailed"
	ReasonProposalMismatch = "ProposalMismatch"
	ReasonTSUnacceptable   = "TrafficSelectorsUnacceptable"
	ReasonPeerUnreachable  = "PeerUnreachable"
	ReasonGatewayError     = "GatewayError"
)

// Status is a VPNConnection's status. Conditions Valid (server) and
// Established (gateway) are each written by their owner only.
type Status struct {
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
	Gateway            GatewayStatus      `json:"gateway,omitempty"`
	IKE                IKEStatus          `json:"ike,omitempty"`
	Child              ChildStatus        `json:"child,omitempty"`
	LastError          string             `json:"lastError,omitempty"`
	LastErrorTime      *metav1.Time       `json:"lastErrorTime,omitempty"`
}

// GatewayStatus says where charon runs and how it moves ESP.
type GatewayStatus struct {
	Node      string `json:"node,omitempty"`
	NodeIP    string `json:"nodeIP,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Dataplane string `json:"dataplane,omitempty"` // kernel-libipsec | kernel-xfrm
	// LoadBalancerIP is the portable IP of the connection's Service
	// (spec.loadBalancerIP) once it is on the gateway's node.
	LoadBalancerIP string `json:"loadBalancerIP,omitempty"`
	// Generation is the spec generation the gateway runs.
	Generation int64        `json:"generation,omitempty"`
	Heartbeat  *metav1.Time `json:"heartbeat,omitempty"`
}

// IKEStatus is the IKE SA.
type IKEStatus struct {
	State         string       `json:"state,omitempty"` // ESTABLISHED, CONNECTING, ... or DOWN
	EstablishedAt *metav1.Time `json:"establishedAt,omitempty"`
	LocalHost     string       `json:"localHost,omitempty"`
	RemoteHost    string       `json:"remoteHost,omitempty"`
	Proposal      string       `json:"proposal,omitempty"`
}

// ChildStatus is the CHILD SA (ESP).
type ChildStatus struct {
	State       string       `json:"state,omitempty"` // INSTALLED, ... or DOWN
	InstalledAt *metav1.Time `json:"installedAt,omitempty"`
	BytesIn     int64        `json:"bytesIn,omitempty"`
	BytesOut    int64        `json:"bytesOut,omitempty"`
	PacketsIn   int64        `json:"packetsIn,omitempty"`
	PacketsOut  int64        `json:"packetsOut,omitempty"`
	LocalTS     []string     `json:"localTS,omitempty"`
	RemoteTS    []string     `json:"remoteTS,omitempty"`
}

// Dataplane names reported in GatewayStatus.Dataplane.
const (
	DataplaneLibipsec = "kernel-libipsec"
	DataplaneXFRM     = "kernel-xfrm"
)

// LeaseName is the Lease (in Namespace) a connection's gateway renews
// every 2 s; the server moves the gateway when it expires.
func LeaseName(conn string) string { return "iks-vpn-" + conn }

// LeaseNodeAnnotation on the Lease names the gateway's node.
const LeaseNodeAnnotation = "network.iks.io/node"
