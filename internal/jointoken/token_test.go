package jointoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

const (
	testHash   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testSecret = "s3cr3tvalue00042"
)

func TestParseRoundTrip(t *testing.T) {
	want := Token{CAHash: testHash, ID: "abc123", Secret: testSecret}
	s := want.Format()
	if s != "K10"+testHash+"::abc123."+testSecret {
		t.Fatalf("Format = %q", s)
	}
	for _, in := range []string{s, "  " + s + "\n", "K10" + strings.ToUpper(testHash) + "::abc123." + testSecret} {
		got, err := Parse(in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if got != want {
			t.Errorf("Parse(%q) = %+v, want %+v", in, got, want)
		}
	}
	if want.Bootstrap() != "abc123."+testSecret {
		t.Errorf("Bootstrap = %q", want.Bootstrap())
	}
	if str := want.String(); strings.Contains(str, testSecret) || !strings.Contains(str, "abc123") {
		t.Errorf("String() = %q: must show the ID and redact the secret", str)
	}
}

func TestParseRejectsEachMalformedPart(t *testing.T) {
	cases := []struct {
		name, in, wantMsg string
	}{
		{"empty", "", "token is empty"},
		{"bare bootstrap token", "abc123." + testSecret, "bare bootstrap token without the CA hash"},
		{"short passphrase", "secret", "does not start with K10"},
		{"no separator", "K10" + testHash + "abc123." + testSecret, `lacks the "::"`},
		{"short hash", "K10abcdef::abc123." + testSecret, `CA hash "abcdef" is not 64`},
		{"non-hex hash", "K10" + strings.Repeat("g", 64) + "::abc123." + testSecret, "is not 64 lowercase hex"},
		{"no dot", "K10" + testHash + "::abc123" + testSecret, "not of the form <id>.<secret>"},
		{"bad id", "K10" + testHash + "::ABC123." + testSecret, `token ID "ABC123"`},
		{"short id", "K10" + testHash + "::abc." + testSecret, `token ID "abc"`},
		{"short secret", "K10" + testHash + "::abc123.0123456789", "token secret (10 characters)"},
		{"bad secret", "K10" + testHash + "::abc123.S3CR3TVALUE00042", "token secret (16 characters)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", c.in)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.wantMsg) {
				t.Errorf("error %q does not contain %q", msg, c.wantMsg)
			}
			if !strings.Contains(msg, FullTokenHint) {
				t.Errorf("error %q does not tell where to get a full token", msg)
			}
			if strings.Contains(msg, testSecret) || strings.Contains(msg, "S3CR3TVALUE00042") {
				t.Errorf("error %q leaks the secret", msg)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		tok, err := Generate(testHash)
		if err != nil {
			t.Fatal(err)
		}
		if err := tok.Validate(); err != nil {
			t.Fatalf("generated token is invalid: %v", err)
		}
		if seen[tok.Bootstrap()] {
			t.Fatalf("Generate repeated %s", tok.ID)
		}
		seen[tok.Bootstrap()] = true
		back, err := Parse(tok.Format())
		if err != nil || back != tok {
			t.Fatalf("Parse(Format()) = %+v, %v; want %+v", back, err, tok)
		}
	}
	if _, err := Generate("nothex"); err == nil {
		t.Error("Generate accepted a bad CA hash")
	}
}

func TestCAHashPEM(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	data := append([]byte("# comment\n"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	got, err := CAHashPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("CAHashPEM = %s, want %s", got, want)
	}
	if _, err := CAHashPEM([]byte("junk")); err == nil {
		t.Error("CAHashPEM accepted junk")
	}
}
