package testutil

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HTTPGet fetches url from inside the namespace with a fresh connection
// (no keep-alive, so every request may reach another endpoint) and returns
// the body; a status other than 200 is an error that still carries the body.
func (n *Netns) HTTPGet(ctx context.Context, url string, timeout time.Duration) (string, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true}, Timeout: timeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return string(body), fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}
