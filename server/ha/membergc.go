package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/server/etcd"
)

// ControlPlaneLabel marks a server's Node (server/noderole.go sets it).
const ControlPlaneLabel = "node-role.kubernetes.io/control-plane"

// MemberGC removes the etcd member of a server whose Node is deleted
// (kubectl delete node), as `iks server remove` does: only for a Node
// labelled as a server, with an etcd member of its name that is not this
// server's own member nor the last voting member. It runs on the leading
// server only. A Node deleted while no server leads is not seen: remove
// its member with `iks server remove NODE`.
type MemberGC struct {
	Clients *kubeclients.Clients
	Etcd    etcd.ClientFiles
	Log     *slog.Logger

	regs   kubeclients.Registrations
	queue  workqueue.TypedRateLimitingInterface[string]
	cli    *clientv3.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// Name implements component.Component.
func (g *MemberGC) Name() string { return "etcd-member-gc" }

// Init implements component.Component.
func (g *MemberGC) Init(context.Context) error { return nil }

// Start watches Node deletions.
func (g *MemberGC) Start(ctx context.Context) error {
	if _, err := g.Clients.Wait(ctx); err != nil {
		return err
	}
	cli, err := etcd.NewClient(g.Etcd)
	if err != nil {
		return err
	}
	g.cli = cli
	g.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "etcd-member-gc"})
	inf := g.Clients.Informers().Core().V1().Nodes().Informer()
	if err := g.regs.Add(inf, cache.ResourceEventHandlerFuncs{DeleteFunc: g.nodeDeleted}); err != nil {
		return errors.Join(fmt.Errorf("watch nodes: %w", err), g.Stop(ctx))
	}
	g.Clients.Start()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.cancel, g.done = cancel, make(chan struct{})
	go func() {
		defer close(g.done)
		for g.work(runCtx) {
		}
	}()
	return nil
}

// Stop implements component.Component.
func (g *MemberGC) Stop(context.Context) error {
	if g.cancel != nil {
		g.cancel()
		g.queue.ShutDown()
		<-g.done
		g.cancel = nil
	}
	err := g.regs.RemoveAll()
	if g.cli != nil {
		err = errors.Join(err, g.cli.Close())
		g.cli = nil
	}
	return err
}

func (g *MemberGC) nodeDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	if _, server := n.Labels[ControlPlaneLabel]; !server {
		return
	}
	g.queue.Add(n.Name)
}

func (g *MemberGC) work(ctx context.Context) bool {
	name, quit := g.queue.Get()
	if quit {
		return false
	}
	defer g.queue.Done(name)
	opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := g.remove(opCtx, name); err != nil {
		g.Log.Warn("etcd member of the deleted server Node not removed yet; retrying", "node", name, "err", err)
		g.queue.AddRateLimited(name)
		return true
	}
	g.queue.Forget(name)
	return true
}

// remove removes the member named name when Removable allows it.
func (g *MemberGC) remove(ctx context.Context, name string) error {
	list, err := g.cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("list etcd members: %w", err)
	}
	id, why := Removable(list.Members, list.Header.MemberId, name)
	if id == 0 {
		if why != "" {
			g.Log.Warn("server Node deleted; its etcd member stays", "node", name, "reason", why)
		}
		return nil
	}
	if _, err := g.cli.MemberRemove(ctx, id); err != nil {
		return fmt.Errorf("remove etcd member %s: %w", name, err)
	}
	n := len(list.Members) - 1
	g.Log.Info("server Node deleted: removed its etcd member", "node", name, "members", n)
	if n > 1 && n%2 == 0 {
		g.Log.Warn(fmt.Sprintf("%d servers tolerate no more failures than %d: run an odd number of servers", n, n-1))
	}
	return nil
}

// Removable returns the ID of the member named name if it may be removed
// by the member self, else 0 and why not ("" when there is no such
// member: the Node was not a server with an etcd member).
func Removable(members []*etcdserverpb.Member, self uint64, name string) (uint64, string) {
	var target *etcdserverpb.Member
	voters := 0
	for _, m := range members {
		if !m.IsLearner {
			voters++
		}
		if m.Name == name {
			target = m
		}
	}
	switch {
	case target == nil:
		return 0, ""
	case target.ID == self:
		return 0, "it is the leading server's own member: remove it with `iks server remove " + name + "` on another server"
	case !target.IsLearner && voters <= 1:
		return 0, "it is the last voting member: removing it would lose the cluster's data"
	}
	return target.ID, ""
}
