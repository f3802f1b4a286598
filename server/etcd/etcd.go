// Package etcd runs the embedded etcd member that stores the cluster
// state: data under the data dir, clients and peers on loopback over TLS
// with client-certificate authentication.
package etcd

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"

	"github.com/iks-dev/iks/internal/component"
)

// Config of the embedded member.
type Config struct {
	DataDir    string
	CACert     string // etcd CA: verifies clients and peers
	ServerCert string
	ServerKey  string
	PeerCert   string
	PeerKey    string
	Debug      bool
	// ForceNewCluster drops every other member from the membership
	// (--cluster-reset): the member starts as a cluster of one.
	ForceNewCluster bool
	// HA, when set, makes the member one of several servers'.
	HA *HA
	// ArgsDir is where the member's settings are recorded as an etcd
	// command line (component.WriteArgs).
	ArgsDir string
}

// ClientURL is where the apiserver reaches etcd.
const ClientURL = "https://127.0.0.1:2379"

// PeerURL is where the member talks to its peers.
const PeerURL = "https://127.0.0.1:2380"

// MemberName is the member's name in the etcd cluster.
const MemberName = "iks"

// Etcd is the component.
type Etcd struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	etcd *embed.Etcd
}

// New returns the etcd component.
func New(cfg Config, log *slog.Logger) *Etcd {
	return &Etcd{cfg: cfg, log: log.With("component", "etcd")}
}

// Name implements component.Component.
func (e *Etcd) Name() string { return "etcd" }

// Init creates the data dir.
func (e *Etcd) Init(context.Context) error {
	if err := os.MkdirAll(e.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create etcd data dir: %w", err)
	}
	return os.Chmod(e.cfg.DataDir, 0o700)
}

// Start starts the member; Ready waits for it to serve.
func (e *Etcd) Start(ctx context.Context) error {
	c := embed.NewConfig()
	c.Name = MemberName
	c.Dir = e.cfg.DataDir
	client, _ := url.Parse(ClientURL)
	peer, _ := url.Parse(PeerURL)
	c.ListenClientUrls = []url.URL{*client}
	c.AdvertiseClientUrls = []url.URL{*client}
	c.ListenPeerUrls = []url.URL{*peer}
	c.AdvertisePeerUrls = []url.URL{*peer}
	c.InitialCluster = c.Name + "=" + PeerURL
	c.ForceNewCluster = e.cfg.ForceNewCluster
	c.ClientTLSInfo.CertFile = e.cfg.ServerCert
	c.ClientTLSInfo.KeyFile = e.cfg.ServerKey
	c.ClientTLSInfo.TrustedCAFile = e.cfg.CACert
	c.ClientTLSInfo.ClientCertAuth = true
	c.PeerTLSInfo.CertFile = e.cfg.PeerCert
	c.PeerTLSInfo.KeyFile = e.cfg.PeerKey
	c.PeerTLSInfo.TrustedCAFile = e.cfg.CACert
	c.PeerTLSInfo.ClientCertAuth = true
	// Small single-member defaults, as k3s: compact history hourly-ish.
	c.AutoCompactionMode = "periodic"
	c.AutoCompactionRetention = "5m"
	c.QuotaBackendBytes = 2 << 30
	c.SnapshotCount = 10000
	c.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	c.WarningApplyDuration = embed.DefaultWarningApplyDuration
	min := zapcore.WarnLevel
	if e.cfg.Debug {
		min = zapcore.InfoLevel
	}
	c.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLogger(e.log, min))
	if e.cfg.HA != nil {
		if err := e.haConfig(ctx, c); err != nil {
			return err
		}
	}
	if err := component.WriteArgs(e.cfg.ArgsDir, e.Name(), flags(c)); err != nil {
		return err
	}
	et, err := embed.StartEtcd(c)
	if err != nil {
		return fmt.Errorf("start etcd in %s: %w", e.cfg.DataDir, err)
	}
	e.mu.Lock()
	e.etcd = et
	e.mu.Unlock()
	return nil
}

// readyTimeout bounds how long Ready waits for the member.
const readyTimeout = 2 * time.Minute

// readyHint names where to look when the member does not come up.
func (e *Etcd) readyHint() string {
	return fmt.Sprintf("the log lines with component=etcd say why (iks server --debug shows etcd's info log too); "+
		"check that no other process holds ports 2379/2380 (ss -ltnp 'sport = :2379') and that %s belongs to this cluster and its disk is not full%s", e.cfg.DataDir, e.quorumHint())
}

// Ready waits until the member serves clients.
func (e *Etcd) Ready(ctx context.Context) error {
	e.mu.Lock()
	et := e.etcd
	e.mu.Unlock()
	select {
	case <-et.Server.ReadyNotify():
		return e.haReady(ctx)
	case err := <-et.Err():
		return fmt.Errorf("etcd failed: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("waiting for etcd to serve clients on %s: %w; %s", ClientURL, ctx.Err(), e.readyHint())
	case <-time.After(readyTimeout):
		return fmt.Errorf("etcd did not serve clients on %s within %s; %s", ClientURL, readyTimeout, e.readyHint())
	}
}

// haReady promotes a member that just joined (a learner serves no
// reads to the apiserver) and gives a first HA member its node IP.
func (e *Etcd) haReady(ctx context.Context) error {
	if e.cfg.HA == nil {
		return nil
	}
	var err error
	if len(e.cfg.HA.Join) > 0 {
		pctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		err = e.promote(pctx)
	} else {
		err = e.ensurePeerURL(ctx)
	}
	if err == nil {
		e.warnEven()
	}
	return err
}

// Healthy reports a failed member.
func (e *Etcd) Healthy() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.etcd == nil {
		return fmt.Errorf("etcd is not running (stopped, or its start failed: see the etcd error logged before); restart iks server")
	}
	select {
	case err := <-e.etcd.Err():
		return fmt.Errorf("etcd failed: %w", err)
	default:
		return nil
	}
}

// Stop closes the member, flushing its WAL.
func (e *Etcd) Stop(context.Context) error {
	e.mu.Lock()
	et := e.etcd
	e.etcd = nil
	e.mu.Unlock()
	if et != nil {
		et.Close()
	}
	return nil
}
