package csrapprove

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/iks-dev/iks/internal/kubeclients"
	"github.com/iks-dev/iks/internal/testlog"
)

// waitApproved watches a CSR until it is approved.
func waitApproved(t *testing.T, ctx context.Context, cs *fake.Clientset, name string) {
	t.Helper()
	w, err := cs.CertificatesV1().CertificateSigningRequests().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if c, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{}); err == nil && approved(c) {
		return
	}
	for {
		select {
		case ev := <-w.ResultChan():
			if c, ok := ev.Object.(*certv1.CertificateSigningRequest); ok && c.Name == name && approved(c) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("CSR %s was not approved", name)
		}
	}
}

// startApprover starts the controller on a fake clientset and waits until
// both informers' watches are established, so no event can be missed.
func startApprover(t *testing.T, ctx context.Context, cs *fake.Clientset, sink *testlog.Sink) {
	t.Helper()
	watching := make(chan string, 2)
	cs.PrependWatchReactor("*", func(action clienttesting.Action) (bool, watch.Interface, error) {
		w, err := cs.Tracker().Watch(action.GetResource(), action.GetNamespace())
		if err != nil {
			return false, nil, err
		}
		select { // only the informers' first watches matter
		case watching <- action.GetResource().Resource:
		default:
		}
		return true, w, nil
	})
	a := New(Config{Clients: kubeclients.ForTest(cs, nil)}, slog.New(sink))
	if err := a.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		if err := a.Stop(context.Background()); err != nil { // idempotent
			t.Error(err)
		}
	})
	for range 2 {
		select {
		case <-watching:
		case <-ctx.Done():
			t.Fatal("informers did not start watching")
		}
	}
}

func TestApproverApprovesValidAndLeavesOthersPending(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// node-1 exists before the controller starts; its first CSR too.
	cs := fake.NewClientset(newNode("node-1", nil, "10.0.0.7"), newCSR(t, csrSpec{name: "early"}))
	sink := testlog.New()
	startApprover(t, ctx, cs, sink)
	waitApproved(t, ctx, cs, "early")

	// A CSR created later, through the watch.
	if _, err := cs.CertificatesV1().CertificateSigningRequests().Create(ctx, newCSR(t, csrSpec{name: "late"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApproved(t, ctx, cs, "late")

	// A CSR for an IP node-1 does not have stays pending, with a log line.
	bad := newCSR(t, csrSpec{name: "foreign-ip", ips: []string{"10.9.9.9"}})
	if _, err := cs.CertificatesV1().CertificateSigningRequests().Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	msg := sink.Wait(t, ctx, "left pending")
	if !strings.Contains(msg, "10.9.9.9") || !strings.Contains(msg, "iks kubectl certificate approve foreign-ip") {
		t.Errorf("pending log line %q does not say why and how to approve", msg)
	}
	got, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, "foreign-ip", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if approved(got) {
		t.Fatal("CSR with a foreign IP was approved")
	}

	// Once the node reports that address, the CSR is approved.
	n, err := cs.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "10.9.9.9"})
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApproved(t, ctx, cs, "foreign-ip")

	// A CSR for a node that does not exist yet waits for the node.
	early := newCSR(t, csrSpec{name: "node-2-csr", user: "system:node:node-2", dns: []string{"node-2"}, ips: []string{"10.0.0.8"}})
	if _, err := cs.CertificatesV1().CertificateSigningRequests().Create(ctx, early, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sink.Wait(t, ctx, "node node-2 does not exist")
	if _, err := cs.CoreV1().Nodes().Create(ctx, newNode("node-2", nil, "10.0.0.8"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitApproved(t, ctx, cs, "node-2-csr")
}
