package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/strongswan/govici/vici"
)

// Bounds of the event subscription: an answer takes milliseconds, but
// a registration has been seen to go unanswered on a busy node (the
// container then restarted after 20 s); a fresh session is tried
// before giving up.
const (
	subscribeTimeout  = 5 * time.Second
	subscribeAttempts = 3
)

// subscribe opens a session for ike-updown, child-updown and log events
// (a session's events and commands share one socket, so not g.sess).
func (g *gateway) subscribe() (<-chan vici.Event, error) {
	var errs []error
	for attempt := 1; attempt <= subscribeAttempts; attempt++ {
		s, err := g.trySubscribe()
		if err == nil {
			ch := make(chan vici.Event, 256)
			s.NotifyEvents(ch)
			if attempt > 1 {
				g.log.Info("subscribed to charon's events on a new VICI session", "attempt", attempt)
			}
			return ch, nil
		}
		g.log.Warn("subscribing to charon's events failed", "attempt", attempt, "err", err)
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("vici subscribe: %w", errors.Join(errs...))
}

// trySubscribe registers the events one by one on a new session, each
// within subscribeTimeout, closing the session on failure.
func (g *gateway) trySubscribe() (*vici.Session, error) {
	s, err := dialVICI(g.e.RunDir)
	if err != nil {
		return nil, err
	}
	for _, ev := range []string{"ike-updown", "child-updown", "log"} {
		errc := make(chan error, 1)
		go func() { errc <- s.Subscribe(ev) }()
		select {
		case err = <-errc:
		case <-time.After(subscribeTimeout):
			err = fmt.Errorf("charon did not confirm event %s within %s", ev, subscribeTimeout)
		}
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("event %s: %w", ev, err)
		}
	}
	return s, nil
}
