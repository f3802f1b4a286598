package routing

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// Session timers, in seconds: a peer that dies without closing its
// session is dropped after holdTime, and a peer that comes back is
// dialled again within connectRetry.
const (
	connectRetry = 5
	holdTime     = 30
	keepalive    = 10
	// idleHoldAfterReset keeps a session down after Stop reset it, so a
	// peer cannot reconnect before the speaker is gone.
	idleHoldAfterReset = 60
)

var ipv4Unicast = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}

// newBGPServer returns an embedded gobgp server logging through log;
// NOTIFICATIONs sent or received are also passed to onPeerErr. Its gRPC
// API is not started: the Router is the only client.
func newBGPServer(log *slog.Logger, onPeerErr func(peer, msg string)) *server.BgpServer {
	return server.NewBgpServer(server.LoggerOption(&slogAdapter{log: log.With("subsystem", "gobgp"), onPeerErr: onPeerErr}))
}

// startBGP starts the speaker listening on NodeIP:Port.
func (r *Router) startBGP(ctx context.Context) error {
	err := r.bgp.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:             r.cfg.ASN,
		RouterId:        r.cfg.NodeIP.String(),
		ListenPort:      int32(r.cfg.Port),
		ListenAddresses: []string{r.cfg.NodeIP.String()},
	}})
	if err != nil {
		return fmt.Errorf("routing: start BGP on %s port %d: %w; check that the node IP is on this host and the port is free", r.cfg.NodeIP, r.cfg.Port, err)
	}
	return nil
}

// syncPeers makes the configured neighbours match the peer source. A
// neighbour removed from the source (its Node deleted) is deleted at
// once, which withdraws its routes without waiting for graceful restart.
func (r *Router) syncPeers(ctx context.Context) {
	want := map[netip.Addr]Peer{}
	for _, p := range r.cfg.Peers.Peers() {
		if !p.IP.Is4() || p.IP == r.cfg.NodeIP {
			continue
		}
		if old, dup := want[p.IP]; dup && !p.External && old.External {
			continue // a node also named as an external peer stays a mesh peer
		}
		want[p.IP] = p
	}
	r.syncExternalSet(ctx, want)
	r.mu.Lock()
	have := r.peers
	r.mu.Unlock()
	next := map[netip.Addr]Peer{}
	for ip, p := range have {
		if w, ok := want[ip]; ok && samePeering(w, p) {
			next[ip] = p
			continue
		}
		if err := r.bgp.DeletePeer(ctx, &api.DeletePeerRequest{Address: ip.String()}); err != nil {
			r.log.Warn("cannot remove BGP peer", "peer", p.Name, "ip", ip, "err", err)
			next[ip] = p
			continue
		}
		r.log.Info("removed BGP peer", "peer", p.Name, "ip", ip, "external", p.External)
	}
	for ip, p := range want {
		if _, ok := next[ip]; ok {
			next[ip] = p // a rename keeps the session
			continue
		}
		if err := r.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: r.peerConf(p)}); err != nil {
			r.log.Warn("cannot add BGP peer", "peer", p.Name, "ip", ip, "err", err)
			continue
		}
		next[ip] = p
		r.log.Info("added BGP peer", "peer", p.Name, "ip", ip, "external", p.External, "asn", r.peerASN(p))
	}
	r.mu.Lock()
	r.peers = next
	r.mu.Unlock()
}

// samePeering tells whether a and b need the same session (a rename
// does not).
func samePeering(a, b Peer) bool { return a.IP == b.IP && a.External == b.External && a.ASN == b.ASN }

func (r *Router) peerASN(p Peer) uint32 {
	if p.ASN != 0 {
		return p.ASN
	}
	return r.cfg.ASN
}

// peerConf is the gobgp neighbour of p: IPv4 unicast with graceful
// restart (RFC 4724, with the RFC 8538 notification bit) when enabled;
// eBGP multihop for an external peer in another AS.
func (r *Router) peerConf(p Peer) *api.Peer {
	asn := r.peerASN(p)
	passiveMode := passive(r.cfg.NodeIP, p.IP)
	if p.External {
		passiveMode = false // the router may not dial nodes
	}
	conf := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.IP.String(), PeerAsn: asn, Description: p.Name},
		Transport: &api.Transport{
			LocalAddress: r.cfg.NodeIP.String(),
			RemotePort:   uint32(r.cfg.Port),
			PassiveMode:  passiveMode,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: connectRetry, HoldTime: holdTime, KeepaliveInterval: keepalive,
			IdleHoldTimeAfterReset: idleHoldAfterReset,
		}},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: ipv4Unicast, Enabled: true}}},
	}
	if p.External {
		conf.Transport.RemotePort = DefaultPort
		if asn != r.cfg.ASN {
			conf.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
		}
	}
	if gr := r.cfg.GracefulRestartTime; gr > 0 {
		conf.GracefulRestart = &api.GracefulRestart{
			Enabled:             true,
			RestartTime:         uint32(gr / time.Second),
			NotificationEnabled: true,
		}
		conf.AfiSafis[0].MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	return conf
}

// passive tells whether this node waits for peer to connect instead of
// dialling: of each pair only the node with the lower IP dials. When both
// dial, gobgp's FSMs can stay out of phase after a reset (each one idle,
// closing the other's connection, whenever the other one is active) and
// a restarted node would stay unreachable for a long time.
func passive(self, peer netip.Addr) bool { return self.Compare(peer) > 0 }

