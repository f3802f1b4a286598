package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strongswan/govici/vici"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// Timing of the supervisor.
const (
	refreshEvery   = 2 * time.Second  // list-sas while not established
	heartbeatEvery = 15 * time.Second // status write while nothing changes
	maxBackoff     = 10 * time.Second
)

type gateway struct {
	e         *env
	k         *kube
	dataplane string
	log       *slog.Logger
	sess      *vici.Session

	mu        sync.Mutex
	lastErr   *failure
	inflight  bool
	initiated bool // the first initiation ran (Plan.Reinitiate: more)
	nextTry   time.Time
	backoff   time.Duration
	reported  string // state key of the last status write
	lastWrite time.Time
}

func run(ctx context.Context, log *slog.Logger) error {
	e, err := loadEnv()
	if err != nil {
		return err
	}
	log = log.With("vpnconnection", e.Name)
	k, err := newKube(e.APIServer)
	if err != nil {
		return err
	}
	dp, perr := probeDataplane()
	log.Info("kernel ESP probe", "dataplane", dp, "probe-error", errString(perr))
	g := &gateway{e: e, k: k, dataplane: dp, log: log, backoff: 500 * time.Millisecond}
	// Claim the connection at once: the agents blackhole its subnets
	// instead of routing them to a previous gateway's node.
	g.fail(ctx, vpnconn.ReasonConnecting, "gateway starting on node "+e.NodeName)
	if dp == vpnconn.DataplaneLibipsec {
		anchors, err := ensureAnchors(e.Plan.LocalTS)
		if err != nil {
			g.fail(ctx, vpnconn.ReasonGatewayError, err.Error())
			return err
		}
		if len(anchors) > 0 {
			log.Info("anchor addresses for kernel-libipsec's routes", "device", anchorDevice, "addresses", fmt.Sprint(anchors))
		}
		defer func() { _ = removeAnchors() }()
	}
	cmd, err := startCharon(ctx, e, dp, log)
	if err != nil {
		g.fail(ctx, vpnconn.ReasonGatewayError, err.Error())
		return err
	}
	charonDone := make(chan error, 1)
	go func() { charonDone <- cmd.Wait() }()
	defer stopCharonWait(cmd, charonDone)
	if err := g.resolveNode(ctx); err != nil {
		g.fail(ctx, vpnconn.ReasonGatewayError, err.Error())
		return err
	}
	addrs, err := g.localAddrs(ctx)
	if err != nil {
		return err
	}
	if err := g.load(addrs); err != nil {
		g.fail(ctx, vpnconn.ReasonGatewayError, err.Error())
		return err
	}
	events, err := g.subscribe()
	if err != nil {
		g.fail(ctx, vpnconn.ReasonGatewayError, err.Error())
		return err
	}
	log.Info("connection loaded into charon", "auto", e.Plan.Auto, "auth", e.Plan.Auth, "local", fmt.Sprint(addrs), "remote", e.Plan.Gateway,
		"local-ts", fmt.Sprint(e.Plan.LocalTS), "remote-ts", fmt.Sprint(e.Plan.RemoteTS))
	g.kick(0)
	g.refresh(ctx)
	go g.holdLease(ctx)
	tick := time.NewTicker(refreshEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping: charon deletes its SAs")
			g.fail(context.WithoutCancel(ctx), vpnconn.ReasonConnecting, "the gateway pod is stopping; a new one takes over")
			return nil
		case err := <-charonDone:
			charonDone <- err
			msg := fmt.Sprintf("charon exited: %v", err)
			g.fail(ctx, vpnconn.ReasonGatewayError, msg)
			return errors.New(msg)
		case ev, ok := <-events:
			if !ok {
				return errors.New("charon closed the VICI event stream")
			}
			g.event(ctx, ev)
		case <-tick.C:
			g.kick(0)
			g.refresh(ctx)
		}
	}
}

