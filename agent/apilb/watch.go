package apilb

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/kubeutil"
)

// refreshEvery is how often the server list is re-read.
const refreshEvery = 10 * time.Second

// LearnFrom makes the load balancer learn the apiservers from the
// kubernetes Service's EndpointSlices with the kubeconfig (which goes
// through the load balancer itself). Call it before Start.
func (l *LB) LearnFrom(kubeconfig string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watch = func(ctx context.Context) {
		last := ""
		for {
			err := l.refresh(ctx, kubeconfig)
			if msg := fmt.Sprint(err); err != nil && msg != last {
				l.log.Warn("apiserver list not refreshed (the load balancer keeps the servers it knows)", "err", err)
				last = msg
			} else if err == nil {
				last = ""
			}
			// Until the first list arrives (kubelet writes its kubeconfig
			// after its TLS bootstrap), retry every second.
			wait := refreshEvery
			if err != nil && !l.learnt() {
				wait = time.Second
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

func (l *LB) refresh(ctx context.Context, kubeconfig string) error {
	cs, err := kubeutil.Clientset(kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx,
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil {
		return err
	}
	if s := Servers(list.Items); len(s) > 0 {
		l.SetServers(s)
		l.mu.Lock()
		l.learned = true
		l.mu.Unlock()
	}
	return nil
}

// Servers returns host:port of every ready endpoint of the slices.
func Servers(slices []discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range slices {
		port := 6443
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil || *p.Name == "https") {
				port = int(*p.Port)
			}
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				out = append(out, net.JoinHostPort(a, strconv.Itoa(port)))
			}
		}
	}
	return out
}

// learnt reports whether a server list was read from the API.
func (l *LB) learnt() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.learned
}
