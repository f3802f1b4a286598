package bench

import "testing"

func TestPhasesParsesManagerLines(t *testing.T) {
	log := `time=10:00:00.000 level=INFO msg="etcd ready" component=etcd took=1.234s
time=10:00:01.000 level=INFO msg="other line" took=9s
time=10:00:02.000 level=INFO msg="kube-apiserver ready" component=kube-apiserver took=870ms
`
	if got, want := phases(log), "etcd 1.234s, kube-apiserver 870ms"; got != want {
		t.Fatalf("phases = %q, want %q", got, want)
	}
}
