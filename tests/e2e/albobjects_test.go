package e2e

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// Objects of TestIngressALB: backends, Ingresses.

func createALBBackend(t *testing.T, cs kubernetes.Interface, name string, replicas int32) {
	t.Helper()
	l := map[string]string{"app": name}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{Replicas: &replicas,
		Selector: &metav1.LabelSelector{MatchLabels: l},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "httpd", Image: httpdImage, ImagePullPolicy: corev1.PullNever, Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
		}}}}}}
	if _, err := cs.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Selector: l,
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := cs.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createGRPCBackend: one httpd pod serving gRPC health on 9090 (h2c) and
// a UDP echo on 9053, behind Service ports grpc and udp.
func createGRPCBackend(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	l := map[string]string{"app": name}
	one := int32(1)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{Replicas: &one,
		Selector: &metav1.LabelSelector{MatchLabels: l},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: l}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "httpd", Image: httpdImage, ImagePullPolicy: corev1.PullNever, Env: []corev1.EnvVar{{Name: "GRPC_PORT", Value: "9090"}, {Name: "UDP_PORT", Value: "9053"}},
			Ports:          []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 9090}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
		}}}}}}
	if _, err := cs.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Selector: l,
		Ports: []corev1.ServicePort{{Name: "grpc", Port: 9090, TargetPort: intstr.FromInt32(9090)},
			{Name: "udp", Port: 9053, TargetPort: intstr.FromInt32(9053), Protocol: corev1.ProtocolUDP}}}}
	if _, err := cs.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func scaleDeployment(t *testing.T, cs kubernetes.Interface, name string, n int32) {
	t.Helper()
	s, err := cs.AppsV1().Deployments("default").GetScale(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = n
	if _, err := cs.AppsV1().Deployments("default").UpdateScale(context.Background(), name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func albRule(host, path, svc string) networkingv1.IngressRule {
	pt := networkingv1.PathTypePrefix
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
		Paths: []networkingv1.HTTPIngressPath{{Path: path, PathType: &pt, Backend: networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}
}

func albIngress(name, class string, tlsSpec []networkingv1.IngressTLS, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	i := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressSpec{Rules: rules, TLS: tlsSpec}}
	if class != "" {
		i.Spec.IngressClassName = &class
	}
	return i
}

func mustIngress(t *testing.T, cs kubernetes.Interface, i *networkingv1.Ingress, mod func(*networkingv1.Ingress)) {
	t.Helper()
	if mod != nil {
		mod(i)
	}
	if _, err := cs.NetworkingV1().Ingresses("default").Create(context.Background(), i, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// rowHas reports whether one line of a table contains all the strings.
func rowHas(table string, subs ...string) bool {
	for _, l := range strings.Split(table, "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			return true
		}
	}
	return false
}
