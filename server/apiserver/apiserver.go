// Package apiserver runs kube-apiserver in-process, configured for iks:
// TLS everywhere, RBAC + Node authorizers, NodeRestriction and iks's own
// Calico admission plugin (calicoadmission.go), anonymous auth
// off, etcd over mutual TLS on loopback.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/rest"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/iks-dev/iks/internal/component"
	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/internal/kubeutil"
)

// Config holds what the apiserver needs; file paths come from the PKI.
type Config struct {
	BindAddress       netip.Addr
	AdvertiseAddress  netip.Addr
	Port              int
	ServiceCIDR       netip.Prefix
	ClusterDomain     string
	EtcdURL           string
	EtcdCA            string
	EtcdCert          string
	EtcdKey           string
	CA                string // client CA and kubelet serving CA
	ServingCert       string
	ServingKey        string
	KubeletClientCert string
	KubeletClientKey  string
	FrontProxyCA      string
	FrontProxyCert    string
	FrontProxyKey     string
	SAPublicKey       string
	SASigningKey      string
	CertDir           string
	AdminKubeconfig   string // used to probe /readyz
	ExtraArgs         []string
	ArgsDir           string // where its command line is recorded (component.WriteArgs)
	// Restart: this binary ran on this data dir before, so the objects
	// of the bootstrap hooks (RBAC roles, system priority classes) are in
	// etcd already; Ready does not wait for those hooks to re-check them
	// (about a second): what starts after the apiserver finds them.
	Restart bool
}

// bootstrapHooks are the /readyz checks a Restart does not wait for.
var bootstrapHooks = []string{"poststarthook/rbac/bootstrap-roles", "poststarthook/scheduling/bootstrap-system-priority-classes"}

// APIServer is the component.
type APIServer struct {
	cfg    Config
	log    *slog.Logger
	runner component.Runner
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *APIServer {
	return &APIServer{cfg: cfg, log: log.With("component", "apiserver")}
}

// Name implements component.Component.
func (a *APIServer) Name() string { return "kube-apiserver" }

// Init creates the apiserver's scratch cert dir.
func (a *APIServer) Init(context.Context) error {
	return os.MkdirAll(a.cfg.CertDir, 0o700)
}

// Args returns the kube-apiserver flags.
func (a *APIServer) Args() []string {
	c := a.cfg
	args := []string{
		"--bind-address=" + c.BindAddress.String(),
		"--advertise-address=" + c.AdvertiseAddress.String(),
		"--secure-port=" + strconv.Itoa(c.Port),
		"--etcd-servers=" + c.EtcdURL,
		"--etcd-cafile=" + c.EtcdCA,
		"--etcd-certfile=" + c.EtcdCert,
		"--etcd-keyfile=" + c.EtcdKey,
		"--cert-dir=" + c.CertDir,
		"--client-ca-file=" + c.CA,
		"--tls-cert-file=" + c.ServingCert,
		"--tls-private-key-file=" + c.ServingKey,
		"--tls-min-version=VersionTLS12",
		"--tls-cipher-suites=" + strings.Join(config.TLSCipherSuites, ","),
		"--kubelet-client-certificate=" + c.KubeletClientCert,
		"--kubelet-client-key=" + c.KubeletClientKey,
		"--kubelet-certificate-authority=" + c.CA,
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--requestheader-client-ca-file=" + c.FrontProxyCA,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--proxy-client-cert-file=" + c.FrontProxyCert,
		"--proxy-client-key-file=" + c.FrontProxyKey,
		"--service-account-key-file=" + c.SAPublicKey,
		"--service-account-signing-key-file=" + c.SASigningKey,
		"--service-account-issuer=https://kubernetes.default.svc." + c.ClusterDomain,
		"--api-audiences=https://kubernetes.default.svc." + c.ClusterDomain,
		"--service-cluster-ip-range=" + c.ServiceCIDR.String(),
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--anonymous-auth=false",
		"--enable-bootstrap-token-auth=true",
		"--allow-privileged=true",
		"--profiling=false",
		"--endpoint-reconciler-type=lease",
		"--storage-backend=etcd3",
	}
	return append(args, c.ExtraArgs...)
}

// Start parses the flags as kube-apiserver's command would and runs it.
// The upstream cobra command installs a process-wide signal handler at
// construction, which may happen only once per process, so iks drives the
// options and Run directly.
func (a *APIServer) Start(ctx context.Context) error {
	s := options.NewServerRunOptions()
	registerAdmission(s.Admission)
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	nfs := s.Flags()
	for _, f := range nfs.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(a.Args()); err != nil {
		return fmt.Errorf("kube-apiserver flags: %w", err)
	}
	if err := component.WriteArgs(a.cfg.ArgsDir, a.Name(), a.Args()); err != nil {
		return err
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("kube-apiserver feature gates: %w", err)
	}
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	completed, err := s.Complete(ctx)
	if err != nil {
		return fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	a.runner.Go(ctx, func(ctx context.Context) error { return app.Run(ctx, completed) })
	return nil
}

// Ready polls /readyz with the admin identity.
func (a *APIServer) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cs, err := kubeutil.Clientset(a.cfg.AdminKubeconfig)
	if err != nil {
		return err
	}
	var last, waiting string
	t0 := time.Now()
	for {
		if err := a.runner.Exited(); err != nil {
			return fmt.Errorf("kube-apiserver exited: %w", err)
		}
		req := cs.Discovery().RESTClient().Get().AbsPath("/readyz").Timeout(2 * time.Second)
		if a.cfg.Restart {
			for _, h := range bootstrapHooks {
				req = req.Param("exclude", h)
			}
		}
		body, err := req.DoRaw(ctx)
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			return nil
		}
		if err != nil {
			last = err.Error()
		}
		// The start phases (make bench) show what the wait is for.
		if w := failingChecks(body); w != waiting {
			waiting = w
			a.log.Debug("kube-apiserver not ready yet", "waiting-for", w, "since-start", time.Since(t0).Round(time.Millisecond).String())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver /readyz not ok (last: %s): %w", last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// failingChecks lists the /readyz checks a failed answer names ("[-]name failed").
func failingChecks(body []byte) string {
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(l), "[-]"); ok {
			name, _, _ = strings.Cut(name, " ")
			out = append(out, name)
		}
	}
	return strings.Join(out, ",")
}

// Healthy reports an exited apiserver.
func (a *APIServer) Healthy() error { return a.runner.Exited() }

// stopWait bounds how long Stop waits for the apiserver's graceful
// shutdown: it drains long-running watches for much longer, and once the
// components using it are stopped nothing is lost by moving on to etcd.
const stopWait = 5 * time.Second

// Stop shuts the apiserver down.
func (a *APIServer) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, stopWait)
	defer cancel()
	err := a.runner.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		a.log.Debug("kube-apiserver still draining; it ends with the process")
		return nil
	}
	return err
}
