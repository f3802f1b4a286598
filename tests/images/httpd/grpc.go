package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startGRPC serves the standard gRPC health service in plain text (h2c)
// on $GRPC_PORT when it is set, for tests of gRPC through proxies; the
// service "hostname" reports SERVING so a client can tell it reached us.
func startGRPC() (stop func(), err error) {
	port := os.Getenv("GRPC_PORT")
	if port == "" {
		return func() {}, nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("GRPC_PORT=%q is not a port number 1-65535", port)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("", port))
	if err != nil {
		return nil, fmt.Errorf("listen for gRPC on %s: %w", port, err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	host, _ := os.Hostname()
	hs.SetServingStatus(host, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go func() {
		if err := s.Serve(l); err != nil {
			slog.Error("gRPC server", "err", err)
		}
	}()
	slog.Info("gRPC health listening", "port", port)
	return s.GracefulStop, nil
}

// startUDPEcho answers each datagram on $UDP_PORT with
// "echo <hostname> <payload>", for tests of UDP forwarding.
func startUDPEcho() (stop func(), err error) {
	port := os.Getenv("UDP_PORT")
	if port == "" {
		return func() {}, nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("UDP_PORT=%q is not a port number 1-65535", port)
	}
	pc, err := net.ListenPacket("udp", net.JoinHostPort("", port))
	if err != nil {
		return nil, fmt.Errorf("listen for UDP on %s: %w", port, err)
	}
	host, _ := os.Hostname()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("echo "+host+" "), buf[:n]...), from)
		}
	}()
	return func() { pc.Close() }, nil
}
