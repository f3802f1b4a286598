package watch

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/iks-dev/iks/internal/alb/route"
)

// eventLog turns problems into Warning Events, each once per object and
// message while it lasts.
type eventLog struct {
	b    record.EventBroadcaster
	rec  record.EventRecorder
	log  *slog.Logger
	seen map[string]bool
}

func newEventLog(cs kubernetes.Interface, log *slog.Logger) *eventLog {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	return &eventLog{b: b, rec: b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "iks-alb"}), log: log, seen: map[string]bool{}}
}

func (e *eventLog) stop() { e.b.Shutdown() }

func (e *eventLog) report(probs []route.Problem, ings []*networkingv1.Ingress) {
	byName := map[string]*networkingv1.Ingress{}
	for _, i := range ings {
		byName[i.Namespace+"/"+i.Name] = i
	}
	now := map[string]bool{}
	for _, p := range probs {
		k := p.Kind + "/" + p.Namespace + "/" + p.Name + "|" + p.Message
		var uid string
		if ing := byName[p.Namespace+"/"+p.Name]; p.Kind == "Ingress" && ing != nil {
			uid = string(ing.UID) + "@" + fmt.Sprint(ing.Generation)
		}
		k += uid
		now[k] = true
		if e.seen[k] {
			continue
		}
		e.log.Warn("bad object", "kind", p.Kind, "object", p.Namespace+"/"+p.Name, "reason", p.Reason, "msg", p.Message)
		if ing := byName[p.Namespace+"/"+p.Name]; p.Kind == "Ingress" && ing != nil {
			e.rec.Event(ing, corev1.EventTypeWarning, p.Reason, p.Message)
		} else {
			e.rec.Event(&corev1.ObjectReference{Kind: p.Kind, APIVersion: "v1", Namespace: p.Namespace, Name: p.Name}, corev1.EventTypeWarning, p.Reason, p.Message)
		}
	}
	e.seen = now
}

// publish writes the ALB's IP into status.loadBalancer of its Ingresses.
func (w *Watcher) publish(ctx context.Context, ings []*networkingv1.Ingress) {
	ns, name, ok := strings.Cut(w.cfg.PublishService, "/")
	if !ok {
		return
	}
	svc := get[*corev1.Service](w.svcs, ns, name)
	var ips []string
	if svc != nil {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if _, err := netip.ParseAddr(in.IP); err == nil {
				ips = append(ips, in.IP)
			}
		}
	}
	for _, ing := range ings {
		if sameIPs(ing.Status.LoadBalancer.Ingress, ips) {
			continue
		}
		upd := ing.DeepCopy()
		upd.Status.LoadBalancer.Ingress = nil
		for _, ip := range ips {
			upd.Status.LoadBalancer.Ingress = append(upd.Status.LoadBalancer.Ingress, networkingv1.IngressLoadBalancerIngress{IP: ip})
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.cs.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(cctx, upd, metav1.UpdateOptions{FieldManager: "iks-alb"})
		cancel()
		if err != nil {
			// A conflict means another replica or a user changed it: the
			// informer brings the new version and the next rebuild retries.
			w.log.Debug("ingress status not updated", "ingress", ing.Namespace+"/"+ing.Name, "err", err)
		}
	}
}

func sameIPs(cur []networkingv1.IngressLoadBalancerIngress, ips []string) bool {
	if len(cur) != len(ips) {
		return false
	}
	for i := range cur {
		if cur[i].IP != ips[i] {
			return false
		}
	}
	return true
}

// parseGlobal reads ibm-k8s-controller-config.
func parseGlobal(data map[string]string) (route.Global, []route.Problem) {
	g := route.DefaultGlobal()
	var probs []route.Problem
	bad := func(k, v, want string) {
		probs = append(probs, route.Problem{Kind: "ConfigMap", Namespace: ConfigNamespace, Name: ControllerConfig, Reason: "BadConfig",
			Message: fmt.Sprintf("%s key %s=%q is not valid: %s; the default is used", ControllerConfig, k, v, want)})
	}
	for k, v := range data {
		v = strings.TrimSpace(v)
		switch k {
		case "proxy-body-size":
			n, err := route.ParseSize(v)
			if err != nil {
				bad(k, v, "use a size such as 8m or 0")
				continue
			}
			g.BodyLimit = n
		case "proxy-connect-timeout", "proxy-read-timeout", "proxy-send-timeout":
			d, err := time.ParseDuration(strings.TrimSuffix(v, "s") + "s")
			if err != nil || d <= 0 {
				bad(k, v, "use a number of seconds")
				continue
			}
			switch k {
			case "proxy-connect-timeout":
				g.ConnectTimeout = d
			case "proxy-read-timeout":
				g.ReadTimeout = d
			default:
				g.SendTimeout = d
			}
		case "disable-access-log":
			if v != "true" && v != "false" {
				bad(k, v, `use "true" or "false"`)
				continue
			}
			g.AccessLog = v == "false"
		case "hsts", "ssl-redirect":
			b := v == "true"
			if v != "true" && v != "false" {
				bad(k, v, `use "true" or "false"`)
				continue
			}
			if k == "hsts" {
				g.HSTS = b
			} else {
				g.SSLRedirect = b
			}
		}
	}
	return g, probs
}
