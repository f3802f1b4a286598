package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// HA makes the member one of several: peers and clients on the node IP,
// named after the node, and, when Join is set, added to the cluster the
// Join endpoints serve (as a learner, promoted once it caught up).
type HA struct {
	Name   string      // member name: the node name
	NodeIP string      // where peers and other servers reach this member
	Join   []string    // client URLs of running members; nil for the first server
	Client ClientFiles // identity used to add the member
}

// PeerURLOf and ClientURLOf are the URLs of the member on host ip.
func PeerURLOf(ip string) string   { return "https://" + hostPort(ip, 2380) }
func ClientURLOf(ip string) string { return "https://" + hostPort(ip, 2379) }

func hostPort(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}

// haConfig turns c into the configuration of an HA member; for a new
// member joining a cluster it adds the member first.
func (e *Etcd) haConfig(ctx context.Context, c *embed.Config) error {
	h := e.cfg.HA
	peer, _ := url.Parse(PeerURLOf(h.NodeIP))
	client, _ := url.Parse(ClientURLOf(h.NodeIP))
	local, _ := url.Parse(ClientURL)
	c.Name = h.Name
	c.ListenPeerUrls, c.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	c.ListenClientUrls = []url.URL{*local, *client}
	c.AdvertiseClientUrls = []url.URL{*client}
	c.InitialCluster = h.Name + "=" + peer.String()
	if len(h.Join) == 0 || hasMember(e.cfg.DataDir) {
		return nil
	}
	initial, err := addLearner(ctx, h, peer.String(), e.log)
	if err != nil {
		return err
	}
	c.InitialCluster = initial
	c.ClusterState = embed.ClusterStateFlagExisting
	return nil
}

// hasMember reports whether dir already holds a member's data.
func hasMember(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "member", "wal"))
	return err == nil
}

// addAttemptTimeout bounds one MemberAddAsLearner call.
const addAttemptTimeout = 15 * time.Second

// addLearner adds this member as a learner (or finds it added by an
// earlier attempt) and returns the initial-cluster string to start it with.
func addLearner(ctx context.Context, h *HA, peer string, log *slog.Logger) (string, error) {
	cli, err := NewClient(h.Client, h.Join...)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return "", fmt.Errorf("list the etcd members at %v: %w (is etcd on the first server reachable on port 2379?)", h.Join, err)
	}
	found := false
	for _, m := range list.Members {
		if slices.Contains(m.PeerURLs, peer) {
			if m.Name != "" && m.Name != h.Name {
				return "", fmt.Errorf("etcd member %s already uses peer URL %s: remove it first (iks server remove %s) or use another --node-ip", m.Name, peer, m.Name)
			}
			found = true
		} else if m.Name == h.Name {
			return "", fmt.Errorf("an etcd member named %s already exists at %v: a node name must be unique; remove the old server first or pass another --node-name", h.Name, m.PeerURLs)
		}
	}
	for !found {
		// One attempt may hang on a busy cluster (seen under load: a
		// call that never returned): bound each, then look whether it
		// was applied before trying again.
		actx, acancel := context.WithTimeout(ctx, addAttemptTimeout)
		resp, err := cli.MemberAddAsLearner(actx, []string{peer})
		acancel()
		if err == nil {
			list.Members = resp.Members
			break
		}
		why := retryableAdd(err)
		if why == "" {
			return "", fmt.Errorf("add this server as an etcd learner: %w", err)
		}
		log.Info("etcd member add refused for now; retrying", "why", why, "err", err.Error())
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("add this server as an etcd learner: %s, and still so after 3 minutes: %w", why, err)
		case <-time.After(time.Second):
		}
		if now, lerr := cli.MemberList(ctx); lerr == nil {
			for _, m := range now.Members {
				if slices.Contains(m.PeerURLs, peer) {
					list, found = now, true
				}
			}
		}
	}
	var parts []string
	for _, m := range list.Members {
		name := m.Name
		if slices.Contains(m.PeerURLs, peer) {
			name = h.Name
		}
		if name == "" {
			continue // another member still joining
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, name+"="+u)
		}
	}
	return strings.Join(parts, ","), nil
}

