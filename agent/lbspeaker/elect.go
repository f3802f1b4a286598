package lbspeaker

import (
	"context"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/iks-dev/iks/internal/lbpool"
)

type metav1ListOptions = metav1.ListOptions

// campaign runs for ip's Lease until ctx ends, after waiting delay (the
// node's rendezvous rank). Whenever it holds the Lease the IP is
// announced; when it loses it (or ctx ends) the IP is withdrawn.
func (s *Speaker) campaign(ctx context.Context, ip netip.Addr, delay time.Duration, c *campaign) {
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
		Labels:     map[string]string{"app.kubernetes.io/managed-by": "iks", "iks.io/lb-ip": lbpool.LeaseName(ip)},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, Name: ip.String(), ReleaseOnCancel: true,
			LeaseDuration: s.cfg.LeaseDuration, RenewDeadline: s.cfg.RenewDeadline, RetryPeriod: s.cfg.RetryPeriod,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) { s.hold(lctx, ip) },
				OnStoppedLeading: func() { s.withdraw(ip) },
			},
		})
		if err != nil {
			s.noteErr(err)
			return
		}
		le.Run(ctx)
		s.withdraw(ip)
		select {
		case <-ctx.Done():
		case <-time.After(s.cfg.RetryPeriod):
		}
	}
}

// hold announces ip while lctx (the leadership) lasts.
func (s *Speaker) hold(lctx context.Context, ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lctx.Err() != nil || s.held[ip] {
		return
	}
	if err := s.ann.Add(lctx, ip); err != nil {
		s.log.Error("cannot announce LoadBalancer IP", "ip", ip, "err", err)
		return
	}
	s.held[ip] = true
	s.log.Info("announcing LoadBalancer IP", "ip", ip, "interface", s.ann.Interface())
}

// withdraw stops announcing ip (idempotent).
func (s *Speaker) withdraw(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.held[ip] {
		return
	}
	if err := s.ann.Remove(ip); err != nil {
		s.log.Error("cannot withdraw LoadBalancer IP", "ip", ip, "err", err)
		return
	}
	delete(s.held, ip)
	s.log.Info("stopped announcing LoadBalancer IP", "ip", ip)
}