func stopCharonWait(cmd *exec.Cmd, done chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// load gives charon the pre-shared key or the certificates, and the
// connection, accepting IKE on localAddrs (the first the one charon
// connects from).
func (g *gateway) load(localAddrs []netip.Addr) error {
	s, err := dialVICI(g.e.RunDir)
	if err != nil {
		return err
	}
	g.sess = s
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.loadCredentials(ctx, s); err != nil {
		return err
	}
	conn, err := g.e.Plan.LoadConn(localAddrs, g.e.Cred)
	if err != nil {
		return err
	}
	if _, err := s.Call(ctx, "load-conn", conn); err != nil {
		return fmt.Errorf("vici load-conn: %w", err)
	}
	return nil
}

func (g *gateway) event(ctx context.Context, ev vici.Event) {
	switch ev.Name {
	case "log":
		if name := str(ev.Message, "ikesa-name"); name != "" && name != g.e.Name {
			return
		}
		if f, ok := classify(str(ev.Message, "msg"), g.e.Plan); ok {
			f.At = ev.Timestamp
			g.mu.Lock()
			g.lastErr = &f
			g.mu.Unlock()
			g.log.Warn("connection failure", "reason", f.Reason, "detail", str(ev.Message, "msg"))
			g.refresh(ctx)
		}
	case "ike-updown", "child-updown":
		up := str(ev.Message, "up") == "yes"
		g.log.Info(ev.Name, "up", up)
		if !up {
			g.kick(500 * time.Millisecond) // re-initiate at once, not after DPD/retransmit timers
		} else {
			g.mu.Lock()
			g.backoff = 500 * time.Millisecond
			g.mu.Unlock()
		}
		g.refresh(ctx)
	}
}

// kick initiates the connection (ipsec.auto start) unless it is up or
// an initiation runs; after a failure the next waits longer (to 10 s).
// Without a restart action or with a finite ipsec.keyingtries it
// initiates once: charon's close/dpd actions and keyingtries decide the
// rest, as the chart's.
func (g *gateway) kick(delay time.Duration) {
	if g.e.Plan.Auto != "start" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.initiated && !g.e.Plan.Reinitiate() {
		return
	}
	now := time.Now()
	if delay > 0 && g.nextTry.Before(now.Add(delay)) {
		g.nextTry = now.Add(delay)
	}
	if g.inflight || now.Before(g.nextTry) {
		return
	}
	g.inflight, g.initiated = true, true
	go func() {
		err := g.initiate()
		g.mu.Lock()
		defer g.mu.Unlock()
		g.inflight = false
		if err != nil {
			g.nextTry = time.Now().Add(g.backoff)
			g.backoff = min(2*g.backoff, maxBackoff)
			g.log.Info("initiate failed; retrying", "in", g.backoff.String(), "err", err)
		} else {
			g.backoff = 500 * time.Millisecond
		}
	}()
}

func (g *gateway) initiate() error {
	// Its own session: a session serves one request at a time, and
	// govici's CallStreaming releases it before the stream is read.
	s, err := dialVICI(g.e.RunDir)
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
	st, err := listSAs(lctx, s, g.e.Name, time.Now())
	lcancel()
	if err == nil && st.IKE.State != "DOWN" && st.Child.State != "DOWN" {
		return nil // established or under way (charon retries itself)
	}
	msg, err := g.e.Plan.Initiate(15000)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Call(ctx, "initiate", msg); err != nil {
		return fmt.Errorf("vici initiate: %w", err)
	}
	return nil
}

// refresh reads the SAs and writes the status when it changed or the
// heartbeat is due.
func (g *gateway) refresh(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	st, err := listSAs(lctx, g.sess, g.e.Name, time.Now())
	cancel()
	if err != nil {
		g.log.Warn("list-sas failed", "err", err)
		return
	}
	g.mu.Lock()
	cond := metav1.Condition{Type: vpnconn.ConditionEstablished, ObservedGeneration: g.e.Generation}
	lastErr := g.lastErr
	switch {
	case st.up():
		cond.Status, cond.Reason = metav1.ConditionTrue, vpnconn.ReasonEstablished
		cond.Message = fmt.Sprintf("IKE SA with %s established, CHILD SA installed (%s on node %s)", st.IKE.RemoteHost, g.dataplane, g.e.NodeName)
		g.lastErr = nil
	case lastErr != nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, lastErr.Reason, lastErr.Message
	case g.e.Plan.Auto == "add":
		cond.Status, cond.Reason = metav1.ConditionFalse, vpnconn.ReasonWaitingForPeer
		cond.Message = "ipsec.auto add: waiting for the remote to connect to node " + g.e.NodeName + " (" + g.e.NodeIP.String() + ")"
		if lb := g.e.Plan.LoadBalancerIP; lb.IsValid() {
			cond.Message += " or to the load balancer IP " + lb.String()
			if g.lbHere() == "" {
				cond.Message += ", which is not on this node yet: see `iks lb status` and the Service's events (the node must be able to hold IPs of that portable subnet)"
			}
		}
	default:
		cond.Status, cond.Reason = metav1.ConditionFalse, vpnconn.ReasonConnecting
		cond.Message = "connecting to " + g.e.Plan.Gateway
	}
	key := fmt.Sprint(cond.Status, cond.Reason, cond.Message, st.IKE.State, st.Child.State, st.IKE.RemoteHost, g.lbHere())
	due := key != g.reported || time.Since(g.lastWrite) >= heartbeatEvery
	g.mu.Unlock()
	if !due {
		return
	}
	err = g.k.updateStatus(ctx, g.e.Name, func(c *vpnconn.Conn) {
		now := metav1.Now()
		c.Status.Gateway = g.status(&now)
		c.Status.IKE, c.Status.Child = st.IKE, st.Child
		if lastErr != nil {
			c.Status.LastError = lastErr.Message
			t := metav1.NewTime(lastErr.At)
			c.Status.LastErrorTime = &t
		}
		meta.SetStatusCondition(&c.Status.Conditions, cond)
	})
	if err != nil {
		g.log.Warn("status update failed", "err", err)
		return
	}
	if key != g.reported {
		g.log.Info("status", "established", cond.Status, "reason", cond.Reason, "ike", st.IKE.State, "child", st.Child.State)
	}
	g.mu.Lock()
	g.reported, g.lastWrite = key, time.Now()
	g.mu.Unlock()
}

// holdLease renews the gateway's Lease until ctx ends: the server moves
// the gateway to another node when it stops (node dead or cut off).
func (g *gateway) holdLease(ctx context.Context) {
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	failing := false
	for {
		rctx, cancel := context.WithTimeout(ctx, leaseRenew)
		err := g.k.renewLease(rctx, g.e.Name, g.e.PodName, g.e.NodeName)
		cancel()
		if err != nil && !failing && ctx.Err() == nil {
			g.log.Warn("gateway Lease not renewed", "err", err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fail reports a gateway-side failure.
func (g *gateway) fail(ctx context.Context, reason, msg string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := g.k.updateStatus(ctx, g.e.Name, func(c *vpnconn.Conn) {
		now := metav1.Now()
		c.Status.Gateway = g.status(&now)
		c.Status.IKE, c.Status.Child = vpnconn.IKEStatus{State: "DOWN"}, vpnconn.ChildStatus{State: "DOWN"}
		if reason == vpnconn.ReasonGatewayError {
			c.Status.LastError, c.Status.LastErrorTime = msg, &now
		}
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: vpnconn.ConditionEstablished, Status: metav1.ConditionFalse,
			Reason: reason, Message: msg, ObservedGeneration: g.e.Generation})
	})
	if err != nil {
		g.log.Warn("status update failed", "err", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
