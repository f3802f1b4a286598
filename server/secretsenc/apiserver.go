package secretsenc

import (
	"path/filepath"
	"time"

	"k8s.io/apiserver/pkg/server/options/encryptionconfig/controller"
)

// Setup makes sure the config exists in credDir and returns the
// kube-apiserver flags that use it. It also makes the in-process
// apiserver check the file every ReloadPoll instead of every minute, so
// rotate-keys waits seconds, not minutes, per step.
func Setup(credDir string, now time.Time) ([]string, error) {
	path := filepath.Join(credDir, FileName)
	if _, err := Ensure(path, now); err != nil {
		return nil, err
	}
	controller.EncryptionConfigFileChangePollDuration = ReloadPoll
	return []string{"--encryption-provider-config=" + path, "--encryption-provider-config-automatic-reload=true"}, nil
}
