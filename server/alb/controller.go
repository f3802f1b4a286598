package alb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/iks-dev/iks/internal/kubeutil"
	"github.com/iks-dev/iks/internal/lbpool"
)

// resync repairs objects deleted or changed by hand.
const resync = 5 * time.Minute

// Config of the ALB controller.
type Config struct {
	Kubeconfig string // admin
	Subnets    []lbpool.Subnet
	// Image is the embedded ALB image (iks.local/alb:KEY).
	Image string
	// CACert and CAKey sign the default certificate.
	CACert, CAKey string
	// Disabled (--disable alb): delete what an earlier run created.
	Disabled bool
	// Client replaces Kubeconfig in tests.
	Client kubernetes.Interface
}

// Controller keeps the ALB Deployments and Services.
type Controller struct {
	cfg    Config
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns the controller component.
func New(cfg Config, log *slog.Logger) *Controller {
	return &Controller{cfg: cfg, log: log.With("component", "alb")}
}

// Name implements component.Component.
func (c *Controller) Name() string { return "alb" }

// Init implements component.Component.
func (c *Controller) Init(context.Context) error {
	if !c.cfg.Disabled && c.cfg.Image == "" {
		return fmt.Errorf("alb: no ALB image: build iks with `make` (it carries iks.local/alb), or start with --disable alb")
	}
	return nil
}

// Start runs the reconcile loop in the background.
func (c *Controller) Start(ctx context.Context) error {
	cs := c.cfg.Client
	if cs == nil {
		var err error
		if cs, err = kubeutil.Clientset(c.cfg.Kubeconfig); err != nil {
			return err
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if c.cfg.Disabled {
			c.retry(runCtx, func(ctx context.Context) error { return c.removeAll(ctx, cs) })
			return
		}
		c.run(runCtx, cs)
	}()
	return nil
}

// Stop implements component.Component.
func (c *Controller) Stop(context.Context) error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	return nil
}

func (c *Controller) retry(ctx context.Context, f func(context.Context) error) {
	for {
		err := f(ctx)
		if err == nil {
			return
		}
		c.log.Warn("ALB reconcile failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (c *Controller) run(ctx context.Context, cs kubernetes.Interface) {
	var albs []ALB
	c.retry(ctx, func(ctx context.Context) error {
		ns, err := cs.CoreV1().Namespaces().Get(ctx, Namespace, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read namespace %s: %w", Namespace, err)
		}
		albs = Plan(ClusterID(string(ns.UID)), c.cfg.Subnets)
		return c.ensureShared(ctx, cs, albs)
	})
	if ctx.Err() != nil {
		return
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, resync, informers.WithNamespace(Namespace))
	nf := informers.NewSharedInformerFactory(cs, resync)
	cms, svcs, deps := f.Core().V1().ConfigMaps(), f.Core().V1().Services(), f.Apps().V1().Deployments()
	nodes := nf.Core().V1().Nodes()
	trigger := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke}
	for _, inf := range []cache.SharedIndexInformer{cms.Informer(), svcs.Informer(), deps.Informer(), nodes.Informer()} {
		_, _ = inf.AddEventHandler(h)
	}
	f.Start(ctx.Done())
	nf.Start(ctx.Done())
	defer f.Shutdown()
	defer nf.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), cms.Informer().HasSynced, svcs.Informer().HasSynced, deps.Informer().HasSynced, nodes.Informer().HasSynced) {
		return
	}
	// retryTimer: one pending retry after failures, not one per failure.
	var retryTimer *time.Timer
	defer func() {
		if retryTimer != nil {
			retryTimer.Stop()
		}
	}()
	for {
		failed := false
		if retryTimer != nil {
			retryTimer.Stop()
			retryTimer = nil
		}
		data := func(name string) map[string]string {
			if cm, err := cms.Lister().ConfigMaps(Namespace).Get(name); err == nil {
				return cm.Data
			}
			return nil
		}
		state := data(StateConfigMap)
		deploy := data(DeployConfig)
		streams := streamPorts(data(TCPServices), data(UDPServices))
		nl, _ := nodes.Lister().List(labels.Everything())
		attached := map[string][]string{}
		for _, a := range albs {
			if sub, ok := lbpool.Find(c.cfg.Subnets, a.IP); ok && a.IP.IsValid() {
				attached[a.Name] = lbpool.Place([]lbpool.Subnet{sub}, nl)[0].Nodes
			}
		}
		if err := syncNodeLabels(ctx, cs, nl, albs, attached); err != nil {
			c.log.Warn("ALB node labels not set; retrying", "err", err)
			failed = true
		}
		now := time.Now()
		for _, a := range albs {
			replicas := wantReplicas(nl, a.IP.IsValid(), attached[a.Name], now)
			ds, err := parseDeploy(deploy, a.Name)
			if err != nil {
				c.log.Warn("ALB deploy settings ignored", "alb", a.Name, "err", err)
			}
			if err := c.reconcile(ctx, cs, a, IsEnabled(a, state), replicas, streams, ds); err != nil {
				c.log.Warn("ALB reconcile failed; retrying", "alb", a.Name, "err", err)
				failed = true
			}
		}
		if failed && retryTimer == nil {
			retryTimer = time.AfterFunc(2*time.Second, func() { poke(nil) })
		}
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		}
	}
}

