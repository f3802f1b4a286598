package bootstrap

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/iks-dev/iks/internal/nodeclaim"
)

const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests"

// claimAPI is fakeAPI plus the CSR endpoints a claim uses; owners maps a
// node name to the key hash that owns it (the first claim wins).
type claimAPI struct {
	*fakeAPI
	mu     sync.Mutex
	owners map[string]string
	csrs   map[string]*certv1.CertificateSigningRequest
}

func (c *claimAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, csrPath) {
		c.fakeAPI.ServeHTTP(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+c.accept {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == csrPath:
		var csr certv1.CertificateSigningRequest
		if err := json.NewDecoder(r.Body).Decode(&csr); err != nil || csr.Spec.SignerName != nodeclaim.SignerName {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		node, hash, err := nodeclaim.ParseRequest(csr.Spec.Request)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		cond := certv1.CertificateSigningRequestCondition{Type: certv1.CertificateApproved, Status: corev1.ConditionTrue}
		if owner, ok := c.owners[node]; !ok {
			c.owners[node] = hash
		} else if owner != hash {
			cond = certv1.CertificateSigningRequestCondition{Type: certv1.CertificateDenied, Status: corev1.ConditionTrue,
				Message: `node name "` + node + `" is already taken by another machine`}
		}
		csr.Name = csr.GenerateName + "x"
		csr.APIVersion, csr.Kind = "certificates.k8s.io/v1", "CertificateSigningRequest"
		created := csr.DeepCopy()
		csr.Status.Conditions = []certv1.CertificateSigningRequestCondition{cond}
		c.csrs[csr.Name] = &csr
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(created)
	case r.Method == http.MethodGet && c.csrs[strings.TrimPrefix(r.URL.Path, csrPath+"/")] != nil:
		_ = json.NewEncoder(w).Encode(c.csrs[strings.TrimPrefix(r.URL.Path, csrPath+"/")])
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestJoinClaimsNodeNameAndRefusesATakenOne(t *testing.T) {
	ca := newTestCA(t)
	tok := ca.token(t)
	api := &claimAPI{fakeAPI: &fakeAPI{accept: tok.Bootstrap()}, owners: map[string]string{},
		csrs: map[string]*certv1.CertificateSigningRequest{}}
	srv := serve(t, api, []tls.Certificate{ca.serving}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	keyFile := filepath.Join(t.TempDir(), "node-password.key")
	if _, err := join(ctx, srv.URL, tok, filepath.Join(t.TempDir(), "cred"), Node{Name: "vm", KeyFile: keyFile}, discard(), fast); err != nil {
		t.Fatalf("first machine: %v", err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node password %s: %v (mode %v), want mode 0600", keyFile, err, fi.Mode().Perm())
	}
	// The same machine again: the key is read back from its file.
	if _, err := join(ctx, srv.URL, tok, filepath.Join(t.TempDir(), "cred"), Node{Name: "vm", KeyFile: keyFile}, discard(), fast); err != nil {
		t.Fatalf("same machine rejoining with its key: %v", err)
	}

	// A clone: same name, its own key.
	cloneKey := filepath.Join(t.TempDir(), "node-password.key")
	dir := filepath.Join(t.TempDir(), "cred")
	_, err := join(ctx, srv.URL, tok, dir, Node{Name: "vm", KeyFile: cloneKey}, discard(), fast)
	if !errors.Is(err, ErrNodeNameTaken) {
		t.Fatalf("clone: err = %v, want ErrNodeNameTaken", err)
	}
	for _, want := range []string{`"vm"`, "--node-name NAME", "--with-node-id", "iks kubectl delete node vm"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not contain %q", err, want)
		}
	}
	assertNothingWritten(t, dir)
}
