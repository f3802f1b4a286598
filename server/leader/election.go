package leader

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/iks-dev/iks/internal/component"
)

// loop runs elections until ctx ends: a term ends when the Lease is lost
// (or its components fail to start); the server then stands again.
func (g *Group) loop(ctx context.Context, lock resourcelock.Interface) {
	for ctx.Err() == nil {
		g.runElection(ctx, lock)
		select {
		case <-ctx.Done():
		case <-time.After(g.cfg.RetryPeriod):
		}
	}
}

// runElection stands once: it returns when the term (if won) has ended
// and its components have stopped.
func (g *Group) runElection(ctx context.Context, lock resourcelock.Interface) {
	termCtx, endTerm := context.WithCancel(ctx)
	defer endTerm()
	var led atomic.Bool
	termDone := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		Name:          g.cfg.Name,
		LeaseDuration: g.cfg.LeaseDuration,
		RenewDeadline: g.cfg.RenewDeadline,
		RetryPeriod:   g.cfg.RetryPeriod,
		// The Lease is released only after the components stopped: Stop
		// stops them before it cancels the election.
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				led.Store(true)
				defer close(termDone)
				if err := g.lead(leadCtx); err != nil {
					g.log.Error("the iks controllers failed to start on this server; giving up the lead", "err", err)
					endTerm()
				}
			},
			OnStoppedLeading: func() {
				if led.Load() && ctx.Err() == nil {
					g.log.Warn("this server lost the lead of the iks controllers; stopping them", "lease", g.cfg.Namespace+"/"+g.cfg.Name)
				}
			},
			OnNewLeader: func(id string) {
				if id == g.cfg.Identity {
					return // logged when its components have started
				}
				g.log.Info("the iks controllers run on another server", "leader", id, "lease", g.cfg.Namespace+"/"+g.cfg.Name)
				g.known(nil)
			},
		},
	})
	if err != nil {
		// Init checked the timing; nothing else can fail here.
		g.log.Error("leader election not possible", "err", err)
		g.known(fmt.Errorf("%s: %w", g.cfg.Name, err))
		<-ctx.Done()
		return
	}
	le.Run(termCtx)
	if led.Load() {
		<-termDone
	}
}

// lead runs one term: it starts the components and, when the term ends
// (leadership lost or the server stopping), stops them. It returns only
// a start failure; a stop failure is logged.
func (g *Group) lead(ctx context.Context) error {
	t0 := time.Now()
	g.mu.Lock()
	comps := g.next
	g.next = nil
	g.mu.Unlock()
	if comps == nil {
		var err error
		if comps, err = g.initSet(ctx); err != nil {
			g.known(err)
			return err
		}
	}
	m := component.NewManager(g.base, comps...)
	if err := m.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // the term ended while starting: nothing failed
		}
		g.known(err)
		return err
	}
	g.mu.Lock()
	g.term = m
	g.mu.Unlock()
	g.log.Info("this server leads the iks controllers", "leader", g.cfg.Identity, "lease", g.cfg.Namespace+"/"+g.cfg.Name,
		"took", time.Since(t0).Round(time.Millisecond).String())
	g.known(nil)
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), termStopTimeout)
	defer cancel()
	if err := g.stopTerm(stopCtx); err != nil {
		g.log.Error("stopping the iks controllers", "err", err)
	}
	return nil
}
