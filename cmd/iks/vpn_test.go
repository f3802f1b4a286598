package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/iks-dev/iks/internal/vpnconn"
)

func TestPrintVPNStatus(t *testing.T) {
	now := time.Now()
	up := metav1.NewTime(now.Add(-90 * time.Second))
	conns := []*vpnconn.Conn{
		{Name: "onprem", Status: vpnconn.Status{
			Conditions: []metav1.Condition{{Type: vpnconn.ConditionValid, Status: "True"}, {Type: vpnconn.ConditionEstablished, Status: "True", Reason: "Established"}},
			Gateway:    vpnconn.GatewayStatus{Node: "w1", Dataplane: vpnconn.DataplaneLibipsec},
			IKE:        vpnconn.IKEStatus{State: "ESTABLISHED", EstablishedAt: &up}, Child: vpnconn.ChildStatus{State: "INSTALLED", BytesIn: 10, BytesOut: 20}}},
		{Name: "bad", Status: vpnconn.Status{
			Conditions: []metav1.Condition{{Type: vpnconn.ConditionValid, Status: "False", Reason: vpnconn.ReasonInvalidSpec, Message: "remote.subnet is empty"}}}},
	}
	var out bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetOut(&out)
	printVPNStatus(cmd, conns, now)
	got := out.String()
	for _, want := range []string{"onprem  True   True", "w1", "kernel-libipsec", "ESTABLISHED", "INSTALLED", "1m30s", "10/20",
		"bad: Valid=False (InvalidSpec): remote.subnet is empty"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}
