package netapi

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// BlockClient reads and writes IPAMBlocks through the dynamic client.
type BlockClient struct {
	res dynamic.NamespaceableResourceInterface
}

// NewBlockClient returns a client for the given REST config.
func NewBlockClient(cfg *rest.Config) (*BlockClient, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("IPAMBlock client: %w", err)
	}
	return &BlockClient{res: dyn.Resource(IPAMBlockGVR)}, nil
}

// NewBlockClientFor wraps an existing dynamic client (tests).
func NewBlockClientFor(dyn dynamic.Interface) *BlockClient {
	return &BlockClient{res: dyn.Resource(IPAMBlockGVR)}
}

// List returns every block, or only node's when node is not "", ordered
// by address.
func (c *BlockClient) List(ctx context.Context, node string) ([]*IPAMBlock, error) {
	opts := metav1.ListOptions{}
	if node != "" {
		opts.FieldSelector = fields.OneTermEqualSelector(NodeField, node).String()
	}
	l, err := c.res.List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list IPAMBlocks: %w", err)
	}
	out := make([]*IPAMBlock, 0, len(l.Items))
	for i := range l.Items {
		b, err := FromUnstructured(&l.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	SortBlocks(out)
	return out, nil
}

// SortBlocks orders blocks by address (unparsable ones last, by name).
func SortBlocks(bs []*IPAMBlock) {
	slices.SortFunc(bs, func(a, b *IPAMBlock) int {
		pa, ea := a.Prefix()
		pb, eb := b.Prefix()
		switch {
		case ea != nil || eb != nil:
			if ea == nil {
				return -1
			}
			if eb == nil {
				return 1
			}
			return compareStrings(a.Name, b.Name)
		case pa.Addr() != pb.Addr():
			return pa.Addr().Compare(pb.Addr())
		default:
			return pa.Bits() - pb.Bits()
		}
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Get reads one block by name.
func (c *BlockClient) Get(ctx context.Context, name string) (*IPAMBlock, error) {
	u, err := c.res.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return FromUnstructured(u)
}

// Create creates b; the API error is returned unwrapped so callers can
// test it with apierrors.IsAlreadyExists.
func (c *BlockClient) Create(ctx context.Context, b *IPAMBlock) (*IPAMBlock, error) {
	u, err := b.ToUnstructured()
	if err != nil {
		return nil, err
	}
	out, err := c.res.Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return FromUnstructured(out)
}

// Claim creates b by server-side apply with a field manager of b's node
// ("iks-ipam/NODE"): a block another node holds conflicts on spec.node
// and comes back as AlreadyExists, as from Create; one this node holds
// is returned. Unlike a create, an apply is not held back by the
// apiserver in the two seconds after the CRD was established (its
// customresource handler sleeps there for HA followers), which a
// server's first start hits.
func (c *BlockClient) Claim(ctx context.Context, b *IPAMBlock) (*IPAMBlock, error) {
	u, err := b.ToUnstructured()
	if err != nil {
		return nil, err
	}
	out, err := c.res.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "iks-ipam/" + b.Spec.Node})
	if err != nil {
		// Another node's block: a conflict on spec.node, or the refusal
		// of the policy that keeps nodes to their own blocks.
		if have, gerr := c.Get(ctx, u.GetName()); gerr == nil && have.Spec.Node != b.Spec.Node {
			return nil, apierrors.NewAlreadyExists(IPAMBlockGVR.GroupResource(), u.GetName())
		}
		return nil, err
	}
	got, err := FromUnstructured(out)
	if err != nil {
		return nil, err
	}
	if got.Spec.Node != b.Spec.Node {
		return nil, apierrors.NewAlreadyExists(IPAMBlockGVR.GroupResource(), u.GetName())
	}
	return got, nil
}

// Update writes b's metadata and spec (resourceVersion checked).
func (c *BlockClient) Update(ctx context.Context, b *IPAMBlock) (*IPAMBlock, error) {
	u, err := b.ToUnstructured()
	if err != nil {
		return nil, err
	}
	out, err := c.res.Update(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return FromUnstructured(out)
}

// UpdateStatus writes b's status (resourceVersion checked).
func (c *BlockClient) UpdateStatus(ctx context.Context, b *IPAMBlock) (*IPAMBlock, error) {
	u, err := b.ToUnstructured()
	if err != nil {
		return nil, err
	}
	out, err := c.res.UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return FromUnstructured(out)
}

// Delete deletes a block by name.
func (c *BlockClient) Delete(ctx context.Context, name string) error {
	return c.res.Delete(ctx, name, metav1.DeleteOptions{})
}
