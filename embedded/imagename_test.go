package embedded

import (
	"errors"
	"strings"
	"testing"
)

func TestImageName(t *testing.T) {
	assets := defaultTestAssets()
	assets["coredns.tar"] = testAsset{kind: KindImage, image: "iks.local/coredns:1.15.0", data: []byte("tar")}
	s, _ := newTestStore(t, assets)
	if got, err := s.imageName("coredns.tar"); err != nil || got != "iks.local/coredns:1.15.0" {
		t.Fatalf("imageName(coredns.tar) = %q, %v", got, err)
	}
	for _, name := range []string{"runc", "nope.tar"} {
		_, err := s.imageName(name)
		if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "coredns.tar") {
			t.Errorf("imageName(%s): %v, want ErrMissing listing the images", name, err)
		}
	}
}
