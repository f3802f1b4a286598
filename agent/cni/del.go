package cni

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/iks-dev/iks/agent/ipam"
)

// Del removes the pod attachment described by args (CNI DEL). It is
// idempotent: parts already gone, an empty netns path and a netns that no
// longer exists are not errors. It must run in the host network namespace.
// The address is released last, so it cannot be handed to a new pod while
// the old route still points at this one.
func Del(args *skel.CmdArgs) error {
	conf, err := LoadNetConf(args.StdinData)
	if err != nil {
		return err
	}
	return delWithConf(conf, args)
}

func delWithConf(conf *NetConf, args *skel.CmdArgs) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	log, closeLog := conf.logger("DEL", args)
	defer closeLog()

	if err := del(conf, args, log); err != nil {
		log.Error("DEL failed", "err", err)
		return err
	}
	return nil
}

func del(conf *NetConf, args *skel.CmdArgs, log *slog.Logger) error {
	if err := validateArgs(args); err != nil {
		return err
	}
	store, err := ipam.Open(conf.IPAM.DataDir)
	if err != nil {
		return err
	}
	handle := AllocationHandle(args.ContainerID, args.IfName)
	podIP, allocated, err := store.Lookup(handle)
	if err != nil {
		return err
	}

	if err := deletePodSide(args.Netns, args.IfName, log); err != nil {
		return err
	}

	hostName := HostVethName(args.ContainerID, args.IfName)
	if allocated {
		if err := deleteHostRoute(hostName, podIP); err != nil {
			return err
		}
	}
	if deleted, err := deleteVeth(hostName); err != nil {
		return err
	} else if deleted {
		log.Info("deleted host veth", "hostVeth", hostName)
	}

	if err := store.Release(handle); err != nil {
		return fmt.Errorf("release pod address of %s: %w", handle, err)
	}
	if allocated {
		log.Info("pod detached", "ip", podIP.String())
	}
	return nil
}

// deletePodSide deletes the pod's veth end from inside its network
// namespace, tolerating an empty path and a namespace that is gone.
func deletePodSide(netnsPath, ifName string, log *slog.Logger) error {
	if netnsPath == "" {
		return nil
	}
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		_, err := deleteVeth(ifName)
		return err
	})
	var notExist ns.NSPathNotExistErr
	var notNS ns.NSPathNotNSErr
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notExist), errors.As(err, &notNS):
		// The runtime already removed the namespace, and with it the pod
		// end of the veth; the host end went away with it.
		log.Info("pod network namespace is gone; nothing to delete inside it", "reason", err.Error())
		return nil
	default:
		return fmt.Errorf("delete %s in pod network namespace %s: %w", ifName, netnsPath, err)
	}
}

// deleteHostRoute deletes this plugin's route to podIP over hostName, if both
// still exist. Routes over other interfaces are left alone: the address may
// already belong to another pod.
func deleteHostRoute(hostName string, podIP netip.Addr) error {
	link, err := netlinksafe.LinkByName(hostName)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up host veth %s: %w", hostName, err)
	}
	want := hostRoute(link, podIP)
	routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_V4, want,
		netlink.RT_FILTER_DST|netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("list host routes to %s: %w", podIP, err)
	}
	for _, r := range routes {
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete host route %s dev %s: %w", r.Dst, hostName, err)
		}
	}
	return nil
}