// reconcile applies one ALB: Deployment always (0 replicas when
// disabled), Service only when enabled.
func (c *Controller) reconcile(ctx context.Context, cs kubernetes.Interface, a ALB, enabled bool, replicas int32, streams []corev1.ServicePort, ds deploySettings) error {
	if !enabled {
		replicas = 0
	}
	var errs []error
	if _, err := cs.AppsV1().Deployments(Namespace).Apply(ctx, deployment(a, c.cfg.Image, replicas, ds), applyOpts); err != nil {
		// The Service is still kept up to date below.
		errs = append(errs, fmt.Errorf("apply deployment %s/%s: %w", Namespace, a.Name, err))
	}
	if !enabled {
		err := cs.CoreV1().Services(Namespace).Delete(ctx, a.Name, metav1.DeleteOptions{})
		if err == nil {
			c.log.Info("ALB disabled: service deleted, IP freed", "alb", a.Name, "ip", a.IP)
		}
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete service %s/%s: %w", Namespace, a.Name, err))
		}
		return errors.Join(errs...)
	}
	if _, err := cs.CoreV1().Services(Namespace).Apply(ctx, service(a, streams), applyOpts); err != nil {
		errs = append(errs, fmt.Errorf("apply service %s/%s: %w", Namespace, a.Name, err))
	}
	return errors.Join(errs...)
}

// ensureShared creates once the state ConfigMap (each ALB's initial
// state and IP), the stream ConfigMaps and the default certificate.
func (c *Controller) ensureShared(ctx context.Context, cs kubernetes.Interface, albs []ALB) error {
	state := map[string]string{}
	var ips []net.IP
	for _, a := range albs {
		st := Disabled
		if a.DefaultEnabled {
			st = Enabled
		}
		state[a.Name] = st
		if a.IP.IsValid() {
			state[a.Name+".ip"] = a.IP.String()
			ips = append(ips, net.IP(a.IP.AsSlice()))
		}
	}
	if err := c.createCM(ctx, cs, StateConfigMap, state); err != nil {
		return err
	}
	for _, n := range []string{TCPServices, UDPServices, "ibm-k8s-controller-config"} {
		if err := c.createCM(ctx, cs, n, nil); err != nil {
			return err
		}
	}
	if _, err := cs.CoreV1().Secrets(Namespace).Get(ctx, DefaultCertSecret, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read secret %s/%s: %w", Namespace, DefaultCertSecret, err)
	}
	crt, key, err := newDefaultCert(c.cfg.CACert, c.cfg.CAKey, ips, time.Now())
	if err != nil {
		return err
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: DefaultCertSecret, Namespace: Namespace, Labels: map[string]string{LabelApp: AppName}},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}
	if _, err := cs.CoreV1().Secrets(Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create secret %s/%s: %w", Namespace, DefaultCertSecret, err)
	}
	c.log.Info("ALB default certificate created, signed by the cluster CA", "secret", Namespace+"/"+DefaultCertSecret)
	return nil
}

// createCM creates a ConfigMap that does not exist; an existing one
// (edited by the user or the CLI) is left as it is, except that ALBs it
// does not name yet are added.
func (c *Controller) createCM(ctx context.Context, cs kubernetes.Interface, name string, data map[string]string) error {
	cm, err := cs.CoreV1().ConfigMaps(Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace, Labels: map[string]string{LabelApp: AppName}}, Data: data}
		if _, err := cs.CoreV1().ConfigMaps(Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create configmap %s/%s: %w", Namespace, name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read configmap %s/%s: %w", Namespace, name, err)
	}
	missing := false
	for k := range data {
		if _, ok := cm.Data[k]; !ok {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	upd := cm.DeepCopy()
	if upd.Data == nil {
		upd.Data = map[string]string{}
	}
	for k, v := range data {
		if _, ok := upd.Data[k]; !ok {
			upd.Data[k] = v
		}
	}
	if _, err := cs.CoreV1().ConfigMaps(Namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update configmap %s/%s: %w", Namespace, name, err)
	}
	return nil
}

// removeAll deletes the ALB Deployments, Services and the default
// certificate an earlier run created (--disable alb).
func (c *Controller) removeAll(ctx context.Context, cs kubernetes.Interface) error {
	sel := metav1.ListOptions{LabelSelector: LabelApp + "=" + AppName}
	del := metav1.DeleteOptions{}
	if err := cs.AppsV1().Deployments(Namespace).DeleteCollection(ctx, del, sel); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete ALB deployments: %w", err)
	}
	svcs, err := cs.CoreV1().Services(Namespace).List(ctx, sel)
	if err != nil {
		return fmt.Errorf("list ALB services: %w", err)
	}
	for _, s := range svcs.Items {
		if err := cs.CoreV1().Services(Namespace).Delete(ctx, s.Name, del); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete ALB service %s: %w", s.Name, err)
		}
	}
	if err := cs.CoreV1().Secrets(Namespace).Delete(ctx, DefaultCertSecret, del); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete secret %s: %w", DefaultCertSecret, err)
	}
	if err := removeNodeLabels(ctx, cs); err != nil {
		return err
	}
	c.log.Info("ALB disabled (--disable alb): its deployments, services and node labels are removed")
	return nil
}
