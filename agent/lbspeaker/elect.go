package lbspeaker

import (
	"context"
	"net/netip"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/iks-dev/iks/internal/lbpool"

	"github.com/iks-dev/iks/internal/api"
)

type metav1ListOptions = metav1.ListOptions

// campaign runs for ip's Lease until ctx ends, after waiting delay (the
// node's rendezvous rank). Whenever it holds the Lease the IP is
// announced; when it loses it (or ctx ends) the IP is withdrawn.
func (s *Speaker) campaign(ctx context.Context, ip netip.Addr, ann *Announcer, delay time.Duration, c *campaign) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.campaigns, ip)
		s.mu.Unlock()
		close(c.done)
		s.trigger()
	}()
	select {
	case <-ctx.Done():
		return
	case <-time.After(delay):
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: lbpool.LeaseName(ip), Namespace: lbpool.Namespace},
		Client:     s.leases.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: s.cfg.NodeName},
		Labels:     map[string]string{api.ManagedByLabel: api.ManagedBy, "iks.io/lb-ip": lbpool.LeaseName(ip)},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, Name: ip.String(), ReleaseOnCancel: true,
			LeaseDuration: s.cfg.LeaseDuration, RenewDeadline: s.cfg.RenewDeadline, RetryPeriod: s.cfg.RetryPeriod,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) { s.hold(lctx, ip, ann) },
				// Losing the Lease is decided below: an unreachable
				// apiserver (a server restart) must not drop every IP.
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			s.noteErr(err)
			return
		}
		le.Run(ctx)
		s.afterLoss(ctx, ip)
	}
	s.withdraw(ip)
}

// afterLoss decides what a node does with ip after its leadership ended
// (or before it runs again). It withdraws the IP at once when another
// node holds the Lease; while the apiserver cannot be reached it keeps
// announcing (no other node can take the Lease then, and withdrawing
// would cut every LoadBalancer IP during a server restart), until the
// Lease can be read again.
func (s *Speaker) afterLoss(ctx context.Context, ip netip.Addr) {
	for warned := false; ctx.Err() == nil; {
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RenewDeadline)
		l, err := s.leases.CoordinationV1().Leases(lbpool.Namespace).Get(rctx, lbpool.LeaseName(ip), metav1.GetOptions{})
		cancel()
		switch {
		case err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" && *l.Spec.HolderIdentity != s.cfg.NodeName:
			s.withdraw(ip)
			return
		case err == nil || apierrors.IsNotFound(err):
			return // run for it again, still announcing if we were
		}
		if s.isHeld(ip) && !warned {
			s.log.Warn("cannot read the Lease of an announced IP; keeping it until the apiserver answers", "ip", ip, "err", err)
			warned = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(s.cfg.RetryPeriod):
		}
	}
}

func (s *Speaker) isHeld(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[ip] != nil
}

// hold announces ip on ann's interface while lctx (the leadership) lasts.
func (s *Speaker) hold(lctx context.Context, ip netip.Addr, ann *Announcer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lctx.Err() != nil || s.held[ip] != nil {
		return
	}
	if err := ann.Add(lctx, ip); err != nil {
		s.log.Error("cannot announce LoadBalancer IP", "ip", ip, "err", err)
		return
	}
	s.held[ip] = ann
	s.log.Info("announcing LoadBalancer IP", "ip", ip, "interface", ann.Interface())
}

// withdraw stops announcing ip (idempotent).
func (s *Speaker) withdraw(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ann := s.held[ip]
	if ann == nil {
		return
	}
	if err := ann.Remove(ip); err != nil {
		s.log.Error("cannot withdraw LoadBalancer IP", "ip", ip, "err", err)
		return
	}
	delete(s.held, ip)
	s.log.Info("stopped announcing LoadBalancer IP", "ip", ip)
}