// retryableAdd says why a refused member add is worth retrying ("" when
// it is not): etcd takes one learner at a time (another server is joining),
// and with its strict reconfiguration check refuses any add until every
// voter has been connected for 5 s (a server that just joined or
// restarted) or while it has no leader.
func retryableAdd(err error) string {
	for _, c := range []struct{ msg, why string }{
		{"too many learner members", "another server is joining (etcd takes one learner at a time)"},
		{"unhealthy cluster", "a voting member is not connected yet (a server that just joined or restarted)"},
		{"not enough started members", "a voting member has not started yet"},
		{"no leader", "etcd is electing a leader"},
		{"leader changed", "etcd is electing a leader"},
		{"request timed out", "etcd is busy"},
		{"deadline exceeded", "an attempt hung (a busy cluster); it may have been applied"},
	} {
		if strings.Contains(err.Error(), c.msg) {
			return c.why
		}
	}
	return ""
}

// promote makes this learner a voting member once it caught up.
func (e *Etcd) promote(ctx context.Context) error {
	h := e.cfg.HA
	cli, err := NewClient(h.Client, append([]string{ClientURL}, h.Join...)...)
	if err != nil {
		return err
	}
	defer cli.Close()
	id := uint64(e.etcd.Server.MemberID())
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cli.MemberPromote(cctx, id)
		cancel()
		if err == nil || errors.Is(err, rpctypes.ErrMemberNotLearner) || strings.Contains(err.Error(), "can only promote a learner") {
			e.log.Info("etcd member promoted to voter", "member", h.Name)
			return nil
		}
		e.log.Debug("etcd learner not promoted yet", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("promote etcd learner %s: %w (last: %v)", h.Name, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ensurePeerURL moves a member created as a single server (loopback peer
// URL) to its node IP when --cluster-init turns HA on.
func (e *Etcd) ensurePeerURL(ctx context.Context) error {
	h := e.cfg.HA
	want := PeerURLOf(h.NodeIP)
	cli, err := NewClient(h.Client)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id := uint64(e.etcd.Server.MemberID())
	list, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("list etcd members: %w", err)
	}
	for _, m := range list.Members {
		if m.ID == id && !slices.Equal(m.PeerURLs, []string{want}) {
			if _, err := cli.MemberUpdate(ctx, id, []string{want}); err != nil {
				return fmt.Errorf("advertise etcd peer URL %s: %w", want, err)
			}
			e.log.Info("etcd peer URL moved for HA", "from", m.PeerURLs, "to", want)
		}
	}
	return nil
}

// RemoveMember removes the member named name and returns how many remain.
// Removing the member the client is connected through is refused.
func RemoveMember(ctx context.Context, cli *clientv3.Client, name string) (int, error) {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return 0, fmt.Errorf("list etcd members: %w", err)
	}
	var names []string
	for _, m := range list.Members {
		names = append(names, m.Name)
		if m.Name != name {
			continue
		}
		if m.ID == list.Header.MemberId {
			return 0, fmt.Errorf("%s is this server's own etcd member: run iks server remove on another server", name)
		}
		if _, err := cli.MemberRemove(ctx, m.ID); err != nil {
			return 0, fmt.Errorf("remove etcd member %s: %w", name, err)
		}
		return len(list.Members) - 1, nil
	}
	return 0, fmt.Errorf("no etcd member named %s (members: %s)", name, strings.Join(names, ", "))
}

// quorumHint names the recovery path when a member of several waits.
func (e *Etcd) quorumHint() string {
	if e.cfg.HA == nil {
		return ""
	}
	return "; with several servers, etcd serves only while a majority of them runs: start the others, " +
		"or, if they are lost for good, recover from this one with `iks server --cluster-reset` " +
		"(then rejoin the others with empty data dirs)"
}

// warnEven logs a warning when the cluster has an even number of members.
func (e *Etcd) warnEven() {
	e.mu.Lock()
	et := e.etcd
	e.mu.Unlock()
	if et == nil {
		return
	}
	n := len(et.Server.Cluster().Members())
	if n > 1 && n%2 == 0 {
		e.log.Warn(fmt.Sprintf("the cluster has %d servers: an even number tolerates no more failures than %d; run an odd number", n, n-1))
	}
}
