package csrapprove

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/iks-dev/iks/internal/kubeclients"
)

// Config of the approver.
type Config struct {
	// Clients are the process's shared clients, with the right to
	// approve kubelet-serving CSRs (the admin kubeconfig).
	Clients *kubeclients.Clients
	// Signer, when set, signs the joining kubelets' client certificates
	// it approves (see client.go).
	Signer *Signer
}

// Approver is the component: an informer-driven controller. Start it after
// kube-apiserver.
type Approver struct {
	cfg Config
	log *slog.Logger

	cs     kubernetes.Interface
	csrs   certlisters.CertificateSigningRequestLister
	nodes  corelisters.NodeLister
	queue  workqueue.TypedRateLimitingInterface[string]
	regs   kubeclients.Registrations
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	reported map[types.UID]string // last pending reason logged per CSR
}

// New returns the component.
func New(cfg Config, log *slog.Logger) *Approver {
	return &Approver{cfg: cfg, log: log.With("component", "csr-approver"), reported: map[types.UID]string{}}
}

// Name implements component.Component.
func (a *Approver) Name() string { return "csr-approver" }

// Init checks the configuration.
func (a *Approver) Init(context.Context) error {
	if a.cfg.Clients == nil {
		return errors.New("csr-approver: no API clients configured: set Config.Clients")
	}
	return nil
}

// Start runs the informers, waits for their caches (bounded by ctx) and
// starts the worker. CSRs are re-checked when they change and when the
// node they claim to come from is added or changes its addresses.
func (a *Approver) Start(ctx context.Context) error {
	cs, err := a.cfg.Clients.Wait(ctx)
	if err != nil {
		return err
	}
	a.cs = cs
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "csr-approver"})
	f := a.cfg.Clients.Informers()
	csrInf := f.Certificates().V1().CertificateSigningRequests()
	nodeInf := f.Core().V1().Nodes()
	a.csrs, a.nodes = csrInf.Lister(), nodeInf.Lister()
	if err := a.regs.Add(csrInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    a.enqueueCSR,
		UpdateFunc: func(_, obj any) { a.enqueueCSR(obj) },
		DeleteFunc: a.forgetCSR,
	}); err != nil {
		return fmt.Errorf("csr-approver: CSR informer: %w", err)
	}
	if err := a.regs.Add(nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    a.nodeChanged,
		UpdateFunc: a.nodeUpdated,
		DeleteFunc: a.nodeDeleted,
	}); err != nil {
		return fmt.Errorf("csr-approver: node informer: %w", err)
	}
	a.cfg.Clients.Start()
	if !cache.WaitForCacheSync(ctx.Done(), a.regs.Synced()...) {
		return errors.Join(fmt.Errorf("csr-approver: CSR and Node caches did not sync: %w", context.Cause(ctx)), a.Stop(context.WithoutCancel(ctx)))
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for a.processNext(runCtx) {
		}
	}()
	return nil
}

// Stop ends the worker and the informers and waits for them.
func (a *Approver) Stop(context.Context) error {
	if a.cancel == nil {
		return nil
	}
	a.cancel()
	a.queue.ShutDown()
	a.wg.Wait()
	err := a.regs.RemoveAll()
	a.cancel = nil
	return err
}

func (a *Approver) enqueueCSR(obj any) {
	if csr, ok := obj.(*certv1.CertificateSigningRequest); ok && (isPendingServing(csr) || isPendingClaim(csr) || isPendingJoinClient(csr)) {
		a.queue.Add(csr.Name)
	}
}

func (a *Approver) forgetCSR(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if csr, ok := obj.(*certv1.CertificateSigningRequest); ok {
		a.mu.Lock()
		delete(a.reported, csr.UID)
		a.mu.Unlock()
	}
}

// nodeUpdated re-checks a node's CSRs when its addresses or annotations
// change (status heartbeats alone do not).
func (a *Approver) nodeUpdated(old, obj any) {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := obj.(*corev1.Node)
	if ok1 && ok2 && slices.Equal(o.Status.Addresses, n.Status.Addresses) &&
		o.Annotations[InternalIPAnnotation] == n.Annotations[InternalIPAnnotation] &&
		o.Annotations[ProvidedNodeIPAnnotation] == n.Annotations[ProvidedNodeIPAnnotation] {
		return
	}
	a.nodeChanged(obj)
}

// nodeChanged enqueues the pending serving CSRs of a node.
func (a *Approver) nodeChanged(obj any) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	all, err := a.csrs.List(labels.Everything())
	if err != nil {
		return
	}
	for _, csr := range all {
		if isPendingServing(csr) && nodeOf(csr.Spec.Username) == n.Name {
			a.queue.Add(csr.Name)
		}
	}
}

// processNext handles one queued CSR; false once the queue is shut down.
func (a *Approver) processNext(ctx context.Context) bool {
	name, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(name)
	var err error
	if node, ok := strings.CutPrefix(name, nodeKeyPrefix); ok {
		err = a.releaseName(ctx, node)
	} else {
		err = a.sync(ctx, name)
	}
	if err != nil {
		a.log.Warn("deciding on a CSR or releasing a node name failed; retrying", "key", name, "err", err)
		a.queue.AddRateLimited(name)
		return true
	}
	a.queue.Forget(name)
	return true
}

// sync decides on one CSR and approves it or logs why it stays pending.
func (a *Approver) sync(ctx context.Context, name string) error {
	csr, err := a.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if isPendingClaim(csr) {
		return a.syncClaim(ctx, csr)
	}
	if isPendingJoinClient(csr) {
		return a.syncJoinClient(ctx, csr)
	}
	if !isPendingServing(csr) {
		return nil
	}
	var node *corev1.Node
	if n := nodeOf(csr.Spec.Username); n != "" {
		node, err = a.nodes.Get(n)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	d := decide(csr, node)
	if !d.approve {
		a.reportPending(csr, d.reason)
		return nil
	}
	upd := csr.DeepCopy()
	upd.Status.Conditions = append(upd.Status.Conditions, certv1.CertificateSigningRequestCondition{
		Type: certv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "IKSKubeletServingAutoApproved",
		Message:        "iks approved the kubelet serving certificate of node " + d.node,
		LastUpdateTime: metav1.Now(),
	})
	if _, err := a.cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, name, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("approve CSR %s: %w", name, err)
	}
	a.log.Info("approved kubelet serving certificate request", "csr", name, "node", d.node)
	return nil
}

// reportPending logs why a CSR stays pending, once per distinct reason.
func (a *Approver) reportPending(csr *certv1.CertificateSigningRequest, reason string) {
	a.mu.Lock()
	same := a.reported[csr.UID] == reason
	a.reported[csr.UID] = reason
	a.mu.Unlock()
	if same {
		return
	}
	a.log.Warn("kubelet serving certificate request left pending: "+reason+
		"; approve it by hand with `iks kubectl certificate approve "+csr.Name+"` if it is legitimate",
		"csr", csr.Name, "requester", csr.Spec.Username)
}
