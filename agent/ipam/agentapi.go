package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"
)

// The CNI plugin is a short-lived process without API credentials; when
// the node's blocks are full it asks the node's agent for another block
// over a local unix socket (mode 0600, root only): POST BlockRequestPath.
// The agent answers with the node's block set once it holds a free
// address, claiming a new block in the Kubernetes API when needed.
const (
	// BlockRequestPath is the endpoint on the agent's socket.
	BlockRequestPath = "/v1/ipam/blocks"
	// RequestTimeout bounds one request for a block.
	RequestTimeout = 30 * time.Second
)

// BlockResponse is the agent's answer.
type BlockResponse struct {
	Blocks []netip.Prefix `json:"blocks,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// RequestBlock asks the agent listening on socket for room: it returns
// once the store's block set has a free address (the agent writes the new
// set to the store before answering).
func RequestBlock(ctx context.Context, socket string) ([]netip.Prefix, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent"+BlockRequestPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the iks agent for another address block on %s (is the agent running?): %w", socket, err)
	}
	defer resp.Body.Close()
	var br BlockResponse
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(data, &br); err != nil {
		return nil, fmt.Errorf("iks agent on %s answered %s with %q", socket, resp.Status, data)
	}
	if resp.StatusCode != http.StatusOK || br.Error != "" {
		return nil, fmt.Errorf("iks agent could not give this node another address block: %s", br.Error)
	}
	return br.Blocks, nil
}

// BlockHandler serves BlockRequestPath with grow, which must return the
// block set once it has a free address.
func BlockHandler(grow func(context.Context) ([]netip.Prefix, error)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+BlockRequestPath, func(w http.ResponseWriter, r *http.Request) {
		blocks, err := grow(r.Context())
		w.Header().Set("Content-Type", "application/json")
		resp := BlockResponse{Blocks: blocks}
		if err != nil {
			resp.Error = err.Error()
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(resp)
	})
	return mux
}

// ListenSocket listens on a unix socket at path with mode 0600, replacing a
// stale socket file left by an earlier run.
func ListenSocket(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("restrict %s to root: %w", path, err)
	}
	return l, nil
}
