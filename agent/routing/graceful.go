package routing

import (
	"context"
	"fmt"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// resetStopWait bounds how long Stop waits for the reset sessions to go
// down before it stops the speaker anyway.
const resetStopWait = 3 * time.Second

// resetForRestart resets every established session with a Cease /
// Administrative Reset. Unlike the Cease / Peer De-configured gobgp sends
// when it stops (which RFC 8538 maps to a Hard Reset), that NOTIFICATION
// starts the graceful restart procedure on the peers. The local FSMs then
// stay idle (idleHoldAfterReset), so nothing reconnects before the
// speaker stops.
func (r *Router) resetForRestart(ctx context.Context) {
	err := r.bgp.ResetPeer(ctx, &api.ResetPeerRequest{Address: "" /* all */, Communication: "iks agent restarting"})
	if err != nil {
		r.log.Warn("cannot reset BGP sessions for a graceful restart; peers may withdraw this node's routes", "err", err)
		return
	}
	deadline := time.Now().Add(resetStopWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		up := 0
		_ = r.bgp.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
			if p.State != nil && p.State.SessionState == api.PeerState_ESTABLISHED {
				up++
			}
		})
		if up == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.log.Info("BGP sessions reset for a graceful restart; peers keep this node's routes", "restart-time", r.cfg.GracefulRestartTime)
}

// notePeerError records the last NOTIFICATION or error of a neighbour
// for the status.
func (r *Router) notePeerError(peer, msg string) {
	r.mu.Lock()
	r.peerErr[peer] = time.Now().UTC().Format(time.RFC3339) + " " + msg
	r.mu.Unlock()
}

// describePeerEvent turns a gobgp peer warning into one line, naming a
// NOTIFICATION's error code ("sent notification: open message error /
// bad peer AS").
func describePeerEvent(msg string, f gobgplog.Fields) string {
	code, ok1 := f["Code"].(uint8)
	sub, ok2 := f["Subcode"].(uint8)
	if ok1 && ok2 {
		msg = fmt.Sprintf("%s: %s", msg, bgp.NewNotificationErrorCode(code, sub))
		if reason, ok := f["Communicated-Reason"].(string); ok && reason != "" {
			msg += " (" + reason + ")"
		}
		return msg
	}
	if e, ok := f["Data"].(*bgp.MessageError); ok {
		return fmt.Sprintf("%s: %s: %s", msg, bgp.NewNotificationErrorCode(e.TypeCode, e.SubTypeCode), e.Message)
	}
	if d, ok := f["Data"]; ok {
		return fmt.Sprintf("%s: %v", msg, d)
	}
	if e, ok := f["Error"]; ok {
		return fmt.Sprintf("%s: %v", msg, e)
	}
	return msg
}
