package vpnconn

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Conn is a VPNConnection object.
type Conn struct {
	Name       string
	UID        string
	Generation int64
	Spec       Spec
	Status     Status
}

// FromUnstructured decodes a VPNConnection.
func FromUnstructured(u *unstructured.Unstructured) (*Conn, error) {
	c := &Conn{Name: u.GetName(), UID: string(u.GetUID()), Generation: u.GetGeneration()}
	if m, ok := u.Object["spec"].(map[string]any); ok {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &c.Spec); err != nil {
			return nil, fmt.Errorf("VPNConnection %s: spec: %w", c.Name, err)
		}
	}
	if m, ok := u.Object["status"].(map[string]any); ok {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &c.Status); err != nil {
			return nil, fmt.Errorf("VPNConnection %s: status: %w", c.Name, err)
		}
	}
	return c, nil
}

// StatusObject is Status as an unstructured map (for UpdateStatus).
func StatusObject(s Status) (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&s)
	if err != nil {
		return nil, fmt.Errorf("encode VPNConnection status: %w", err)
	}
	return m, nil
}

// Condition returns the condition of type t, or nil.
func (s *Status) Condition(t string) *metav1.Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// Up reports whether the gateway says the tunnel is established (IKE
// and CHILD SA installed) for the current generation.
func (c *Conn) Up() bool {
	e := c.Status.Condition(ConditionEstablished)
	return e != nil && e.Status == metav1.ConditionTrue && c.Status.Gateway.NodeIP != ""
}
