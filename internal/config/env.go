package config

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// Env is what validation needs to know about the host. HostEnv reads the
// real host; tests substitute a fake.
type Env interface {
	EUID() int
	Hostname() (string, error)
	// LocalAddrs lists IPv4 addresses on up interfaces, default-route
	// interface first when there is one.
	LocalAddrs() ([]netip.Addr, error)
	// PortFree reports an error when addr:port cannot be bound.
	PortFree(addr netip.Addr, port int) error
	// Writable reports an error when dir (or its nearest existing parent)
	// cannot be written.
	Writable(dir string) error
	// Filesystems lists the kernel's filesystem types (/proc/filesystems).
	Filesystems() (map[string]bool, error)
	ReadFile(path string) ([]byte, error)
	// Stat reports an error when path does not exist.
	Stat(path string) error
	// LookPath finds a program in PATH, as exec.LookPath.
	LookPath(name string) (string, error)
}

// HostEnv is the real host.
type HostEnv struct{}

// EUID implements Env.
func (HostEnv) EUID() int { return os.Geteuid() }

// Hostname implements Env.
func (HostEnv) Hostname() (string, error) { return os.Hostname() }

// ReadFile implements Env.
func (HostEnv) ReadFile(p string) ([]byte, error) { return os.ReadFile(p) }

// Stat implements Env.
func (HostEnv) Stat(p string) error {
	_, err := os.Stat(p)
	return err
}

// LookPath implements Env.
func (HostEnv) LookPath(name string) (string, error) { return exec.LookPath(name) }

// LocalAddrs implements Env.
func (HostEnv) LocalAddrs() ([]netip.Addr, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	def := defaultRouteIface()
	var first, rest []netip.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok || !ip.Unmap().Is4() || !ip.IsGlobalUnicast() {
				continue
			}
			if ifc.Name == def {
				first = append(first, ip.Unmap())
			} else {
				rest = append(rest, ip.Unmap())
			}
		}
	}
	return append(first, rest...), nil
}

// defaultRouteIface returns the interface of the IPv4 default route.
func defaultRouteIface() string {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 2 && fields[1] == "00000000" && fields[2] != "Destination" {
			return fields[0]
		}
	}
	return ""
}

// PortFree implements Env.
func (HostEnv) PortFree(addr netip.Addr, port int) error {
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
	if err != nil {
		return err
	}
	return l.Close()
}

// Writable implements Env.
func (HostEnv) Writable(dir string) error {
	for d := dir; ; {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			if err := unix.Access(d, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("%s is not writable: %w", d, err)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		parent := d[:max(strings.LastIndex(d, "/"), 1)]
		if parent == d {
			return fmt.Errorf("no existing parent of %s", dir)
		}
		d = parent
	}
}

// Filesystems implements Env.
func (HostEnv) Filesystems() (map[string]bool, error) {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 {
			out[fields[len(fields)-1]] = true
		}
	}
	return out, nil
}