// syncAdvertised makes the advertised paths match LocalBlocks.
func (r *Router) syncAdvertised(ctx context.Context) {
	want := map[netip.Prefix]bool{}
	for _, b := range r.cfg.LocalBlocks() {
		if !b.IsValid() || !b.Addr().Is4() {
			r.log.Warn("skipping local block that is not an IPv4 prefix", "block", b)
			continue
		}
		want[b.Masked()] = true
	}
	for b, uuid := range r.advertised {
		if want[b] {
			continue
		}
		if err := r.bgp.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: ipv4Unicast, Uuid: uuid}); err != nil {
			r.log.Warn("cannot withdraw block", "block", b, "err", err)
			continue
		}
		delete(r.advertised, b)
		r.log.Info("withdrew block", "block", b)
	}
	for b := range want {
		if _, ok := r.advertised[b]; ok {
			continue
		}
		path, err := blockPath(b, r.cfg.NodeIP)
		if err != nil {
			r.log.Warn("cannot encode block", "block", b, "err", err)
			continue
		}
		resp, err := r.bgp.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		if err != nil {
			r.log.Warn("cannot advertise block", "block", b, "err", err)
			continue
		}
		r.advertised[b] = resp.Uuid
		r.log.Info("advertising block", "block", b, "nexthop", r.cfg.NodeIP)
	}
}

// blockPath is the IPv4 unicast path of a local block.
func blockPath(b netip.Prefix, nextHop netip.Addr) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: b.Addr().String(), PrefixLen: uint32(b.Bits())})
	if err != nil {
		return nil, err
	}
	origin, err := anypb.New(&api.OriginAttribute{Origin: 0}) // IGP
	if err != nil {
		return nil, err
	}
	nh, err := anypb.New(&api.NextHopAttribute{NextHop: nextHop.String()})
	if err != nil {
		return nil, err
	}
	return &api.Path{Family: ipv4Unicast, Nlri: nlri, Pattrs: []*anypb.Any{origin, nh}}, nil
}

// learnedPath is a best path from a peer.
type learnedPath struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	From    netip.Addr // the neighbour that sent it
	Stale   bool       // kept while its sender restarts (graceful restart)
}

// learnedPaths returns the best IPv4 unicast paths learned from peers.
func (r *Router) learnedPaths(ctx context.Context) ([]learnedPath, error) {
	var out []learnedPath
	var perr error
	accepted := map[string]uint64{}
	err := r.bgp.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: ipv4Unicast}, func(d *api.Destination) {
		pfx, err := netip.ParsePrefix(d.Prefix)
		if err != nil {
			perr = fmt.Errorf("routing: gobgp returned prefix %q: %w", d.Prefix, err)
			return
		}
		for _, p := range d.Paths {
			if !p.IsWithdraw && isFromPeer(p) {
				accepted[p.NeighborIp]++ // in the table: passed the import policy
			}
			if !p.Best || p.IsWithdraw || !isFromPeer(p) {
				continue
			}
			from, _ := netip.ParseAddr(p.NeighborIp)
			if r.isExternal(from) {
				continue // rejected on import already; never routed
			}
			nh, ok := nextHop(p)
			if !ok {
				r.log.Warn("learned path has no usable next hop", "prefix", pfx, "from", p.NeighborIp)
				continue
			}
			out = append(out, learnedPath{Prefix: pfx.Masked(), NextHop: nh, From: from, Stale: p.Stale})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("routing: list BGP paths: %w", err)
	}
	r.mu.Lock()
	r.accepted = accepted
	r.mu.Unlock()
	return out, perr
}

// isFromPeer tells a path learned from a neighbour from a local one
// (gobgp reports no neighbour address for those).
func isFromPeer(p *api.Path) bool {
	ip, err := netip.ParseAddr(p.NeighborIp)
	return err == nil && ip.IsValid() && !ip.IsUnspecified()
}

func nextHop(p *api.Path) (netip.Addr, bool) {
	for _, a := range p.Pattrs {
		var nh api.NextHopAttribute
		if a.MessageIs(&nh) && a.UnmarshalTo(&nh) == nil {
			ip, err := netip.ParseAddr(nh.NextHop)
			return ip, err == nil && ip.Is4()
		}
	}
	return netip.Addr{}, false
}

// slogAdapter makes gobgp log through slog. gobgp's Info is chatty
// (every FSM transition), so it goes to Debug; Fatal and Panic never exit
// the process.
type slogAdapter struct {
	log       *slog.Logger
	level     gobgplog.LogLevel
	onPeerErr func(peer, msg string)
}

func (a *slogAdapter) emit(lvl slog.Level, msg string, f gobgplog.Fields) {
	if lvl >= slog.LevelWarn && a.onPeerErr != nil {
		if peer, ok := f["Key"].(string); ok && f["Topic"] == "Peer" {
			a.onPeerErr(peer, describePeerEvent(msg, f))
		}
	}
	args := make([]any, 0, 2*len(f))
	for k, v := range f {
		args = append(args, k, v)
	}
	a.log.Log(context.Background(), lvl, msg, args...)
}

func (a *slogAdapter) Panic(msg string, f gobgplog.Fields) { a.emit(slog.LevelError, msg, f) }
func (a *slogAdapter) Fatal(msg string, f gobgplog.Fields) { a.emit(slog.LevelError, msg, f) }
func (a *slogAdapter) Error(msg string, f gobgplog.Fields) { a.emit(slog.LevelError, msg, f) }
func (a *slogAdapter) Warn(msg string, f gobgplog.Fields)  { a.emit(slog.LevelWarn, msg, f) }
func (a *slogAdapter) Info(msg string, f gobgplog.Fields)  { a.emit(slog.LevelDebug, msg, f) }
func (a *slogAdapter) Debug(msg string, f gobgplog.Fields) {}
func (a *slogAdapter) SetLevel(l gobgplog.LogLevel)        { a.level = l }
func (a *slogAdapter) GetLevel() gobgplog.LogLevel         { return gobgplog.InfoLevel }
