package server

import (
	"errors"

	"github.com/iks-dev/iks/internal/config"
	"github.com/iks-dev/iks/server/apiserver"
	"github.com/iks-dev/iks/server/controllers"
)

// checkComponentArgs refuses, before anything is written, extra flags
// (--kube-apiserver-arg, --kube-controller-manager-arg,
// --kube-scheduler-arg) that the components would refuse at their start.
func checkComponentArgs(cfg *config.Server) error {
	return errors.Join(apiserver.CheckArgs(cfg.APIServerArgs),
		controllers.CheckControllerManagerArgs(cfg.ControllerManagerArgs),
		controllers.CheckSchedulerArgs(cfg.SchedulerArgs))
}
