package lbspeaker

import (
	"errors"
	"fmt"

	"github.com/iks-dev/iks/internal/lbpool"
)

// openAnnouncers opens the private side's announcer (node IP) and, on a
// node with a public side, the public one; one announcer serves both when
// the public IP is the node IP.
func (s *Speaker) openAnnouncers() error {
	priv, err := NewAnnouncer(s.cfg.NodeIP, s.log)
	if err != nil {
		return err
	}
	s.priv = priv
	switch {
	case !s.cfg.PublicIP.IsValid():
	case s.cfg.PublicIP == s.cfg.NodeIP:
		s.pub = priv
	default:
		pub, err := NewAnnouncer(s.cfg.PublicIP, s.log)
		if err != nil {
			_ = priv.Close()
			s.priv = nil
			return fmt.Errorf("public side: %w", err)
		}
		s.pub = pub
	}
	return nil
}

// announcer is the announcer for a pool kind (nil: this node has no
// such side).
func (s *Speaker) announcer(k lbpool.Kind) *Announcer {
	if k == lbpool.Public {
		return s.pub
	}
	return s.priv
}

// announcers lists the distinct open announcers.
func (s *Speaker) announcers() []*Announcer {
	out := []*Announcer{}
	if s.priv != nil {
		out = append(out, s.priv)
	}
	if s.pub != nil && s.pub != s.priv {
		out = append(out, s.pub)
	}
	return out
}

func (s *Speaker) publicInterface() string {
	if s.pub == nil {
		return "(none: private-only worker)"
	}
	return s.pub.Interface()
}

// closeAnnouncers closes every announcer once.
func (s *Speaker) closeAnnouncers() error {
	var errs []error
	for _, a := range s.announcers() {
		errs = append(errs, a.Close())
	}
	s.priv, s.pub = nil, nil
	return errors.Join(errs...)
}
