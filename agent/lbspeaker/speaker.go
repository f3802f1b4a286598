// Package lbspeaker is the node side of LoadBalancer services (in the
// style of MetalLB's L2 mode and kube-vip): for every LoadBalancer IP of
// the portable subnets, the eligible nodes run a leader election on a
// Lease in namespace iks-lb, and the one node holding it adds the IP as a
// /32 to its uplink and sends gratuitous ARP; kube-proxy then DNATs the
// traffic. When the holder dies its Lease expires and another node takes
// over.
package lbspeaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/lbpool"
)

// Election timing defaults: a dead holder's IP moves after at most
// LeaseDuration plus one RetryPeriod (with jitter), about 2.5 s. The Lease
// stores whole seconds, so LeaseDuration is a multiple of a second.
const (
	DefaultLeaseDuration = 2 * time.Second
	DefaultRenewDeadline = 1500 * time.Millisecond
	DefaultRetryPeriod   = 400 * time.Millisecond
	// DefaultSpreadDelay is how much longer each next-preferred node waits
	// before it first runs for an IP, so IPs spread over the nodes.
	DefaultSpreadDelay = 500 * time.Millisecond
)

// Config of the speaker.
type Config struct {
	NodeName string
	NodeIP   netip.Addr
	// PublicIP is the node's public side: public IPs are announced on its
	// interface (invalid: a private-only worker, never eligible for them).
	PublicIP netip.Addr
	// Clients are the agent's shared clients (the kubelet's identity,
	// system:node:<name>).
	Clients *kubeclients.Clients

	LeaseDuration, RenewDeadline, RetryPeriod, SpreadDelay time.Duration
}

// Speaker is the component.
type Speaker struct {
	cfg Config
	log *slog.Logger

	leases kubernetes.Interface // impersonating lbpool.SpeakerUser
	// priv announces on the node IP's interface, pub on the public IP's
	// (nil on a private-only worker; priv when both are one interface).
	priv, pub *Announcer
	f         informers.SharedInformerFactory // shared: handlers in regs
	regs      kubeclients.Registrations
	cmF       informers.SharedInformerFactory // own: one ConfigMap
	kick      chan struct{}
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu        sync.Mutex
	campaigns map[netip.Addr]*campaign
	held      map[netip.Addr]*Announcer
	cleaned   bool
	lastErr   string
}

type campaign struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns the speaker.
func New(cfg Config, log *slog.Logger) *Speaker {
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = DefaultLeaseDuration, DefaultRenewDeadline, DefaultRetryPeriod
	}
	if cfg.SpreadDelay == 0 {
		cfg.SpreadDelay = DefaultSpreadDelay
	}
	return &Speaker{cfg: cfg, log: log.With("component", "lb-speaker"), kick: make(chan struct{}, 1),
		campaigns: map[netip.Addr]*campaign{}, held: map[netip.Addr]*Announcer{}}
}

// Name implements component.Component.
func (s *Speaker) Name() string { return "lb-speaker" }

// Init implements component.Component.
func (s *Speaker) Init(context.Context) error { return nil }

// Start opens the uplink, starts the informers and the loop. It does not
// wait for the pools: a server without portable subnets publishes none.
//
// A failure after the uplink is open closes it again: a failed Start
// leaves no raw socket and no informer behind.
func (s *Speaker) Start(ctx context.Context) (err error) {
	cs, err := s.cfg.Clients.Wait(ctx)
	if err != nil {
		return err
	}
	rc := rest.CopyConfig(s.cfg.Clients.Config())
	rc.Impersonate.UserName = lbpool.SpeakerUser
	if s.leases, err = kubernetes.NewForConfig(rc); err != nil {
		return fmt.Errorf("lease client: %w", err)
	}
	if err := s.openAnnouncers(); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop(context.WithoutCancel(ctx)))
		}
	}()
	s.f = s.cfg.Clients.Informers()
	s.cmF = informers.NewSharedInformerFactoryWithOptions(cs, 10*time.Minute, informers.WithNamespace(lbpool.ConfigMapNamespace),
		informers.WithTweakListOptions(func(o *metav1ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", lbpool.ConfigMapName).String()
		}))
	h := cache.ResourceEventHandlerFuncs{AddFunc: func(any) { s.trigger() }, UpdateFunc: func(any, any) { s.trigger() },
		DeleteFunc: func(any) { s.trigger() }}
	for _, inf := range []cache.SharedIndexInformer{s.f.Core().V1().Services().Informer(), s.f.Core().V1().Nodes().Informer(),
		s.f.Discovery().V1().EndpointSlices().Informer(), s.cmF.Core().V1().ConfigMaps().Informer()} {
		if err := s.regs.Add(inf, h); err != nil {
			return fmt.Errorf("watch %T: %w", inf, err)
		}
	}
	s.cfg.Clients.Start()
	s.cmF.Start(runCtx.Done())
	s.wg.Add(1)
	go s.loop(runCtx)
	s.log.Info("LoadBalancer speaker running", "private", s.priv.Interface(), "public", s.publicInterface(), "lease", s.cfg.LeaseDuration,
		"renew", s.cfg.RenewDeadline, "retry", s.cfg.RetryPeriod)
	return nil
}

