package routing

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

func TestDescribePeerEvent(t *testing.T) {
	for _, c := range []struct {
		f    gobgplog.Fields
		want string
	}{
		{gobgplog.Fields{"Code": uint8(6), "Subcode": uint8(4), "Communicated-Reason": "bye"}, "sent notification: code 6(cease) subcode 4(administrative reset) (bye)"},
		{gobgplog.Fields{"Data": bgp.NewMessageError(bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_BAD_PEER_AS, nil, "as number mismatch")}, "bad peer as): as number mismatch"},
		{gobgplog.Fields{"Error": "connection refused"}, "sent notification: connection refused"},
	} {
		if got := describePeerEvent("sent notification", c.f); !strings.Contains(got, c.want) {
			t.Errorf("describePeerEvent(%v) = %q, want it to contain %q", c.f, got, c.want)
		}
	}
}

func TestStatusJSONRoundTrip(t *testing.T) {
	in := Status{Node: "n1", NodeIP: netip.MustParseAddr("10.0.0.1"), ASN: 64512, Encapsulation: TunnelVXLAN, EncapMode: EncapCrossSubnet,
		GracefulRestartTime: 120 * time.Second,
		Peers:               []PeerStatus{{Name: "bgppeer/tor", IP: netip.MustParseAddr("10.0.0.254"), Type: PeerTypeExternal, ASN: 64600, State: "idle", LastError: "bad peer as"}},
		Routes:              []RouteStatus{{Dst: netip.MustParsePrefix("172.30.1.0/26"), NextHop: netip.MustParseAddr("10.0.0.2"), Stale: true}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Status
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Peers[0].LastError != "bad peer as" || !out.Routes[0].Stale || out.GracefulRestartTime != in.GracefulRestartTime || out.Routes[0].Gateway.IsValid() {
		t.Errorf("round trip: %s -> %+v", b, out)
	}
	if !strings.Contains(string(b), `"stale":true`) || strings.Contains(string(b), `"gateway"`) {
		t.Errorf("JSON %s: want stale set and no zero gateway", b)
	}
}

func TestGracefulRestartTimeValidation(t *testing.T) {
	base := Config{NodeIP: netip.MustParseAddr("10.0.0.5"), NodeSubnet: netip.MustParsePrefix("10.0.0.0/24")}
	for d, ok := range map[time.Duration]bool{0: true, time.Second: true, 120 * time.Second: true, 4095 * time.Second: true,
		4096 * time.Second: false, 1500 * time.Millisecond: false, -time.Second: false} {
		c := base
		c.GracefulRestartTime = d
		if _, err := c.withDefaults(); (err == nil) != ok {
			t.Errorf("graceful restart time %s: err %v, want ok=%v", d, err, ok)
		}
	}
}
