package e2e

import (
	"context"
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
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/tests/testutil"
)

// TestExternalDatastoreShared runs a cluster whose servers both live on
// an external etcd, as k3s users run one: a plain etcd member (started
// by the test inside the router namespace, plain http, empty) is the
// datastore of the first server and of a second one joining it with
// --server. Neither server runs an etcd member, both apiservers serve the
// same objects, iks writes nothing outside /registry/, the first server
// warns that the datastore is plain http and restarts on it.
func TestExternalDatastoreShared(t *testing.T) {
	testutil.RequireRoot(t)
	nw := testutil.NewNetwork(t, "dx", 80)
	ep := "http://" + nw.IP("a", 254) + ":2379"
	startRouterEtcd(t, nw, ep)
	ec := routerEtcdClient(t, nw, ep)

	s1 := testutil.NewNodeOn(t, "dx1", nw, "a", 10)
	s1.Start("--disable-agent", "--datastore-endpoint", ep)
	token := waitTokenFile(t, s1, 3*time.Minute)
	testutil.WaitControlPlaneReady(t, s1, 4*time.Minute)
	url1 := "https://" + s1.IP + ":6443"
	s2 := testutil.NewNodeOn(t, "dx2", nw, "b", 11)
	s2.Start("--disable-agent", "--server", url1, "--token", token, "--datastore-endpoint", ep)
	testutil.WaitControlPlaneReady(t, s2, 4*time.Minute)

	t.Run("the servers run no etcd and write only under /registry/", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		list, err := ec.MemberList(ctx)
		if err != nil || len(list.Members) != 1 || list.Members[0].Name != "external" {
			t.Errorf("etcd members %v (%v), want the external member alone", list, err)
		}
		for _, s := range []*testutil.Node{s1, s2} {
			if _, err := os.Stat(filepath.Join(s.DataDir, "server", "db", "etcd")); !os.IsNotExist(err) {
				t.Errorf("%s has an etcd data dir: %v", s.Name, err)
			}
		}
		r, err := ec.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		registry := 0
		for _, kv := range r.Kvs {
			if !strings.HasPrefix(string(kv.Key), "/registry/") {
				t.Errorf("key outside /registry/: %q", kv.Key)
			} else {
				registry++
			}
		}
		if registry == 0 {
			t.Error("no key under /registry/: the apiservers did not use this etcd")
		}
		if !strings.Contains(s1.Log(), "the external datastore is plain http") {
			t.Error("no warning about the plain http datastore in the first server's log")
		}
	})

	t.Run("both apiservers serve the same objects", func(t *testing.T) {
		ctx := context.Background()
		c1 := testutil.ServerClient(t, nw, s1, s1.IP, 10*time.Second)
		c2 := testutil.ServerClient(t, nw, s1, s2.IP, 10*time.Second)
		if _, err := c2.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "from-2"},
			Data: map[string]string{"k": "2"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got, err := c1.CoreV1().ConfigMaps("default").Get(ctx, "from-2", metav1.GetOptions{}); err != nil || got.Data["k"] != "2" {
			t.Errorf("server 1 reading server 2's write: %v %v", got, err)
		}
		if _, err := c1.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "from-1"},
			StringData: map[string]string{"k": "1"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got, err := c2.CoreV1().Secrets("default").Get(ctx, "from-1", metav1.GetOptions{}); err != nil || string(got.Data["k"]) != "1" {
			t.Errorf("server 2 reading (decrypting) server 1's Secret: %v %v", got, err)
		}
	})

	t.Run("the first server restarts on the datastore it created", func(t *testing.T) {
		if _, err := s1.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		s1.Start("--disable-agent", "--datastore-endpoint", ep)
		testutil.WaitControlPlaneReady(t, s1, 4*time.Minute)
		c1 := testutil.ServerClient(t, nw, s1, s1.IP, 10*time.Second)
		if _, err := c1.CoreV1().ConfigMaps("default").Get(context.Background(), "from-2", metav1.GetOptions{}); err != nil {
			t.Errorf("server 1 after its restart: %v", err)
		}
	})
}

// startRouterEtcd runs a one-member etcd serving clients on ep inside the
// router namespace (its sockets are made there), stopped at cleanup.
func startRouterEtcd(t *testing.T, nw *testutil.Network, ep string) {
	t.Helper()
	c := embed.NewConfig()
	c.Name = "external"
	c.Dir = filepath.Join(t.TempDir(), "etcd")
	client, _ := url.Parse(ep)
	peer, _ := url.Parse("http://127.0.0.1:2380")
	c.ListenClientUrls, c.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	c.ListenPeerUrls, c.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	c.InitialCluster = c.Name + "=" + peer.String()
	c.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	c.EnableGRPCGateway = false // it would dial ep from outside the namespace
	var e *embed.Etcd
	if err := nw.Router.Do(func() (err error) { e, err = embed.StartEtcd(c); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		t.Fatal("the external etcd did not start in 1m")
	}
}

// routerEtcdClient is a client of the etcd at ep, dialled from the router
// namespace.
func routerEtcdClient(t *testing.T, nw *testutil.Network, ep string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return nw.Router.DialContext(ctx, "tcp", addr)
		})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