func (s *Speaker) trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Speaker) loop(ctx context.Context) {
	defer s.wg.Done()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-tick.C:
		}
	}
}

// synced reports whether every handler has seen its informer's first list.
func (s *Speaker) synced() bool {
	for _, ok := range s.regs.Synced() {
		if !ok() {
			return false
		}
	}
	return true
}

// reconcile runs for exactly the IPs this node is eligible for.
func (s *Speaker) reconcile(ctx context.Context) {
	if !s.synced() {
		return
	}
	subnets, err := s.subnets()
	if err != nil {
		s.noteErr(err)
		return
	}
	if !s.cleaned {
		s.cleanup(subnets)
	}
	svcs, _ := s.f.Core().V1().Services().Lister().List(labels.Everything())
	eps, _ := s.f.Discovery().V1().EndpointSlices().Lister().List(labels.Everything())
	nodes, _ := s.f.Core().V1().Nodes().Lister().List(labels.Everything())
	var self *corev1.Node
	for _, n := range nodes {
		if n.Name == s.cfg.NodeName {
			self = n
		}
	}
	type bid struct {
		rank int
		ann  *Announcer
	}
	want := map[netip.Addr]bid{}
	for ip, t := range targets(svcs, eps, subnets) {
		if ann := s.announcer(t.Subnet.Kind); ann != nil && eligible(self, t) {
			want[ip] = bid{rank(s.cfg.NodeName, nodes, t), ann}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ip, c := range s.campaigns {
		if _, ok := want[ip]; !ok && c.cancel != nil {
			s.log.Info("no longer eligible for a LoadBalancer IP, leaving its election", "ip", ip)
			c.cancel()
			c.cancel = nil
		}
	}
	for ip, b := range want {
		if _, running := s.campaigns[ip]; running {
			continue // a stopping campaign restarts once done (it kicks the loop)
		}
		cctx, cancel := context.WithCancel(ctx)
		c := &campaign{cancel: cancel, done: make(chan struct{})}
		s.campaigns[ip] = c
		s.wg.Add(1)
		go s.campaign(cctx, ip, b.ann, time.Duration(b.rank)*s.cfg.SpreadDelay, c)
	}
}

// subnets reads the published pools (none when the ConfigMap is absent).
func (s *Speaker) subnets() ([]lbpool.Subnet, error) {
	cm, err := s.cmF.Core().V1().ConfigMaps().Lister().ConfigMaps(lbpool.ConfigMapNamespace).Get(lbpool.ConfigMapName)
	if err != nil {
		return nil, nil //nolint:nilerr // no pools published
	}
	return lbpool.Decode(cm.Data[lbpool.ConfigMapKey])
}

// cleanup removes pool /32s left on the uplink by a previous run that
// ended without withdrawing them (kill -9, power loss).
func (s *Speaker) cleanup(subnets []lbpool.Subnet) {
	var pools []netip.Prefix
	for _, sub := range subnets {
		pools = append(pools, sub.Prefix)
	}
	for _, ann := range s.announcers() {
		stale, err := ann.Held(pools)
		if err != nil {
			s.noteErr(err)
			return
		}
		s.mu.Lock()
		for _, ip := range stale {
			if s.held[ip] != nil {
				continue
			}
			if err := ann.Remove(ip); err != nil {
				s.mu.Unlock()
				s.noteErr(err)
				return
			}
			s.log.Info("removed a stale LoadBalancer IP left by a previous run", "ip", ip, "interface", ann.Interface())
		}
		s.mu.Unlock()
	}
	s.cleaned = true
}

func (s *Speaker) noteErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err.Error() != s.lastErr {
		s.lastErr = err.Error()
		s.log.Warn("LoadBalancer speaker", "err", err)
	}
}

// Stop leaves every election (releasing held Leases so another node
// takes over at once), withdraws the IPs and closes the uplink.
func (s *Speaker) Stop(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	s.mu.Lock()
	var errs []error
	for ip, ann := range s.held {
		if err := ann.Remove(ip); err != nil {
			errs = append(errs, err)
		}
		delete(s.held, ip)
	}
	s.mu.Unlock()
	s.cancel = nil
	rerr := s.regs.RemoveAll()
	if s.cmF != nil {
		s.cmF.Shutdown()
	}
	if len(errs) > 0 {
		return errors.Join(fmt.Errorf("withdraw LoadBalancer IPs: %w", errors.Join(errs...)), rerr, s.closeAnnouncers())
	}
	return errors.Join(rerr, s.closeAnnouncers())
}
