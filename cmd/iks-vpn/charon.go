package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/iks-dev/iks/internal/vpnconn"
)

// plugins charon loads: no more than a PSK/certificate IKE gateway
// needs; kernel-libipsec (before kernel-netlink) when the kernel has no
// ESP.
func plugins(dataplane string) string {
	p := []string{"random", "nonce", "openssl", "pem", "pkcs1", "x509", "pubkey", "kdf"}
	if dataplane == vpnconn.DataplaneLibipsec {
		p = append(p, "kernel-libipsec")
	}
	return strings.Join(append(p, "kernel-netlink", "socket-default", "vici"), " ")
}

// charonConf is strongswan.conf: logs to stderr (the pod's log) at
// strongswanLogging's levels (the gateway's own failure reports come
// from VICI log events, which these levels do not filter),
// retransmissions that give up after ~8 s (1 + 1.5 + 2.25 + 3.4 s;
// charon's defaults take minutes), so that with a 5 s DPD a restarted
// or vanished peer is noticed and re-initiated within ~10-13 s; the VICI
// socket in runDir.
func charonConf(runDir, dataplane string, p *vpnconn.Plan) string {
	return fmt.Sprintf(`charon-systemd {
  load = %s
  journal {
    default = -1
  }
  filelog {
    stderr {
      path = /dev/stderr
%s      ike_name = yes
    }
  }
  retransmit_timeout = 1.0
  retransmit_tries = 3
  retransmit_base = 1.5
  install_routes = yes
  plugins {
    vici {
      socket = unix://%s
    }
  }
}
`, plugins(dataplane), p.FilelogLevels("      "), viciSocket(runDir))
}

func viciSocket(runDir string) string { return filepath.Join(runDir, "charon.vici") }

// startCharon writes the configuration and starts charon; it returns
// once the VICI socket answers.
func startCharon(ctx context.Context, e *env, dataplane string, log *slog.Logger) (*exec.Cmd, error) {
	conf := filepath.Join(e.RunDir, "strongswan.conf")
	if err := os.WriteFile(conf, []byte(charonConf(e.RunDir, dataplane, e.Plan)), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", conf, err)
	}
	_ = os.Remove(viciSocket(e.RunDir))
	cmd := exec.Command(e.Charon)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+conf)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", e.Charon, err)
	}
	log.Info("charon started", "pid", cmd.Process.Pid, "dataplane", dataplane, "plugins", plugins(dataplane))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(viciSocket(e.RunDir)); err == nil {
			if s, err := dialVICI(e.RunDir); err == nil {
				_ = s.Close()
				return cmd, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("charon's VICI socket %s did not answer within 20s (see the log above)", viciSocket(e.RunDir))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
