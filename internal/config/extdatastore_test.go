package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// writePair writes a self-signed certificate and its key under dir as
// NAME.crt and NAME.key, valid until notAfter.
func writePair(t *testing.T, dir, name string, notAfter time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	crt, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return crt, k
}

func TestExternalDatastoreFlags(t *testing.T) {
	dir := t.TempDir()
	ca, _ := writePair(t, dir, "ca", time.Now().Add(time.Hour))
	cert, key := writePair(t, dir, "client", time.Now().Add(time.Hour))
	_, otherKey := writePair(t, dir, "other", time.Now().Add(time.Hour))
	oldCert, oldKey := writePair(t, dir, "old", time.Now().Add(-time.Hour))
	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	missing := filepath.Join(dir, "nope.crt")
	tlsFiles := []string{"--datastore-cafile", ca, "--datastore-certfile", cert, "--datastore-keyfile", key}
	for _, c := range []struct {
		args []string
		want []string // all in the error; nil accepts
	}{
		{append([]string{"--datastore-endpoint", "https://etcd1:2379,https://10.0.0.7:2379"}, tlsFiles...), nil},
		{[]string{"--datastore-endpoint", "https://etcd1:2379", "--datastore-endpoint", "https://etcd2:2379/"}, nil},
		{[]string{"--datastore-endpoint", "http://etcd1:2379"}, nil},
		{[]string{"--datastore-endpoint", "etcd1:2379"}, []string{`"etcd1:2379" is not an etcd client URL`, "https://HOST:PORT"}},
		{[]string{"--datastore-endpoint", "https://etcd1:2379/registry"}, []string{`"https://etcd1:2379/registry" is not an etcd client URL`}},
		{[]string{"--datastore-endpoint", "mysql://root:pw@tcp(db:3306)/k3s"}, []string{"etcd only", "kine"}},
		{[]string{"--datastore-endpoint", "https://root:secret@etcd1:2379"}, []string{`"https://root:xxxxx@etcd1:2379" holds credentials`, "client certificate"}},
		{[]string{"--datastore-endpoint", "https://etcd1"}, []string{`"https://etcd1" has no port`, "https://etcd1:2379"}},
		{[]string{"--datastore-endpoint", "https://etcd1:2379,http://etcd2:2379"}, []string{"mixes https:// and http://"}},
		{[]string{"--datastore-endpoint", "http://etcd1:2379", "--datastore-cafile", ca}, []string{"--datastore-cafile", "plain http://", "use https://"}},
		{[]string{"--datastore-endpoint", "https://etcd1:2379", "--datastore-cafile", missing}, []string{`--datastore-cafile "` + missing + `" cannot be read`, "no such file"}},
		{[]string{"--datastore-endpoint", "https://etcd1:2379", "--datastore-cafile", notPEM}, []string{`--datastore-cafile "` + notPEM + `" holds no PEM certificate`, "--trusted-ca-file"}},
		{[]string{"--datastore-endpoint", "https://etcd1:2379", "--datastore-certfile", cert, "--datastore-keyfile", otherKey},
			[]string{`--datastore-certfile "` + cert + `" and --datastore-keyfile "` + otherKey + `" are not a certificate and its key`, "pass the key that belongs"}},
		{[]string{"--datastore-endpoint", "https://etcd1:2379", "--datastore-certfile", cert}, []string{"go together", "pass both"}},
		{[]string{"--datastore-endpoint", "https://etcd1:2379", "--datastore-certfile", oldCert, "--datastore-keyfile", oldKey}, []string{"expired", "renew"}},
		{[]string{"--datastore-certfile", cert}, []string{"without --datastore-endpoint", "--datastore-endpoint https://ETCD:2379"}},
		{[]string{"--datastore-endpoint", "https://etcd1:2379", "--cluster-reset"}, []string{"--cluster-reset", "https://etcd1:2379", "etcdutl snapshot restore"}},
		{[]string{"--datastore-endpoint", "https://etcd1:2379", "--cluster-init"}, []string{"drop --cluster-init", "--server https://THIS:6443"}},
	} {
		s, err := flags(t, c.args...).Validate(goodEnv())
		if c.want == nil {
			if err != nil {
				t.Errorf("%v: refused: %v", c.args, err)
			} else if s.Datastore.External == nil || !s.HA.Enabled() {
				t.Errorf("%v: no external datastore (%+v) or HA not enabled", c.args, s.Datastore)
			}
			continue
		}
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: got %v, want %q", c.args, err, w)
			}
		}
	}
}

