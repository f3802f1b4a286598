package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"sigs.k8s.io/apiserver-network-proxy/proto/header"

	"github.com/iks-dev/iks/internal/api"
)

// Node identities, as kubelet client certificates carry them.
const (
	nodeUserPrefix = api.NodeUserPrefix
	nodesGroup     = api.NodesGroup
)

func backendOptions(tlsConfig *tls.Config, log *slog.Logger, conns *agentConns) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(tlsConfig)),
		grpc.KeepaliveParams(backendKeepalive),
		grpc.KeepaliveEnforcementPolicy(backendEnforce),
		grpc.StreamInterceptor(nodeAgents(log, conns)),
	}
}

// nodeAgents admits an agent only with a node's client certificate, and
// only under that node's name: its agent ID and every "host" identifier
// must be the node name of the certificate, so that one node cannot take
// over the tunnel of another by name. (IP identifiers cannot be checked
// without the Node objects; the apiserver still verifies each kubelet's
// serving certificate through the tunnel.) A node's new stream replaces
// its previous one (see agentConns).
func nodeAgents(log *slog.Logger, conns *agentConns) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		addr := "unknown"
		if p, ok := peer.FromContext(ss.Context()); ok {
			addr = p.Addr.String()
		}
		node, err := authorizeAgent(ss.Context())
		if err != nil {
			log.Warn("rejected a tunnel agent", "peer", addr, "err", err)
			return status.Error(codes.PermissionDenied, err.Error())
		}
		log.Info("tunnel agent connected", "node", node, "peer", addr)
		conns.claim(node, addr)
		defer conns.release(node, addr)
		err = handler(srv, ss)
		if err != nil && status.Code(err) != codes.Canceled {
			log.Info("tunnel agent disconnected", "node", node, "peer", addr, "err", err)
		} else {
			log.Info("tunnel agent disconnected", "node", node, "peer", addr)
		}
		return err
	}
}

// authorizeAgent returns the node name of the agent on this stream.
func authorizeAgent(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errors.New("no peer information on the stream")
	}
	tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(tlsInfo.State.VerifiedChains) == 0 || len(tlsInfo.State.VerifiedChains[0]) == 0 {
		return "", errors.New("no verified client certificate: agents must present their kubelet client certificate")
	}
	leaf := tlsInfo.State.VerifiedChains[0][0]
	cn := leaf.Subject.CommonName
	node, isNode := strings.CutPrefix(cn, nodeUserPrefix)
	if !isNode || node == "" || !slices.Contains(leaf.Subject.Organization, nodesGroup) {
		return "", fmt.Errorf("client certificate CN=%q O=%q is not a node identity: agents must use their kubelet client certificate (CN %s<node>, O %s)",
			cn, leaf.Subject.Organization, nodeUserPrefix, nodesGroup)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if ids := md.Get(header.AgentID); len(ids) != 1 || ids[0] != node {
		return "", fmt.Errorf("agent ID %q does not match node %q of the client certificate: the agent ID must be the node name", ids, node)
	}
	for _, raw := range md.Get(header.AgentIdentifiers) {
		idents, err := url.ParseQuery(raw)
		if err != nil {
			return "", fmt.Errorf("agent identifiers %q of node %q: %w", raw, node, err)
		}
		for _, host := range idents[string(header.Host)] {
			if host != node {
				return "", fmt.Errorf("agent of node %q claims host %q: an agent may only claim its own node name", node, host)
			}
		}
	}
	return node, nil
}
