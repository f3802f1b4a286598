package cni

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/iks-dev/iks/agent/ipam"
)

// errCodeNotAvailable is the CNI error code "the plugin is not available",
// the answer to STATUS when ADD cannot succeed.
const errCodeNotAvailable uint = 50

// Status reports whether the plugin can serve ADD (CNI STATUS): the
// configuration is valid and the IPAM state directory is usable.
func Status(args *skel.CmdArgs) error {
	conf, err := LoadNetConf(args.StdinData)
	if err != nil {
		return err
	}
	return statusWithConf(conf)
}

func statusWithConf(conf *NetConf) error {
	store, err := ipam.Open(conf.IPAM.DataDir)
	if err != nil {
		return types.NewError(errCodeNotAvailable, "IPAM state is not usable", err.Error())
	}
	if _, err := store.Usage(); err != nil {
		return types.NewError(errCodeNotAvailable, "IPAM state is not usable", err.Error())
	}
	// ADD writes the state file: the directory must be writable.
	probe, err := os.CreateTemp(store.Dir(), ".status-probe-*")
	if err != nil {
		return types.NewError(errCodeNotAvailable, "IPAM state directory is not writable", err.Error())
	}
	_ = probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return types.NewError(errCodeNotAvailable, "IPAM state directory is not writable", err.Error())
	}
	return nil
}

// GC releases the addresses of attachments that are not among the valid
// attachments the runtime lists in the configuration (CNI GC). The veths of
// such attachments went away with their network namespaces; only the
// allocations outlive them. Allocations whose handle was not made by
// AllocationHandle are left alone.
func GC(args *skel.CmdArgs) error {
	conf, err := LoadNetConf(args.StdinData)
	if err != nil {
		return err
	}
	return gcWithConf(conf, args)
}

func gcWithConf(conf *NetConf, args *skel.CmdArgs) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	log, closeLog := conf.logger("GC", args)
	defer closeLog()

	valid := make(map[string]bool, len(conf.ValidAttachments))
	for _, a := range conf.ValidAttachments {
		valid[AllocationHandle(a.ContainerID, a.IfName)] = true
	}
	store, err := ipam.Open(conf.IPAM.DataDir)
	if err != nil {
		return err
	}
	allocs, err := store.Allocations()
	if err != nil {
		return err
	}
	for _, a := range allocs {
		if valid[a.Handle] || !strings.Contains(a.Handle, "/") {
			continue
		}
		if err := store.Release(a.Handle); err != nil {
			return fmt.Errorf("release stale allocation %s (%s): %w", a.Handle, a.IP, err)
		}
		log.Info("released address of a stale attachment", "handle", a.Handle, "ip", a.IP.String())
	}
	return nil
}