func TestExternalDatastoreFilesAreAbsolute(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir, "client", time.Now().Add(time.Hour))
	t.Chdir(dir)
	s, err := flags(t, "--datastore-endpoint", "https://etcd1:2379", "--datastore-certfile", "client.crt", "--datastore-keyfile", "./client.key").Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if e := s.Datastore.External; e.CertFile != filepath.Join(dir, "client.crt") || e.KeyFile != filepath.Join(dir, "client.key") || e.CAFile != "" {
		t.Errorf("files %+v, want absolute paths under %s", e, dir)
	}
}

func TestExternalDatastoreSkipsEtcdPorts(t *testing.T) {
	env := goodEnv()
	env.busy = map[int]bool{2379: true, 2380: true}
	if _, err := flags(t).Validate(env); err == nil || !strings.Contains(err.Error(), "port 2379") {
		t.Fatalf("embedded etcd with port 2379 busy: %v", err)
	}
	if _, err := flags(t, "--datastore-endpoint", "https://127.0.0.1:2379").Validate(env); err != nil {
		t.Fatalf("external etcd on this host's 2379 refused: %v", err)
	}
}

func TestConfigFileDatastoreKeys(t *testing.T) {
	var f ServerFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs)
	p := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(p, []byte("datastore-endpoint:\n- https://e1:2379\n- https://e2:2379\ndatastore-cafile: /ca.crt\n"+
		"datastore-certfile: /c.crt\ndatastore-keyfile: /c.key\n"), 0o600)
	if err := ApplyFile(fs, p, true); err != nil {
		t.Fatal(err)
	}
	d := f.Datastore
	if strings.Join(d.Endpoints, ",") != "https://e1:2379,https://e2:2379" || d.CAFile != "/ca.crt" || d.CertFile != "/c.crt" || d.KeyFile != "/c.key" {
		t.Fatalf("got %+v", d)
	}
}

// TestDatastoreKindCannotSwitch: a data dir records its datastore; a
// start with the other kind is refused before writing, naming the fix.
func TestDatastoreKindCannotSwitch(t *testing.T) {
	embedded := flags(t)
	s, err := embedded.Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordClusterInfo(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.DataDir, "server", "cluster.json")
	before, _ := os.ReadFile(p)
	if !strings.Contains(string(before), `"kind": "embedded"`) {
		t.Fatalf("datastore kind not recorded: %s", before)
	}
	embedded.Datastore.Endpoints = []string{"https://etcd1:2379"}
	_, err = embedded.Validate(goodEnv())
	for _, w := range []string{"keeps its cluster state in the embedded etcd", "--datastore-endpoint https://etcd1:2379", "drop --datastore-endpoint", "new --data-dir"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("embedded -> external: got %v, want %q", err, w)
		}
	}
	if after, _ := os.ReadFile(p); string(after) != string(before) {
		t.Error("cluster.json changed by a refused start")
	}

	external := flags(t, "--datastore-endpoint", "https://etcd1:2379,https://etcd2:2379")
	s, err = external.Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordClusterInfo(); err != nil {
		t.Fatal(err)
	}
	ci, err := ReadClusterInfo(s.DataDir)
	if err != nil || !ci.Datastore.External() || strings.Join(ci.Datastore.Endpoints, ",") != "https://etcd1:2379,https://etcd2:2379" {
		t.Fatalf("external datastore not recorded: %+v %v", ci.Datastore, err)
	}
	if _, err := external.Validate(goodEnv()); err != nil {
		t.Fatalf("same datastore refused: %v", err)
	}
	external.Datastore.Endpoints = nil
	_, err = external.Validate(goodEnv())
	for _, w := range []string{"keeps its cluster state in the external datastore https://etcd1:2379,https://etcd2:2379", "pass --datastore-endpoint https://etcd1:2379,https://etcd2:2379"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("external -> embedded: got %v, want %q", err, w)
		}
	}
}

// TestOldDataDirIsEmbedded: cluster.json without a datastore record was
// written by an iks that had only the embedded etcd.
func TestOldDataDirIsEmbedded(t *testing.T) {
	f := flags(t, "--datastore-endpoint", "https://etcd1:2379")
	p := filepath.Join(f.DataDir, "server", "cluster.json")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte(`{"format":1,"clusterCIDR":"172.30.0.0/16","serviceCIDR":"172.21.0.0/16","clusterDomain":"cluster.local","ipamBlockSize":26}`), 0o600)
	if _, err := f.Validate(goodEnv()); err == nil || !strings.Contains(err.Error(), "embedded etcd") {
		t.Fatalf("old data dir with --datastore-endpoint: %v", err)
	}
	f.Datastore.Endpoints = nil
	s, err := f.Validate(goodEnv())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordClusterInfo(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); !strings.Contains(string(data), `"kind": "embedded"`) || !strings.Contains(string(data), `"ipamBlockSize": 26`) {
		t.Fatalf("old cluster.json not completed: %s", data)
	}
}
