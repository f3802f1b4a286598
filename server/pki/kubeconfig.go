package pki

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/iks-dev/iks/internal/fsutil"
)

// kubeconfigName is the cluster and context name in every kubeconfig.
const kubeconfigName = "iks"

// WriteKubeconfig writes, atomically and with mode 0600, a kubeconfig at
// path for the client certificate at certPath/keyPath talking to serverURL
// (https://host:port) and trusting caPEM. The CA is embedded; the client
// certificate and key are referenced by absolute path, so renewed files are
// picked up without rewriting the kubeconfig. Cluster and context are named
// "iks", the user after the certificate's common name. An identical existing
// file is left untouched.
func WriteKubeconfig(path, serverURL string, caPEM []byte, certPath, keyPath string) error {
	return writeKubeconfig(path, serverURL, caPEM, certPath, keyPath, false)
}

// WriteEmbeddedKubeconfig is WriteKubeconfig with the client certificate and
// key embedded, so the file is self-contained and can be copied elsewhere
// (the admin kubeconfig at /etc/iks/iks.yaml). Rewrite it after the
// certificate is renewed.
func WriteEmbeddedKubeconfig(path, serverURL string, caPEM []byte, certPath, keyPath string) error {
	return writeKubeconfig(path, serverURL, caPEM, certPath, keyPath, true)
}

func writeKubeconfig(path, serverURL string, caPEM []byte, certPath, keyPath string, embed bool) error {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("kubeconfig %s: server URL %q is not of the form https://host:port", path, serverURL)
	}
	if _, err := parseCertPEM(caPEM); err != nil {
		return fmt.Errorf("kubeconfig %s: CA bundle: %w; pass the content of the cluster CA certificate", path, err)
	}
	certPath, err = filepath.Abs(certPath)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: client certificate path: %w", path, err)
	}
	keyPath, err = filepath.Abs(keyPath)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: client key path: %w", path, err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: read client certificate: %w", path, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: read client key: %w", path, err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("kubeconfig %s: client certificate %s and key %s are not a valid pair: %w", path, certPath, keyPath, err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: client certificate %s: %w", path, certPath, err)
	}
	user := cert.Subject.CommonName
	if user == "" {
		return fmt.Errorf("kubeconfig %s: client certificate %s has an empty common name: issue it with a user name", path, certPath)
	}

	auth := &clientcmdapi.AuthInfo{ClientCertificate: certPath, ClientKey: keyPath}
	if embed {
		auth = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[kubeconfigName] = &clientcmdapi.Cluster{Server: serverURL, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = auth
	cfg.Contexts[kubeconfigName] = &clientcmdapi.Context{Cluster: kubeconfigName, AuthInfo: user}
	cfg.CurrentContext = kubeconfigName
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: encode: %w", path, err)
	}

	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if info, err := os.Stat(path); err == nil && info.Mode().Perm() == keyMode {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("kubeconfig %s: create parent directory: %w", path, err)
	}
	return fsutil.WriteFileAtomic(path, data, keyMode)
}
