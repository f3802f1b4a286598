package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strongswan/govici/vici"

	"github.com/iks-dev/iks/internal/vpnconn"
)

func dialVICI(runDir string) (*vici.Session, error) {
	s, err := vici.NewSession(vici.WithSocketPath(viciSocket(runDir)))
	if err != nil {
		return nil, fmt.Errorf("connect to charon's VICI socket %s: %w", viciSocket(runDir), err)
	}
	return s, nil
}

// saState is what list-sas says of the connection.
type saState struct {
	IKE   vpnconn.IKEStatus
	Child vpnconn.ChildStatus
}

func (s saState) up() bool { return s.IKE.State == "ESTABLISHED" && s.Child.State == "INSTALLED" }

// listSAs asks charon for the connection's IKE and CHILD SAs.
func listSAs(ctx context.Context, sess *vici.Session, name string, now time.Time) (saState, error) {
	in := vici.NewMessage()
	if err := in.Set("ike", name); err != nil {
		return saState{}, err
	}
	st := saState{IKE: vpnconn.IKEStatus{State: "DOWN"}, Child: vpnconn.ChildStatus{State: "DOWN"}}
	for m, err := range sess.CallStreaming(ctx, "list-sas", "list-sa", in) {
		if err != nil {
			return st, fmt.Errorf("vici list-sas: %w", err)
		}
		for _, k := range m.Keys() {
			ike, ok := m.Get(k).(*vici.Message)
			if !ok || k != name {
				continue
			}
			parseIKE(ike, now, &st)
		}
	}
	return st, nil
}

// parseIKE fills st from one list-sa IKE section; an ESTABLISHED SA
// wins over others (a rekeying or connecting one).
func parseIKE(ike *vici.Message, now time.Time, st *saState) {
	state := str(ike, "state")
	if st.IKE.State == "ESTABLISHED" && state != "ESTABLISHED" {
		return
	}
	st.IKE = vpnconn.IKEStatus{State: state, LocalHost: str(ike, "local-host"), RemoteHost: str(ike, "remote-host"),
		Proposal: strings.Trim(strings.Join([]string{str(ike, "encr-alg") + keySize(str(ike, "encr-keysize")), str(ike, "integ-alg"),
			str(ike, "prf-alg"), str(ike, "dh-group")}, "/"), "/")}
	if sec, err := strconv.Atoi(str(ike, "established")); err == nil {
		st.IKE.EstablishedAt = ago(now, sec)
	}
	children, _ := ike.Get("child-sas").(*vici.Message)
	if children == nil {
		return
	}
	for _, ck := range children.Keys() {
		c, ok := children.Get(ck).(*vici.Message)
		if !ok {
			continue
		}
		if st.Child.State == "INSTALLED" && str(c, "state") != "INSTALLED" {
			continue
		}
		ch := vpnconn.ChildStatus{State: str(c, "state"), BytesIn: num(c, "bytes-in"), BytesOut: num(c, "bytes-out"),
			PacketsIn: num(c, "packets-in"), PacketsOut: num(c, "packets-out"), LocalTS: list(c, "local-ts"), RemoteTS: list(c, "remote-ts")}
		if sec, err := strconv.Atoi(str(c, "install-time")); err == nil {
			ch.InstalledAt = ago(now, sec)
		}
		st.Child = ch
	}
}

func keySize(s string) string {
	if s == "" {
		return ""
	}
	return "-" + s
}

func ago(now time.Time, sec int) *metav1.Time {
	t := metav1.NewTime(now.Add(-time.Duration(sec) * time.Second).Truncate(time.Second))
	return &t
}

func str(m *vici.Message, k string) string {
	s, _ := m.Get(k).(string)
	return s
}

func num(m *vici.Message, k string) int64 {
	n, _ := strconv.ParseInt(str(m, k), 10, 64)
	return n
}

func list(m *vici.Message, k string) []string {
	l, _ := m.Get(k).([]string)
	return l
}

// failure is a classified charon error: a condition reason and what to do.
type failure struct {
	Reason, Message string
	At              time.Time
}

// classify maps a charon log line to a failure the user can act on, or
// returns false for lines that are not one.
func classify(msg string, p *vpnconn.Plan) (failure, bool) {
	l := strings.ToLower(msg)
	switch {
	case strings.Contains(l, "authentication_failed"), strings.Contains(l, "mac mismatched"), strings.Contains(l, "no trusted"),
		strings.Contains(l, "no private key found"), strings.Contains(l, "constraint check failed"),
		strings.Contains(l, "no shared key found"), strings.Contains(l, "authentication of") && strings.Contains(l, "failed"):
		if p.UsesCertificates() {
			return failure{Reason: vpnconn.ReasonAuthFailed, Message: fmt.Sprintf(
				"authentication failed (%s): check that the remote trusts the CA of the certificate in Secret %s/%s, that its certificate chains to that Secret's %s, and the identities local.id=%s remote.id=%s",
				msg, vpnconn.Namespace, p.CertSecret, vpnconn.CAKey, or(p.LocalID, "(the certificate's subject)"), p.RemoteID)}, true
		}
		return failure{Reason: vpnconn.ReasonAuthFailed, Message: fmt.Sprintf(
			"authentication failed (%s): check that the pre-shared key in Secret %s/%s and the identities local.id=%s remote.id=%s match the remote's",
			msg, vpnconn.Namespace, p.SecretName, p.LocalID, p.RemoteID)}, true
	case strings.Contains(l, "no_proposal_chosen"), strings.Contains(l, "no acceptable proposal"), strings.Contains(l, "no matching proposal"):
		return failure{Reason: vpnconn.ReasonProposalMismatch, Message: fmt.Sprintf(
			"the peers share no proposal (%s): set ipsec.ike/ipsec.esp to algorithms the remote accepts", msg)}, true
	case strings.Contains(l, "ts_unacceptable"), strings.Contains(l, "traffic selectors") && strings.Contains(l, "unacceptable"):
		return failure{Reason: vpnconn.ReasonTSUnacceptable, Message: fmt.Sprintf(
			"the remote refused the subnets (%s): local.subnet and remote.subnet must mirror the remote's configuration", msg)}, true
	case strings.Contains(l, "giving up after"), strings.Contains(l, "retransmit") && strings.Contains(l, "giving up"):
		return failure{Reason: vpnconn.ReasonPeerUnreachable, Message: fmt.Sprintf(
			"remote.gateway %s does not answer IKE on UDP 500/4500 (%s): check its address and that UDP 500 and 4500 reach it", p.Gateway, msg)}, true
	case strings.Contains(l, "unable to install ipsec policies"), strings.Contains(l, "unable to install inbound and outbound ipsec sa"):
		return failure{Reason: vpnconn.ReasonGatewayError, Message: fmt.Sprintf(
			"charon could not install the tunnel on the gateway node (%s): see the gateway pod's log", msg)}, true
	case strings.Contains(l, "no ike config found"), strings.Contains(l, "no matching peer config"):
		return failure{Reason: vpnconn.ReasonAuthFailed, Message: fmt.Sprintf(
			"the identities do not match (%s): check local.id=%s and remote.id=%s against the remote's", msg, p.LocalID, p.RemoteID)}, true
	}
	return failure{}, false
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
