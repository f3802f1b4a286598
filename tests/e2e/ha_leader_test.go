package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/iks-dev/iks/tests/testutil"
)

// controllersLease is the Lease the servers elect the leader of iks's
// own controllers with (server.ControllersLease).
const controllersLease = "iks-controllers"

// currentLog is the node's log since its latest start.
func currentLog(n *testutil.Node) string {
	log := n.Log()
	if i := strings.LastIndex(log, "===== start"); i >= 0 {
		return log[i:]
	}
	return log
}

// logLine reports whether a line of the node's current log holds every
// part.
func logLine(n *testutil.Node, parts ...string) bool {
	for _, l := range strings.Split(currentLog(n), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// waitControllersLeader waits until the iks-controllers Lease names one
// of srvs other than not, which logged that it leads since its latest
// start, and returns it.
func waitControllersLeader(t *testing.T, cs kubernetes.Interface, srvs []*testutil.Node, not *testutil.Node, timeout time.Duration) *testutil.Node {
	t.Helper()
	var leader *testutil.Node
	eventually(t, timeout, "a server holding the "+controllersLease+" Lease", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, controllersLease, metav1.GetOptions{})
		if err != nil {
			return err
		}
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		for _, s := range srvs {
			if s.Name == holder && s != not {
				if !strings.Contains(currentLog(s), "this server leads the iks controllers") {
					return fmt.Errorf("%s holds the Lease but did not log that it leads", holder)
				}
				leader = s
				return nil
			}
		}
		return fmt.Errorf("Lease held by %q", holder)
	})
	return leader
}

// checkOneControllersLeader requires the leader alone, among the running
// servers, to have logged leading since its start, and the others to
// name it.
func checkOneControllersLeader(t *testing.T, leader *testutil.Node, running []*testutil.Node) {
	t.Helper()
	for _, s := range running {
		leads := strings.Contains(currentLog(s), "this server leads the iks controllers")
		if s != leader && leads {
			t.Errorf("%s logged leading the iks controllers while %s holds the Lease", s.Name, leader.Name)
		}
	}
	eventually(t, 30*time.Second, "the other servers naming the leader", func() error {
		for _, s := range running {
			if s != leader && !strings.Contains(currentLog(s), "leader="+leader.Name) {
				return fmt.Errorf("%s did not log that %s leads", s.Name, leader.Name)
			}
		}
		return nil
	})
}

// checkLBHandledBy creates a LoadBalancer Service (there are no portable
// subnets: the LoadBalancer controller leaves it pending with a Warning
// event) and requires exactly the leader's controller to handle it.
func checkLBHandledBy(t *testing.T, cs kubernetes.Interface, name string, leader *testutil.Node, running []*testutil.Node) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := cs.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	handled := func(n *testutil.Node) bool {
		return logLine(n, "LoadBalancer service left pending", "service=default/"+name+" ")
	}
	eventually(t, 30*time.Second, "the "+name+" Service's NoPortableSubnet event", func() error {
		evs, err := cs.CoreV1().Events("default").List(context.Background(),
			metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=NoPortableSubnet"})
		if err != nil {
			return err
		}
		if len(evs.Items) == 0 {
			return fmt.Errorf("no event yet")
		}
		if !handled(leader) {
			return fmt.Errorf("the leader %s did not log handling it", leader.Name)
		}
		return nil
	})
	for _, s := range running {
		if s != leader && handled(s) {
			t.Errorf("%s, not the leader, handled the LoadBalancer Service %s too", s.Name, name)
		}
	}
}

// checkPodLogsThrough requires `kubectl logs` of pod through the apiserver
// of cs: the apiserver reaches the pod's kubelet through its own tunnel
// end, to which the pod's node must be connected.
func checkPodLogsThrough(t *testing.T, cs kubernetes.Interface, via string, pod corev1.Pod) {
	t.Helper()
	eventually(t, 30*time.Second, "logs of "+pod.Name+" on "+pod.Spec.NodeName+" through "+via, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := cs.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return err
		}
		if !strings.Contains(string(out), "CoreDNS") {
			return fmt.Errorf("logs without CoreDNS's banner: %q", out)
		}
		return nil
	})
}
