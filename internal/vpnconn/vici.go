package vpnconn

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/strongswan/govici/vici"
)

// Timers tuned for recovery within seconds rather than charon's
// defaults (~166 s after a remote restart): dead peers are detected by
// DPD every DPDDelay (unless ipsec.dpdaction is none), and the gateway
// re-initiates on ike-updown (Plan.Reinitiate).
const (
	DPDDelay = "5s"
)

// ChildName is the CHILD_SA name of a connection (the same as the IKE
// connection's).
func (p *Plan) ChildName() string { return p.Name }

// SharedID is the id of the connection's pre-shared key in charon.
func (p *Plan) SharedID() string { return "psk-" + p.Name }

// LoadConn is the VICI load-conn message of the plan; localAddrs are
// the addresses charon accepts IKE on, the first the one it connects
// from (the node's, or the load balancer IP first), none for any. cred
// is the certificate material for ipsec.authby pubkey (nil for psk).
func (p *Plan) LoadConn(localAddrs []netip.Addr, cred *Credentials) (*vici.Message, error) {
	local := vici.NewMessage()
	remote := vici.NewMessage()
	child := vici.NewMessage()
	conn := vici.NewMessage()
	startAction := "none"
	if p.Auto == "start" {
		startAction = "start"
	}
	remoteAddrs := []string{p.Gateway}
	var locals []string
	for _, a := range localAddrs {
		if a.IsValid() && !slices.Contains(locals, a.String()) {
			locals = append(locals, a.String())
		}
	}
	if len(locals) == 0 {
		locals = []string{"%any"}
	}
	if err := p.setAuth(local, remote, cred); err != nil {
		return nil, err
	}
	for _, kv := range []struct {
		m   *vici.Message
		key string
		val any
	}{
		{child, "local_ts", prefixStrings(p.LocalTS)},
		{child, "remote_ts", prefixStrings(p.RemoteTS)},
		{child, "rekey_time", p.Actions.ChildRekey},
		{child, "life_time", p.Actions.ChildLife},
		{child, "rand_time", p.Actions.Rand},
		{child, "start_action", startAction},
		{child, "close_action", p.Actions.CloseAction},
		{child, "dpd_action", p.Actions.DPDAction},
		{conn, "version", strconv.Itoa(p.Version)},
		{conn, "local_addrs", locals},
		{conn, "remote_addrs", remoteAddrs},
		{conn, "rekey_time", p.Actions.IKERekey},
		{conn, "over_time", p.Actions.IKEOver},
		{conn, "rand_time", p.Actions.Rand},
		{conn, "dpd_delay", p.Actions.DPDDelay},
		{conn, "keyingtries", strconv.Itoa(p.Actions.KeyingTries)},
		{conn, "unique", "replace"},
		{conn, "mobike", "no"},
		{conn, "local", local},
		{conn, "remote", remote},
	} {
		if err := kv.m.Set(kv.key, kv.val); err != nil {
			return nil, fmt.Errorf("vici message %s: %w", kv.key, err)
		}
	}
	if len(p.ESP) > 0 {
		if err := child.Set("esp_proposals", p.ESP); err != nil {
			return nil, fmt.Errorf("vici message esp_proposals: %w", err)
		}
	}
	if len(p.IKE) > 0 {
		if err := conn.Set("proposals", p.IKE); err != nil {
			return nil, fmt.Errorf("vici message proposals: %w", err)
		}
	}
	children := vici.NewMessage()
	if err := children.Set(p.ChildName(), child); err != nil {
		return nil, fmt.Errorf("vici message children: %w", err)
	}
	if err := conn.Set("children", children); err != nil {
		return nil, fmt.Errorf("vici message children: %w", err)
	}
	msg := vici.NewMessage()
	if err := msg.Set(p.Name, conn); err != nil {
		return nil, fmt.Errorf("vici message %s: %w", p.Name, err)
	}
	return msg, nil
}

// LoadShared is the VICI load-shared message of the pre-shared key,
// bound to both identities.
func (p *Plan) LoadShared(psk string) (*vici.Message, error) {
	m := vici.NewMessage()
	for _, kv := range []struct {
		key string
		val any
	}{{"id", p.SharedID()}, {"type", "IKE"}, {"data", psk}, {"owners", []string{p.LocalID, p.RemoteID}}} {
		if err := m.Set(kv.key, kv.val); err != nil {
			return nil, fmt.Errorf("vici load-shared %s: %w", kv.key, err)
		}
	}
	return m, nil
}

// Initiate is the VICI initiate message of the connection; timeoutMS 0
// waits for the result, a negative value returns at once.
func (p *Plan) Initiate(timeoutMS int) (*vici.Message, error) {
	m := vici.NewMessage()
	for _, kv := range [][2]string{{"child", p.ChildName()}, {"ike", p.Name}, {"timeout", strconv.Itoa(timeoutMS)}, {"init-limits", "no"}} {
		if err := m.Set(kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("vici initiate %s: %w", kv[0], err)
		}
	}
	return m, nil
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
