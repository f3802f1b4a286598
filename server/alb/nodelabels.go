package alb

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// NodeLabelPrefix + an ALB's name labels the nodes attached to that ALB's
// subnet (lbpool.Attached): the ALB pods require it. A label rather than
// the node names in the pod template keeps the template the same while
// nodes join and leave, so a joining node never rolls the ALB's pods
// (each roll closes the connections of a replica that serves).
const NodeLabelPrefix = "alb.iks.io/"

// NodeLabel is the label that marks the nodes that may run a's pods.
func NodeLabel(a ALB) string { return NodeLabelPrefix + a.Name }

// labelPatches returns, per node name, the labels to set ("true") and to
// remove (nil) so that exactly the nodes in attached[alb] carry the label
// of each ALB with an IP. Labels of ALBs that are not planned are left.
func labelPatches(nodes []*corev1.Node, albs []ALB, attached map[string][]string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, n := range nodes {
		for _, a := range albs {
			if !a.IP.IsValid() {
				continue
			}
			key := NodeLabel(a)
			_, has := n.Labels[key]
			want := slices.Contains(attached[a.Name], n.Name)
			if has == want {
				continue
			}
			if out[n.Name] == nil {
				out[n.Name] = map[string]any{}
			}
			if want {
				out[n.Name][key] = "true"
			} else {
				out[n.Name][key] = nil
			}
		}
	}
	return out
}

// syncNodeLabels applies labelPatches with merge patches (labels only,
// nothing else of the Node is written).
func syncNodeLabels(ctx context.Context, cs kubernetes.Interface, nodes []*corev1.Node, albs []ALB, attached map[string][]string) error {
	for name, labels := range labelPatches(nodes, albs, attached) {
		if err := patchLabels(ctx, cs, name, labels); err != nil {
			return err
		}
	}
	return nil
}

// patchLabels sets ("true") and removes (nil) labels of a node with a
// merge patch of those labels only.
func patchLabels(ctx context.Context, cs kubernetes.Interface, node string, labels map[string]any) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, body, metav1.PatchOptions{FieldManager: FieldOwner}); err != nil {
		return fmt.Errorf("set the ALB labels of node %s (%s): %w", node, body, err)
	}
	return nil
}

// removeNodeLabels removes every NodeLabelPrefix label (--disable alb).
func removeNodeLabels(ctx context.Context, cs kubernetes.Interface) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes for their ALB labels: %w", err)
	}
	for _, n := range nodes.Items {
		labels := map[string]any{}
		for k := range n.Labels {
			if strings.HasPrefix(k, NodeLabelPrefix) {
				labels[k] = nil
			}
		}
		if len(labels) == 0 {
			continue
		}
		if err := patchLabels(ctx, cs, n.Name, labels); err != nil {
			return err
		}
	}
	return nil
}

// notReadyGrace is how long a node may be NotReady (or unknown) and still
// count for the ALB's replicas: a node that misses heartbeats for a while
// under load, or reboots, must not make the Deployment delete a serving
// replica; the Node lifecycle evicts pods of nodes gone for 5 minutes,
// and so does this.
const notReadyGrace = 5 * time.Minute

// countsForReplicas reports whether node n can hold an ALB replica now:
// schedulable, and Ready or not Ready for less than notReadyGrace.
func countsForReplicas(n *corev1.Node, now time.Time) bool {
	if n.Spec.Unschedulable {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			return true
		}
		return !c.LastTransitionTime.IsZero() && now.Sub(c.LastTransitionTime.Time) < notReadyGrace
	}
	return false
}
