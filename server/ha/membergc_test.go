package ha

import (
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestRemovable(t *testing.T) {
	three := []*etcdserverpb.Member{{ID: 1, Name: "s1"}, {ID: 2, Name: "s2"}, {ID: 3, Name: "s3"}}
	lone := []*etcdserverpb.Member{{ID: 1, Name: "s1"}, {ID: 2, Name: "s2", IsLearner: true}, {ID: 3, Name: "s3"}}
	for _, c := range []struct {
		name    string
		members []*etcdserverpb.Member
		self    uint64
		node    string
		want    uint64
		refused bool
	}{
		{"another voter", three, 1, "s3", 3, false},
		{"a learner", lone, 1, "s2", 2, false},
		{"own member", three, 1, "s1", 0, true},
		{"no such member (an agent)", three, 1, "w1", 0, false},
		{"last voter", []*etcdserverpb.Member{{ID: 1, Name: "s1", IsLearner: true}, {ID: 2, Name: "s2"}}, 1, "s2", 0, true},
	} {
		id, why := Removable(c.members, c.self, c.node)
		if id != c.want || (why != "") != c.refused {
			t.Errorf("%s: Removable = %d, %q; want %d, refused %v", c.name, id, why, c.want, c.refused)
		}
	}
}
