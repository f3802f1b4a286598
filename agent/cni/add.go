package cni

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/iks-dev/iks/agent/ipam"
)

// Add wires the pod attachment described by args (CNI ADD) and returns the
// result. It must run in the host network namespace: it acts on the network
// namespace of the calling thread. On failure everything it did is undone
// and the address is released.
func Add(args *skel.CmdArgs) (*types100.Result, error) {
	conf, err := LoadNetConf(args.StdinData)
	if err != nil {
		return nil, err
	}
	return addWithConf(conf, args)
}

func addWithConf(conf *NetConf, args *skel.CmdArgs) (*types100.Result, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	log, closeLog := conf.logger("ADD", args)
	defer closeLog()

	result, err := add(conf, args, log)
	if err != nil {
		log.Error("ADD failed", "err", err)
		return nil, err
	}
	log.Info("pod attached", "ip", result.IPs[0].Address.String(), "hostVeth", result.Interfaces[0].Name)
	return result, nil
}

func add(conf *NetConf, args *skel.CmdArgs, log *slog.Logger) (_ *types100.Result, err error) {
	if err := validateArgs(args); err != nil {
		return nil, err
	}
	if args.Netns == "" {
		return nil, errors.New("CNI_NETNS is empty; ADD needs the pod network namespace path")
	}
	podNS, err := ns.GetNS(args.Netns)
	if err != nil {
		return nil, fmt.Errorf("open pod network namespace %q: %w", args.Netns, err)
	}
	defer podNS.Close()

	mtu, err := conf.podMTU()
	if err != nil {
		return nil, err
	}

	// Undo steps run in reverse order if a later step fails.
	var undo []func() error
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				log.Error("rollback step failed after ADD error", "err", uerr)
			}
		}
	}()

	store, err := ipam.Open(conf.IPAM.DataDir)
	if err != nil {
		return nil, err
	}
	handle := AllocationHandle(args.ContainerID, args.IfName)
	podIP, err := allocate(conf, store, handle, log)
	if err != nil {
		return nil, fmt.Errorf("allocate pod address for %s: %w", handle, err)
	}
	// On a repeated ADD of the same attachment the address was already held;
	// releasing it on failure is still right, as the old wiring is replaced
	// below and the runtime follows a failed ADD with DEL.
	undo = append(undo, func() error { return store.Release(handle) })

	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return nil, err
	}

	hostName := HostVethName(args.ContainerID, args.IfName)
	// The name is derived from the attachment, so an existing link of that
	// name is left over from an earlier ADD of the same attachment (a
	// runtime retry); replace it.
	if deleted, err := deleteVeth(hostName); err != nil {
		return nil, err
	} else if deleted {
		log.Warn("replaced a stale host veth of the same attachment", "hostVeth", hostName)
	}

	hostLink, err := createVeth(hostName, args.IfName, mtu, podNS)
	if err != nil {
		return nil, err
	}
	// Deleting the host end deletes the pod end and the routes over it.
	undo = append(undo, func() error { _, err := deleteVeth(hostName); return err })

	podMAC, err := configurePodSide(podNS, args.IfName, podIP)
	if err != nil {
		return nil, err
	}
	if err := configureHostSide(hostLink, podIP); err != nil {
		return nil, err
	}

	return buildResult(hostName, args, podMAC, podIP), nil
}

// buildResult returns the CNI result: the host and pod interfaces, the pod
// address on the pod interface and its default route, as chained plugins
// (portmap) and the runtime expect them.
func buildResult(hostName string, args *skel.CmdArgs, podMAC net.HardwareAddr, podIP netip.Addr) *types100.Result {
	gw := net.IP(gatewayIP.AsSlice())
	return &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{
			{Name: hostName, Mac: HostVethMAC},
			{Name: args.IfName, Mac: podMAC.String(), Sandbox: args.Netns},
		},
		IPs: []*types100.IPConfig{{
			Interface: types100.Int(1),
			Address:   *hostNet(podIP),
			Gateway:   gw,
		}},
		Routes: []*types.Route{{
			Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			GW:  gw,
		}},
	}
}

// validateArgs checks the CNI_* parameters every command needs.
func validateArgs(args *skel.CmdArgs) error {
	if args.ContainerID == "" {
		return errors.New("CNI_CONTAINERID is empty; the runtime must pass the sandbox container ID")
	}
	if args.IfName == "" {
		return errors.New("CNI_IFNAME is empty; the runtime must pass the pod interface name, e.g. eth0")
	}
	if len(args.IfName) > 15 {
		return fmt.Errorf("CNI_IFNAME %q is longer than 15 characters; use a shorter interface name such as eth0", args.IfName)
	}
	return nil
}

// allocateAttempts bounds how often ADD asks the agent for room: pods
// being added at the same time may take the addresses of a new block
// before this one gets its turn.
const allocateAttempts = 5

// allocate gets handle an address: from fixed blocks when configured,
// otherwise from the agent's block set, asking the agent for another
// block whenever the set is full.
func allocate(conf *NetConf, store *ipam.Store, handle string, log *slog.Logger) (netip.Addr, error) {
	if len(conf.IPAM.Blocks) > 0 {
		return store.Allocate(conf.IPAM.Blocks, handle)
	}
	for i := 0; ; i++ {
		ip, err := store.AllocateFromSet(handle)
		if err == nil || !errors.Is(err, ipam.ErrExhausted) || conf.IPAM.AgentSocket == "" || i == allocateAttempts {
			return ip, err
		}
		blocks, rerr := ipam.RequestBlock(context.Background(), conf.IPAM.AgentSocket)
		if rerr != nil {
			return netip.Addr{}, fmt.Errorf("%w; %w", err, rerr)
		}
		log.Info("node's blocks were full; the agent made room", "blocks", fmt.Sprint(blocks))
	}
}
