package etcdsnap

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

const caHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// freePort returns a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startEtcd runs a member on loopback in dir and returns a client.
func startEtcd(t *testing.T, dir string) *clientv3.Client {
	t.Helper()
	c := embed.NewConfig()
	c.Name = "iks"
	c.Dir = dir
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	c.ListenClientUrls, c.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	c.ListenPeerUrls, c.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	c.InitialCluster = "iks=" + pu.String()
	c.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		t.Fatal("etcd not ready")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{cu.String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestSaveVerifyRestore(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	cli := startEtcd(t, filepath.Join(root, "etcd"))
	if _, err := cli.Put(ctx, "/registry/configmaps/default/a", "before"); err != nil {
		t.Fatal(err)
	}
	snaps := filepath.Join(root, "snapshots")
	m, err := Save(ctx, SaveOptions{Dir: snaps, Prefix: OnDemandPrefix, Node: "n1", CAHash: caHash, Client: cli, Now: time.Unix(1000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(snaps, m.Name)
	if m.Name != "on-demand-n1-1000" || m.Size == 0 {
		t.Fatalf("meta %+v", m)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(snaps, "*"+partSuffix)); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	if _, err := Verify(path, caHash); err != nil {
		t.Fatalf("Verify of a good snapshot: %v", err)
	}
	if _, err := Verify(path, strings.Repeat("f", 64)); err == nil || !strings.Contains(err.Error(), "another cluster") {
		t.Errorf("foreign snapshot: %v", err)
	}
	data, _ := os.ReadFile(path)
	bad := filepath.Join(root, "bad")
	data[len(data)/3] ^= 1
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(bad, caHash); err == nil || !strings.Contains(err.Error(), "metadata file") {
		t.Errorf("snapshot without metadata: %v", err)
	}
	meta, _ := os.ReadFile(MetaPath(path))
	if err := os.WriteFile(MetaPath(bad), meta, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(bad, caHash); err == nil || !strings.Contains(err.Error(), "is corrupt") {
		t.Errorf("corrupt snapshot: %v", err)
	}

	// Restore into a new member dir, keeping the one in the way.
	target := filepath.Join(root, "restored")
	if err := os.MkdirAll(filepath.Join(target, "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	old, err := Restore(RestoreOptions{Snapshot: path, EtcdDir: target, Name: "iks", PeerURL: "http://127.0.0.1:2380", Now: time.Unix(2000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if old != target+"-old-2000" {
		t.Errorf("previous data kept at %q", old)
	}
	if _, err := os.Stat(filepath.Join(old, "member")); err != nil {
		t.Errorf("previous data not kept: %v", err)
	}
	cli2 := startEtcd(t, target)
	resp, err := cli2.Get(ctx, "/registry/configmaps/default/a")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "before" {
		t.Fatalf("restored member: %v %v", err, resp)
	}
	if resp.Header.Revision < revisionBump {
		t.Errorf("revision %d not bumped past %d", resp.Header.Revision, revisionBump)
	}
}

func TestPruneKeepsOnDemandAndNewestScheduled(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, sched bool, at int64) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := writeMeta(p, &Meta{Name: name, Scheduled: sched, Created: time.Unix(at, 0), SHA256: "x", ClusterCAHash: caHash}); err != nil {
			t.Fatal(err)
		}
	}
	mk("etcd-snapshot-n-1", true, 1)
	mk("on-demand-n-2", false, 2)
	mk("etcd-snapshot-n-3", true, 3)
	mk("etcd-snapshot-n-4", true, 4)
	if err := os.WriteFile(filepath.Join(dir, "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	gone, err := Prune(dir, 2)
	if err != nil || len(gone) != 1 || gone[0] != "etcd-snapshot-n-1" {
		t.Fatalf("pruned %v, %v", gone, err)
	}
	es, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, filepath.Base(e.Path))
		if filepath.Base(e.Path) == "stray" && e.Err == nil {
			t.Error("a file without metadata listed as complete")
		}
	}
	if got := strings.Join(names, " "); got != "stray on-demand-n-2 etcd-snapshot-n-3 etcd-snapshot-n-4" {
		t.Errorf("left %q", got)
	}
	if err := Delete(dir, "../x"); err == nil {
		t.Error("Delete accepted a path")
	}
	if err := Delete(dir, "on-demand-n-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(MetaPath(filepath.Join(dir, "on-demand-n-2"))); !os.IsNotExist(err) {
		t.Errorf("metadata left after Delete: %v", err)
	}
}

func TestParseSchedule(t *testing.T) {
	if s, err := ParseSchedule(DefaultSchedule); err != nil || s == nil {
		t.Fatalf("default: %v", err)
	}
	if s, err := ParseSchedule(""); err != nil || s != nil {
		t.Fatalf("empty disables: %v %v", s, err)
	}
	if _, err := ParseSchedule("every noon"); err == nil || !strings.Contains(err.Error(), "five fields") {
		t.Fatalf("bad: %v", err)
	}
}
