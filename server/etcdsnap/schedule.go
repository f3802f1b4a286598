package etcdsnap

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	clientv3 "go.etcd.io/etcd/client/v3"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
)

// DefaultSchedule takes a snapshot every 12 hours; DefaultRetention keeps 5.
const (
	DefaultSchedule  = "0 */12 * * *"
	DefaultRetention = 5
)

// ParseSchedule parses a five-field cron expression ("" disables).
func ParseSchedule(expr string) (cron.Schedule, error) {
	if expr == "" {
		return nil, nil
	}
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("--etcd-snapshot-schedule-cron %q is not a cron expression (%v): use five fields, "+
			"e.g. %q for every 12 hours, or \"\" to disable", expr, err, DefaultSchedule)
	}
	return s, nil
}

// SchedulerConfig configures the scheduled snapshots.
type SchedulerConfig struct {
	Schedule  cron.Schedule
	Retention int
	Dir       string
	Node      string
	CAHash    string
	// Keys returns the current Secrets encryption keys.
	Keys func() ([]apiserverv1.Key, error)
	// Client connects to the local member; the scheduler closes it.
	Client func() (*clientv3.Client, error)
}

// Scheduler is the component taking scheduled snapshots.
type Scheduler struct {
	cfg    SchedulerConfig
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewScheduler returns the component.
func NewScheduler(cfg SchedulerConfig, log *slog.Logger) *Scheduler {
	return &Scheduler{cfg: cfg, log: log.With("component", "etcd-snapshot")}
}

// Name implements component.Component.
func (s *Scheduler) Name() string { return "etcd-snapshot-schedule" }

// Init implements component.Component.
func (s *Scheduler) Init(context.Context) error { return nil }

// Start runs the schedule in the background.
func (s *Scheduler) Start(context.Context) error {
	if s.cfg.Schedule == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			next := s.cfg.Schedule.Next(time.Now())
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(next)):
			}
			if err := s.take(ctx); err != nil {
				s.log.Error("scheduled etcd snapshot failed", "err", err)
			}
		}
	}()
	return nil
}

// take saves one snapshot and prunes beyond the retention.
func (s *Scheduler) take(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	keys, err := s.cfg.Keys()
	if err != nil {
		return err
	}
	cli, err := s.cfg.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	t0 := time.Now()
	m, err := Save(ctx, SaveOptions{Dir: s.cfg.Dir, Prefix: ScheduledPrefix, Node: s.cfg.Node, Scheduled: true,
		CAHash: s.cfg.CAHash, EncKeys: keys, Client: cli, Now: t0})
	if err != nil {
		return err
	}
	s.log.Info("etcd snapshot saved", "name", m.Name, "bytes", m.Size, "took", time.Since(t0).Round(time.Millisecond).String())
	gone, err := Prune(s.cfg.Dir, s.cfg.Retention)
	if len(gone) > 0 {
		s.log.Info("pruned scheduled etcd snapshots", "deleted", gone, "retention", s.cfg.Retention)
	}
	return err
}

// Stop ends the schedule and waits for a snapshot in progress.
func (s *Scheduler) Stop(context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return nil
}
