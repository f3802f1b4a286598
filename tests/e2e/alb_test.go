package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/iks-dev/iks/internal/lbpool"
	"github.com/iks-dev/iks/tests/testutil"
)

// Portable subnets of TestIngressALB, on subnet a (the router has them
// on-link): the ALB addresses are the 4th of each /29.
const (
	albPublicNet  = "10.87.1.64/29"
	albPrivateNet = "10.87.1.80/29"
	albPublicIP   = "10.87.1.67"
	albPrivateIP  = "10.87.1.83"
)

// TestIngressALB: the public ALB (enabled) and the private ALB (disabled)
// on a 3-node cluster with portable subnets, reached from the external
// namespace: host/path rules, default backend, spreading over backend
// pods, TLS SNI and the default certificate, HTTP→HTTPS redirect and HSTS,
// a WebSocket, tcp-services, continuous requests during Ingress changes
// and a scale, bad objects reported as Events, iks alb enable/disable.
func TestIngressALB(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "al", 87)
	for _, p := range []string{albPublicNet, albPrivateNet} {
		if out, err := nw.Router.Exec("ip", "route", "add", p, "dev", nw.RouterDev("a")); err != nil {
			t.Fatalf("router route %s: %v: %s", p, err, out)
		}
	}
	img := testutil.BuildImage(t, "./tests/images/httpd", httpdImage)
	srv := testutil.NewNodeOn(t, "al-s", nw, "a", 1)
	srv.StageImage(img, "httpd.tar")
	srv.Start("--portable-public-subnet", albPublicNet, "--portable-private-subnet", albPrivateNet)
	srv.WaitReady(3 * time.Minute)
	token := strings.TrimSpace(readFile(t, srv.DataDir+"/server/token"))
	var workers []*testutil.Node
	for i := 2; i <= 3; i++ {
		w := testutil.NewNodeOn(t, fmt.Sprintf("al-w%d", i-1), nw, "a", i).AsAgent("https://"+srv.IP+":6443", token)
		w.StageImage(img, "httpd.tar")
		w.Start("--public-ip", w.IP)
		workers = append(workers, w)
	}
	for _, w := range workers {
		w.WaitReady(3 * time.Minute)
	}
	cs := srv.Client()
	waitNodesReady(t, cs, 3, 2*time.Minute)
	ext := testutil.NewNetns(t, "iks-al-ext")
	nw.Attach(ext, "ext", nw.IP("ext", 10), "v-al-ext")
	t.Cleanup(func() {
		if t.Failed() {
			for _, args := range [][]string{{"alb", "list"}, {"lb", "status"}} {
				out, _ := srv.Command(args...).CombinedOutput()
				t.Logf("===== iks %s\n%s", strings.Join(args, " "), out)
			}
			out, _ := srv.Kubectl("get", "pods,svc,ingress,endpointslices", "-A", "-o", "wide")
			t.Logf("===== objects\n%s", out)
			// The ALB's own log lines (the access log fills the rest).
			out, _ = srv.Kubectl("logs", "-n", "kube-system", "-l", "app.kubernetes.io/name=iks-alb", "--tail=-1", "--prefix")
			var own []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, `"level":`) {
					own = append(own, l)
				}
			}
			if len(own) > 60 {
				own = own[len(own)-60:]
			}
			t.Logf("===== ALB logs\n%s", strings.Join(own, "\n"))
		}
	})

	createALBBackend(t, cs, "web-a", 10)
	createALBBackend(t, cs, "web-b", 1)
	createGRPCBackend(t, cs, "web-g")
	waitReadyPods(t, cs, "default", 12, 2*time.Minute)
	c := newALBClient(ext, false)
	rewrite := func(i *networkingv1.Ingress) {
		i.Annotations = map[string]string{"nginx.ingress.kubernetes.io/rewrite-target": "/"}
	}
	// Two Ingresses share the host: their rules merge.
	mustIngress(t, cs, albIngress("web", "", nil, albRule("web.example.com", "/", "web-a")), nil)
	mustIngress(t, cs, albIngress("web-b", "", nil, albRule("web.example.com", "/b", "web-b")), rewrite)
	fallback := albIngress("fallback", "", nil)
	fallback.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web-b", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	mustIngress(t, cs, fallback, nil)

	t.Run("public ALB enabled on its IP, private disabled", func(t *testing.T) {
		// Ready means the whole row at once: the public ALB on its IP with
		// 2/2 replicas, the private one disabled, and the self check (both
		// pods answer /healthz through the apiserver) 2/2, awaited
		// together.
		eventually(t, 2*time.Minute, "public ALB ready on "+albPublicIP, func() error {
			out, err := srv.Command("alb", "list").CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			if !rowHas(string(out), "private-cr", "disabled", "0/0") || !rowHas(string(out), "public-cr", "enabled", albPublicIP, "2/2") {
				return fmt.Errorf("iks alb list:\n%s", out)
			}
			js, err := srv.Command("alb", "list", "--json").Output()
			var list []struct{ Name, Health string }
			if err != nil || json.Unmarshal(js, &list) != nil {
				return fmt.Errorf("iks alb list --json: %v: %s", err, js)
			}
			for _, a := range list {
				if strings.HasPrefix(a.Name, "public-") && a.Health != "2/2" {
					return fmt.Errorf("%s health %q, want 2/2", a.Name, a.Health)
				}
			}
			return nil
		})
		// The workers joined after the server made the ALB: its pods follow
		// a node label, so joining nodes scaled it up without rolling a
		// serving replica (one ReplicaSet, none of its pods replaced).
		rss, err := cs.AppsV1().ReplicaSets("kube-system").List(context.Background(), metav1.ListOptions{LabelSelector: lbpool.LabelALB})
		if err != nil {
			t.Fatal(err)
		}
		var public []string
		for _, rs := range rss.Items {
			if strings.HasPrefix(rs.Name, "public-") {
				public = append(public, fmt.Sprintf("%s (%d replicas)", rs.Name, rs.Status.Replicas))
			}
		}
		if len(public) != 1 {
			t.Errorf("public ALB rolled while the nodes joined: ReplicaSets %v, want one", public)
		}
	})

	t.Run("host and path rules, default backend, status", func(t *testing.T) {
		eventually(t, time.Minute, "web.example.com/ via the public ALB", func() error {
			return expectBody(c, "http://"+albPublicIP+"/", "web.example.com", "hostname=web-a-")
		})
		for _, tc := range []struct{ path, host, want string }{
			{"/b", "web.example.com", "hostname=web-b-"},
			{"/", "unknown.example.com", "hostname=web-b-"},
		} {
			if err := expectBody(c, "http://"+albPublicIP+tc.path, tc.host, tc.want); err != nil {
				t.Error(err)
			}
		}
		eventually(t, 30*time.Second, "Ingress status", func() error {
			ing, err := cs.NetworkingV1().Ingresses("default").Get(context.Background(), "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(ing.Status.LoadBalancer.Ingress) != 1 || ing.Status.LoadBalancer.Ingress[0].IP != albPublicIP {
				return fmt.Errorf("status %+v", ing.Status.LoadBalancer)
			}
			return nil
		})
	})

	t.Run("100 requests reach all 10 backend pods", func(t *testing.T) {
		fresh := newALBClient(ext, true)
		// Retried only while the ALBs still learn the last endpoints.
		eventually(t, 30*time.Second, "100 requests over all 10 pods", func() error {
			seen := map[string]int{}
			for range 100 {
				body, err := albGet(fresh, "http://"+albPublicIP+"/", "web.example.com")
				if err != nil {
					return err
				}
				seen[strings.Fields(body)[0]]++
			}
			if len(seen) != 10 {
				return fmt.Errorf("100 requests reached %d pods, want 10: %v", len(seen), seen)
			}
			return nil
		})
	})

	t.Run("canary by header and cookie affinity", func(t *testing.T) {
		mustIngress(t, cs, albIngress("sticky", "", nil, albRule("sticky.example.com", "/", "web-a")), func(i *networkingv1.Ingress) {
			i.Annotations = map[string]string{"nginx.ingress.kubernetes.io/affinity": "cookie", "nginx.ingress.kubernetes.io/session-cookie-name": "iks-route"}
		})
		mustIngress(t, cs, albIngress("sticky-canary", "", nil, albRule("sticky.example.com", "/", "web-b")), func(i *networkingv1.Ingress) {
			i.Annotations = map[string]string{"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary"}
		})
		url := "http://" + albPublicIP + "/"
		// Both ALB replicas must have the canary before the checks count.
		fresh := newALBClient(ext, true)
		eventually(t, time.Minute, "X-Canary: always reaches the canary on every ALB replica", func() error {
			for range 10 {
				if body, _, err := albGetWith(fresh, url, "sticky.example.com", map[string]string{"X-Canary": "always"}); err != nil || !strings.Contains(body, "hostname=web-b-") {
					return fmt.Errorf("X-Canary: always: %q %v", body, err)
				}
			}
			return nil
		})
		for _, hdr := range []map[string]string{{"X-Canary": "never"}, {"X-Canary": "other"}, nil} {
			for range 5 {
				if body, _, err := albGetWith(fresh, url, "sticky.example.com", hdr); err != nil || !strings.Contains(body, "hostname=web-a-") {
					t.Fatalf("headers %v: %q %v, want the main Ingress (web-a)", hdr, body, err)
				}
			}
		}
		// No cookie: spread over web-a's pods, each answer sets iks-route.
		seen := map[string]bool{}
		var cookie string
		for range 20 {
			body, resp, err := albGetWith(fresh, url, "sticky.example.com", nil)
			if err != nil {
				t.Fatal(err)
			}
			seen[strings.Fields(body)[0]] = true
			sc := resp.Header.Get("Set-Cookie")
			if !strings.HasPrefix(sc, "iks-route=") {
				t.Fatalf("Set-Cookie %q, want iks-route=...", sc)
			}
			cookie = strings.Split(sc, ";")[0]
		}
		if len(seen) < 3 {
			t.Errorf("20 requests without the cookie reached %d pods, want them spread over web-a's 10: %v", len(seen), seen)
		}
		// With it: one pod for 20 requests on new connections (both ALB
		// replicas hash endpoints the same way).
		first := ""
		for i := range 20 {
			body, _, err := albGetWith(fresh, url, "sticky.example.com", map[string]string{"Cookie": cookie})
			if err != nil {
				t.Fatal(err)
			}
			pod := strings.Fields(body)[0]
			if first == "" {
				first = pod
			} else if pod != first {
				t.Fatalf("request %d with cookie %s reached %s, earlier ones %s", i, cookie, pod, first)
			}
		}
	})

	t.Run("TLS SNI, default certificate, redirect, HSTS", func(t *testing.T) {
		for _, h := range []string{"s1.example.com", "s2.example.com"} {
			crt, key := selfSignedPEM(t, h)
			if _, err := cs.CoreV1().Secrets("default").Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: h},
				Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		mustIngress(t, cs, albIngress("secure", "", []networkingv1.IngressTLS{{Hosts: []string{"s1.example.com"}, SecretName: "s1.example.com"},
			{Hosts: []string{"s2.example.com"}, SecretName: "s2.example.com"}},
			albRule("s1.example.com", "/", "web-a"), albRule("s2.example.com", "/", "web-b")), nil)
		for _, tc := range []struct{ sni, wantCN, wantBody string }{
			{"s1.example.com", "s1.example.com", "hostname=web-a-"},
			{"s2.example.com", "s2.example.com", "hostname=web-b-"},
			{"other.example.com", "iks-alb-default", ""},
		} {
			eventually(t, 30*time.Second, "HTTPS "+tc.sni, func() error {
				resp, body, err := albTLSGet(ext, tc.sni)
				if err != nil {
					return err
				}
				cn := resp.TLS.PeerCertificates[0].Subject.CommonName
				switch {
				case cn != tc.wantCN:
					return fmt.Errorf("SNI %s got certificate %q, want %q", tc.sni, cn, tc.wantCN)
				case tc.wantBody != "" && !strings.Contains(body, tc.wantBody):
					return fmt.Errorf("SNI %s body %q, want %q", tc.sni, body, tc.wantBody)
				case tc.wantBody != "" && resp.Header.Get("Strict-Transport-Security") == "":
					return fmt.Errorf("no HSTS header for TLS host %s", tc.sni)
				case tc.wantBody != "" && resp.ProtoMajor != 2:
					return fmt.Errorf("HTTPS for %s spoke %s, want HTTP/2", tc.sni, resp.Proto)
				}
				return nil
			})
		}
		resp, err := albDo(c, "http://"+albPublicIP+"/x?y=1", "s1.example.com")
		if err != nil || resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://s1.example.com/x?y=1" {
			t.Errorf("HTTP to a TLS host: %v %v, want a 301 to https://s1.example.com/x?y=1", resp, err)
		}
	})

	t.Run("gRPC through the ALB (backend-protocol GRPC, h2c to the pod)", func(t *testing.T) {
		ing := albIngress("grpc", "", []networkingv1.IngressTLS{{Hosts: []string{"g.example.com"}}}, albRule("g.example.com", "/", "web-g"))
		ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{Name: "grpc"}
		mustIngress(t, cs, ing, func(i *networkingv1.Ingress) {
			i.Annotations = map[string]string{"nginx.ingress.kubernetes.io/backend-protocol": "GRPC"}
		})
		pods, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web-g"})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("web-g pods: %v %v", pods, err)
		}
		eventually(t, 30*time.Second, "gRPC health check of "+pods.Items[0].Name+" through the ALB", func() error {
			return grpcHealth(ext, "g.example.com", pods.Items[0].Name)
		})
	})

	// The WebSocket goes to web-b, which is not scaled: only the ALB
	// could cut it.
	mustIngress(t, cs, albIngress("ws", "", nil, albRule("ws.example.com", "/", "web-b")), nil)
	ws := openALBWebSocket(t, ext, "ws.example.com")
	t.Run("continuous requests during 20 Ingress changes and a scale: 0 failed", func(t *testing.T) {
		var ok, failed atomic.Int64
		var firstErr atomic.Value
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if err := expectBody(c, "http://"+albPublicIP+"/", "web.example.com", "hostname=web-a-"); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					} else {
						ok.Add(1)
					}
				}
			}()
		}
		churn := albIngress("churn", "", nil, albRule("churn.example.com", "/p0", "web-b"))
		mustIngress(t, cs, churn, rewrite)
		for i := 1; i <= 20; i++ {
			// The ALBs write the status: retry on conflict.
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur, err := cs.NetworkingV1().Ingresses("default").Get(context.Background(), "churn", metav1.GetOptions{})
				if err != nil {
					return err
				}
				cur.Spec.Rules = append(cur.Spec.Rules, albRule("churn.example.com", fmt.Sprintf("/p%d", i), "web-b"))
				_, err = cs.NetworkingV1().Ingresses("default").Update(context.Background(), cur, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if i == 10 {
				scaleDeployment(t, cs, "web-a", 6)
			}
		}
		eventually(t, 30*time.Second, "the last churn rule served", func() error {
			return expectBody(c, "http://"+albPublicIP+"/p20", "churn.example.com", "hostname=web-b-")
		})
		waitReadyPods(t, cs, "default", 8, time.Minute) // web-a 6 + web-b 1 + web-g 1
		stop()
		wg.Wait()
		t.Logf("%d requests during the changes, %d failed", ok.Load(), failed.Load())
		if failed.Load() != 0 || ok.Load() < 20 {
			t.Errorf("%d of %d requests failed (first: %v)", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
		}
		if err := ws.echo("after-changes"); err != nil {
			t.Errorf("the WebSocket opened before the changes: %v", err)
		}
	})
	ws.close()

	t.Run("bad objects give Events, others keep working", func(t *testing.T) {
		bad := albIngress("bad", "", []networkingv1.IngressTLS{{Hosts: []string{"bad.example.com"}, SecretName: "no-such-secret"}},
			albRule("bad.example.com", "/", "web-b"), albRule("nosvc.example.com", "/", "no-such-service"), albRule("web.example.com", "/", "web-b"))
		mustIngress(t, cs, bad, func(i *networkingv1.Ingress) {
			i.Annotations = map[string]string{"nginx.ingress.kubernetes.io/server-snippet": "return 200;", "nginx.ingress.kubernetes.io/use-regex": "maybe"}
		})
		for _, reason := range []string{"BadBackend", "BadTLSSecret", "DuplicatePath", "BadAnnotation"} {
			msg := waitEvent(t, cs, "bad", reason)
			t.Logf("%s: %s", reason, msg)
		}
		if err := expectBody(c, "http://"+albPublicIP+"/", "web.example.com", "hostname=web-a-"); err != nil {
			t.Errorf("the older Ingress's rule must win and keep working: %v", err)
		}
		if resp, err := albDo(c, "http://"+albPublicIP+"/", "nosvc.example.com"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("missing service: %v %v, want 503", resp, err)
		}
	})

	t.Run("tcp-services and udp-services", func(t *testing.T) {
		if _, err := srv.Kubectl("-n", "kube-system", "patch", "configmap", "tcp-services", "--type=merge", "-p", `{"data":{"9000":"default/web-b:80"}}`); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Kubectl("-n", "kube-system", "patch", "configmap", "udp-services", "--type=merge", "-p", `{"data":{"9053":"default/web-g:9053"}}`); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "UDP port 9053 of the ALB", func() error {
			return udpEcho(ext, albPublicIP+":9053", "ping", "echo web-g-")
		})
		eventually(t, time.Minute, "TCP port 9000 of the ALB", func() error {
			body, err := ext.HTTPGet(context.Background(), "http://"+albPublicIP+":9000/", 2*time.Second)
			if err == nil && !strings.Contains(body, "hostname=web-b-") {
				err = fmt.Errorf("body %q", body)
			}
			return err
		})
	})

	t.Run("private ALB: disabled until enabled, disable frees the IP", func(t *testing.T) {
		out, _ := srv.Command("alb", "list").CombinedOutput()
		priv := ""
		for _, f := range strings.Fields(string(out)) {
			if strings.HasPrefix(f, "private-cr") {
				priv = f
			}
		}
		if priv == "" {
			t.Fatalf("no private ALB in:\n%s", out)
		}
		mustIngress(t, cs, albIngress("private", "private-iks-k8s-nginx", nil, albRule("", "/", "web-b")), nil)
		if _, err := albGet(c, "http://"+albPrivateIP+"/", "x"); err == nil {
			t.Fatal("the disabled private ALB answered")
		}
		if out, err := srv.Command("alb", "enable", priv).CombinedOutput(); err != nil {
			t.Fatalf("iks alb enable: %v: %s", err, out)
		}
		eventually(t, 2*time.Minute, "private ALB on "+albPrivateIP, func() error {
			return expectBody(c, "http://"+albPrivateIP+"/", "p.example.com", "hostname=web-b-")
		})
		if out, _ := srv.Command("lb", "status").CombinedOutput(); !rowHas(string(out), albPrivateIP, "kube-system/"+priv) {
			t.Errorf("iks lb status does not show %s held by the private ALB:\n%s", albPrivateIP, out)
		}
		if out, err := srv.Command("alb", "disable", priv).CombinedOutput(); err != nil {
			t.Fatalf("iks alb disable: %v: %s", err, out)
		}
		eventually(t, time.Minute, "private ALB service deleted", func() error {
			_, err := cs.CoreV1().Services("kube-system").Get(context.Background(), priv, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("service still there (%v)", err)
		})
		eventually(t, 30*time.Second, albPrivateIP+" freed", func() error {
			out, _ := srv.Command("lb", "status").CombinedOutput()
			if rowHas(string(out), albPrivateIP, "kube-system/"+priv) {
				return fmt.Errorf("iks lb status still lists it:\n%s", out)
			}
			return nil
		})
	})

	// Last: it kills a worker.
	t.Run("the ALB keeps answering when the node holding its IP dies", func(t *testing.T) {
		names := map[string]*testutil.Node{}
		for _, w := range workers {
			names[w.Name] = w
		}
		eventually(t, 2*time.Minute, "both public ALB pods on the workers attached to the public subnet", func() error {
			pods, err := cs.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=iks-alb"})
			if err != nil {
				return err
			}
			on, public := map[string]bool{}, 0
			for _, p := range pods.Items {
				if strings.HasPrefix(p.Name, "public-") {
					public++
				}
				ready := false
				for _, c := range p.Status.Conditions {
					ready = ready || c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
				}
				if strings.HasPrefix(p.Name, "public-") && ready && names[p.Spec.NodeName] != nil && p.DeletionTimestamp == nil {
					on[p.Spec.NodeName] = true
				}
			}
			if len(on) != 2 || public != 2 {
				return fmt.Errorf("ready public ALB pods on workers: %v (%d public ALB pods)", on, public)
			}
			return nil
		})
		holder := names[waitHolder(t, cs, albPublicIP, "")]
		if holder == nil {
			t.Fatalf("%s held by a node that is not a worker", albPublicIP)
		}
		quick := &http.Client{Transport: &http.Transport{DialContext: ext.DialContext, DisableKeepAlives: true}, Timeout: 300 * time.Millisecond}
		t0 := time.Now()
		holder.Kill()
		if err := nw.Cut(holder.Peer()); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := albGet(quick, "http://"+albPublicIP+"/", "web.example.com"); err == nil {
				break
			}
			if time.Since(t0) > 30*time.Second {
				t.Fatalf("%s did not answer within 30 s of killing %s", albPublicIP, holder.Name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(t0)
		t.Logf("ALB answered again %v after %s (holding %s) died", took.Round(10*time.Millisecond), holder.Name, albPublicIP)
		if took > 10*time.Second {
			t.Errorf("ALB failover took %v, want a few seconds (the LB IP failover)", took)
		}
	})
}
