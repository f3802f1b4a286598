package tunnel

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/keepalive"
)

// maxUDSPath is the longest socket path Linux accepts (sun_path is 108
// bytes including the terminating NUL).
const maxUDSPath = 107

// Keepalives. The agent pings every 30s when idle (allowed from 10s on),
// and the server pings agents every 30s, so either side notices a dead
// peer behind a network cut within about 40s.
var (
	frontendKeepalive = keepalive.ServerParameters{Time: time.Hour} // local socket: the upstream default
	backendKeepalive  = keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}
	backendEnforce    = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
)

func validateUDSPath(path string) error {
	switch {
	case path == "":
		return errors.New("konnectivity socket path is empty: set it, e.g. <data-dir>/run/konnectivity/konnectivity-server.sock")
	case !filepath.IsAbs(path):
		return fmt.Errorf("konnectivity socket path %q is relative: use an absolute path", path)
	case len(path) > maxUDSPath:
		return fmt.Errorf("konnectivity socket path %q is %d bytes, longer than the %d Linux allows: use a shorter data dir", path, len(path), maxUDSPath)
	}
	return nil
}

// ensureSocketDir creates the socket's directory 0700 (only root, which
// runs kube-apiserver in the same process, may dial the socket).
func ensureSocketDir(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create konnectivity socket directory %s: %w (check that the data dir is writable)", dir, err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("konnectivity socket directory %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("konnectivity socket directory %s is not a directory: move it away", dir)
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("set mode 0700 on konnectivity socket directory %s: %w", dir, err)
		}
	}
	return nil
}

// listenUnix listens on path, replacing a stale socket left by a previous
// run but refusing to steal one that is still served, or to delete a file
// that is not a socket.
func listenUnix(path string) (net.Listener, error) {
	if info, err := os.Lstat(path); err == nil {
		if info.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("konnectivity socket path %s exists and is not a socket: move it away or choose another data dir", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("konnectivity socket %s is served by another process: stop it (another iks server on this data dir?)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale konnectivity socket %s: %w", path, err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on konnectivity socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("set mode 0600 on konnectivity socket %s: %w", path, err)
	}
	return lis, nil
}

// serverTLSConfig serves certFile/keyFile to agents and requires a client
// certificate signed by the CA in caFile.
func serverTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("konnectivity server certificate %s / key %s: %w (point to the apiserver serving pair)", certFile, keyFile, err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("konnectivity cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("konnectivity cluster CA %s holds no PEM certificate: point to the cluster CA certificate", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
