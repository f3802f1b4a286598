package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"testing"
)

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(handler())
	defer srv.Close()

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, srv, "/")
	want := regexp.MustCompile(`^hostname=` + regexp.QuoteMeta(host) + ` ip=(none|\d+\.\d+\.\d+\.\d+)\n$`)
	if code != http.StatusOK || !want.MatchString(body) {
		t.Errorf("GET / = %d %q, want 200 matching %s", code, body, want)
	}
	if body == "hostname="+host+" ip=127.0.0.1\n" {
		t.Error("GET / reported the loopback address")
	}
	if code, body := get(t, srv, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\"", code, body)
	}
	if code, _ := get(t, srv, "/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", code)
	}
}
