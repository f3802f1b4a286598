package token

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstrapsecrets "k8s.io/cluster-bootstrap/util/secrets"

	"github.com/iks-dev/iks/internal/kubeapply"
)

// ServerTokenDescription describes the server token's Secret.
const ServerTokenDescription = "iks server token (<data-dir>/server/token); re-created at every server start"

// createAttempts bounds retries when a random ID is already taken.
const createAttempts = 5

// Info describes a bootstrap token Secret; it never holds the secret.
type Info struct {
	ID          string
	Description string
	// Expires is zero for a token that never expires.
	Expires time.Time
	Usages  []string // e.g. "authentication", "signing"
	Groups  []string // extra groups
	Created time.Time
}

// Expired reports whether the token has expired at now.
func (i Info) Expired(now time.Time) bool { return !i.Expires.IsZero() && !now.Before(i.Expires) }

// secretFor builds the bootstrap token Secret of t.
func secretFor(t Token, expires time.Time, description string) *corev1.Secret {
	data := map[string][]byte{
		bootstrapapi.BootstrapTokenIDKey:               []byte(t.ID),
		bootstrapapi.BootstrapTokenSecretKey:           []byte(t.Secret),
		bootstrapapi.BootstrapTokenUsageAuthentication: []byte("true"),
		bootstrapapi.BootstrapTokenUsageSigningKey:     []byte("true"),
		bootstrapapi.BootstrapTokenExtraGroupsKey:      []byte(NodeGroup),
	}
	if !expires.IsZero() {
		data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(expires.UTC().Format(time.RFC3339))
	}
	if description != "" {
		data[bootstrapapi.BootstrapTokenDescriptionKey] = []byte(description)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      bootstrapapi.BootstrapTokenSecretPrefix + t.ID,
			Namespace: metav1.NamespaceSystem,
		},
		Type: bootstrapapi.SecretTypeBootstrapToken,
		Data: data,
	}
}

// Create makes a new random join token for the CA with hash caHash and
// stores its Secret. ttl 0 means the token never expires; the
// controller-manager's token cleaner deletes expired ones.
func Create(ctx context.Context, cs kubernetes.Interface, caHash string, ttl time.Duration, description string) (Token, error) {
	if ttl < 0 {
		return Token{}, fmt.Errorf("token TTL %s is negative: pass a positive duration such as 24h, or 0 for no expiry", ttl)
	}
	var expires time.Time
	if ttl > 0 {
		expires = time.Now().Add(ttl)
	}
	for range createAttempts {
		t, err := Generate(caHash)
		if err != nil {
			return Token{}, err
		}
		_, err = cs.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, secretFor(t, expires, description), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue // random ID collision: draw again
		}
		if err != nil {
			return Token{}, fmt.Errorf("create bootstrap token Secret %s/%s%s: %w",
				metav1.NamespaceSystem, bootstrapapi.BootstrapTokenSecretPrefix, t.ID, err)
		}
		return t, nil
	}
	return Token{}, fmt.Errorf("create bootstrap token: %d random IDs in a row were taken: delete unused tokens with `iks token delete`", createAttempts)
}

// EnsureSecret applies t's Secret, never expiring. A stored Secret with
// other data (for example an expiry someone added) or another type is
// replaced: the server token must stay exactly what the token file says.
func EnsureSecret(ctx context.Context, cs kubernetes.Interface, t Token, description string) error {
	if err := t.Validate(); err != nil {
		return err
	}
	want := secretFor(t, time.Time{}, description)
	secrets := cs.CoreV1().Secrets(metav1.NamespaceSystem)
	have, err := kubeapply.Replace(ctx, secrets, want)
	if err != nil {
		return fmt.Errorf("bootstrap token: %w", err)
	}
	if maps.EqualFunc(have.Data, want.Data, func(a, b []byte) bool { return string(a) == string(b) }) {
		return nil
	}
	if err := secrets.Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("replace bootstrap token Secret %s/%s holding other data: %w", want.Namespace, want.Name, err)
	}
	if _, err := kubeapply.Apply(ctx, secrets, want); err != nil {
		return fmt.Errorf("bootstrap token: %w", err)
	}
	return nil
}

// List returns the bootstrap tokens of the cluster, sorted by ID.
func List(ctx context.Context, cs kubernetes.Interface) ([]Info, error) {
	sel := fields.OneTermEqualSelector("type", string(bootstrapapi.SecretTypeBootstrapToken)).String()
	l, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list bootstrap token Secrets in %s: %w", metav1.NamespaceSystem, err)
	}
	var out []Info
	for i := range l.Items {
		s := &l.Items[i]
		if s.Type != bootstrapapi.SecretTypeBootstrapToken {
			continue
		}
		id := bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenIDKey)
		if nameID, ok := bootstrapsecrets.ParseName(s.Name); !ok || nameID != id {
			continue // not a valid bootstrap token: the apiserver ignores it too
		}
		info := Info{
			ID:          id,
			Description: bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenDescriptionKey),
			Created:     s.CreationTimestamp.Time,
		}
		if exp := bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenExpirationKey); exp != "" {
			// An unparsable expiry makes the apiserver reject the token:
			// show it as expired.
			info.Expires, err = time.Parse(time.RFC3339, exp)
			if err != nil {
				info.Expires = time.Unix(0, 0)
			}
		}
		for k, v := range s.Data {
			if u, ok := strings.CutPrefix(k, bootstrapapi.BootstrapTokenUsagePrefix); ok && string(v) == "true" {
				info.Usages = append(info.Usages, u)
			}
		}
		slices.Sort(info.Usages)
		if g := bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenExtraGroupsKey); g != "" {
			info.Groups = strings.Split(g, ",")
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Delete deletes the bootstrap token with the given ID; agents that
// already joined with it keep working.
func Delete(ctx context.Context, cs kubernetes.Interface, id string) error {
	if !idOK(id) {
		return fmt.Errorf("token ID %q is not 6 characters of [a-z0-9]: pass an ID from `iks token list` "+
			"(the part before the dot after \"::\")", id)
	}
	name := bootstrapapi.BootstrapTokenSecretPrefix + id
	err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no bootstrap token with ID %q (Secret %s/%s not found): list them with `iks token list`",
			id, metav1.NamespaceSystem, name)
	}
	if err != nil {
		return fmt.Errorf("delete bootstrap token Secret %s/%s: %w", metav1.NamespaceSystem, name, err)
	}
	return nil
}
