package token

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
)

func getSecret(t *testing.T, cs *fake.Clientset, id string) *corev1.Secret {
	t.Helper()
	s, err := cs.CoreV1().Secrets("kube-system").Get(context.Background(), "bootstrap-token-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateListDelete(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	tok, err := Create(ctx, cs, testHash, 24*time.Hour, "for edge-7")
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Validate(); err != nil || tok.CAHash != testHash {
		t.Fatalf("created token %v: %v", tok, err)
	}
	s := getSecret(t, cs, tok.ID)
	if s.Type != bootstrapapi.SecretTypeBootstrapToken {
		t.Errorf("type = %q", s.Type)
	}
	want := map[string]string{
		"token-id": tok.ID, "token-secret": tok.Secret, "usage-bootstrap-authentication": "true",
		"usage-bootstrap-signing": "true", "auth-extra-groups": "system:bootstrappers:iks:default-node-token",
		"description": "for edge-7",
	}
	for k, v := range want {
		if string(s.Data[k]) != v {
			t.Errorf("data[%s] = %q, want %q", k, s.Data[k], v)
		}
	}
	exp, err := time.Parse(time.RFC3339, string(s.Data["expiration"]))
	if err != nil {
		t.Fatalf("expiration %q is not RFC3339: %v", s.Data["expiration"], err)
	}
	if d := time.Until(exp); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("expires in %v, want ~24h", d)
	}

	forever, err := Create(ctx, cs, testHash, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := getSecret(t, cs, forever.ID).Data["expiration"]; ok {
		t.Error("ttl 0 set an expiration")
	}
	// A Secret of another type in kube-system is not listed.
	if _, err := cs.CoreV1().Secrets("kube-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "kube-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	infos, err := List(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{tok.ID, forever.ID}
	slices.Sort(ids)
	if len(infos) != 2 || infos[0].ID != ids[0] || infos[1].ID != ids[1] {
		t.Fatalf("List = %+v, want IDs %v", infos, ids)
	}
	for _, in := range infos {
		if in.ID == tok.ID {
			if in.Description != "for edge-7" || in.Expires.IsZero() || in.Expired(time.Now()) ||
				!slices.Equal(in.Usages, []string{"authentication", "signing"}) || !slices.Equal(in.Groups, []string{NodeGroup}) {
				t.Errorf("info = %+v", in)
			}
			if !in.Expired(time.Now().Add(25 * time.Hour)) {
				t.Error("token not reported expired after its TTL")
			}
		} else if !in.Expires.IsZero() {
			t.Errorf("never-expiring token listed with expiry %v", in.Expires)
		}
	}

	if err := Delete(ctx, cs, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := Delete(ctx, cs, tok.ID); err == nil || !strings.Contains(err.Error(), "iks token list") {
		t.Errorf("second Delete: %v, want a not-found error pointing at `iks token list`", err)
	}
	if err := Delete(ctx, cs, "../x"); err == nil || !strings.Contains(err.Error(), `"../x"`) {
		t.Errorf("Delete with a bad ID: %v", err)
	}
	if _, err := Create(ctx, cs, testHash, -time.Hour, ""); err == nil {
		t.Error("negative TTL accepted")
	}
}

func TestEnsureSecretCreatesAndCorrects(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	tok := Token{CAHash: testHash, ID: "abc123", Secret: testSecret}
	if err := EnsureSecret(ctx, cs, tok, ServerTokenDescription); err != nil {
		t.Fatal(err)
	}
	s := getSecret(t, cs, tok.ID)
	if _, ok := s.Data["expiration"]; ok {
		t.Error("server token Secret has an expiration")
	}
	// Someone adds an expiry: the next start removes it.
	s.Data["expiration"] = []byte(time.Now().Format(time.RFC3339))
	if _, err := cs.CoreV1().Secrets("kube-system").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSecret(ctx, cs, tok, ServerTokenDescription); err != nil {
		t.Fatal(err)
	}
	if _, ok := getSecret(t, cs, tok.ID).Data["expiration"]; ok {
		t.Error("EnsureSecret kept the added expiration")
	}
	rv := getSecret(t, cs, tok.ID).ResourceVersion
	if err := EnsureSecret(ctx, cs, tok, ServerTokenDescription); err != nil {
		t.Fatal(err)
	}
	if getSecret(t, cs, tok.ID).ResourceVersion != rv {
		t.Error("EnsureSecret rewrote an unchanged Secret")
	}
}

func TestTokensComponent(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	dir := t.TempDir()
	probes := 0
	probe := func(ctx context.Context, tok Token) error {
		probes++
		// The token file must not exist before the token is accepted,
		// and its Secret must already be there.
		if _, err := os.Stat(ServerTokenPath(dir)); !os.IsNotExist(err) {
			t.Errorf("probe %d: token file exists before the token is accepted (stat: %v)", probes, err)
		}
		if _, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+tok.ID, metav1.GetOptions{}); err != nil {
			t.Errorf("probe %d: token Secret missing: %v", probes, err)
		}
		if probes < 3 {
			return errors.New("401 Unauthorized")
		}
		return nil
	}
	c := New(Config{DataDir: dir, CAHash: testHash, FromFlag: "a passphrase of enough length", Client: cs, Probe: probe},
		slog.New(slog.DiscardHandler))
	if err := c.Start(ctx); err == nil {
		t.Error("Start before Init succeeded")
	}
	if err := c.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ServerTokenPath(dir)); !os.IsNotExist(err) {
		t.Errorf("Init wrote the token file (stat: %v)", err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if probes != 3 {
		t.Errorf("token probed %d times, want 3 (two refusals, then accepted)", probes)
	}
	tok := c.Token()
	recorded, err := ReadServerToken(dir)
	if err != nil || recorded != tok {
		t.Fatalf("recorded token %v (%v), component token %v", recorded, err, tok)
	}
	s := getSecret(t, cs, tok.ID)
	if string(s.Data["token-secret"]) != tok.Secret {
		t.Error("server token Secret does not hold the recorded secret")
	}
	if err := c.Stop(ctx); err != nil {
		t.Error(err)
	}
}
