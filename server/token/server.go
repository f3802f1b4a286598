package token

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/iks-dev/iks/internal/fsutil"
)

// MinFlagLength is the shortest --token value accepted.
const MinFlagLength = 16

// derivationDomain separates the --token derivation from any other use of
// SHA-256 over the same string.
const derivationDomain = "iks server join token v1\x00"

// lowerBase32 encodes to [a-z2-7], a subset of the bootstrap token alphabet.
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ServerTokenPath is where the server records its join token.
func ServerTokenPath(dataDir string) string { return filepath.Join(dataDir, "server", "token") }

// CheckFlag validates a --token value without needing the CA, so that
// configuration validation can refuse it before anything is written. ""
// (a random token) is valid.
func CheckFlag(value string) error {
	value = strings.TrimSpace(value)
	if looksFull(value) {
		if _, err := Parse(value); err != nil {
			return fmt.Errorf("--token: %w", err)
		}
		return nil
	}
	if value == "" || isBootstrapToken(value) {
		return nil
	}
	if len(value) < MinFlagLength {
		return fmt.Errorf("--token is %d characters long: use at least %d (for example the output of "+
			"`openssl rand -hex 16`), or omit --token to have a random one generated", len(value), MinFlagLength)
	}
	return nil
}

// looksFull reports whether s is meant as a full K10 token, so that a
// damaged one is refused instead of being taken for a passphrase.
func looksFull(s string) bool { return strings.HasPrefix(s, Prefix) && strings.Contains(s, separator) }

// isBootstrapToken reports whether s is a bare "<id>.<secret>".
func isBootstrapToken(s string) bool {
	id, secret, ok := strings.Cut(s, ".")
	return ok && idOK(id) && secretOK(secret)
}

// FromFlag turns a server --token value into the server's join token:
//   - a full K10 token ("K10...::...") must be valid and pin caHash, and
//     is used as is;
//   - a bootstrap token "<id>.<secret>" is used as is;
//   - any other string of at least MinFlagLength characters is a
//     passphrase from which the ID and secret are derived with SHA-256,
//     so the same --token always yields the same join token.
func FromFlag(caHash, value string) (Token, error) {
	if err := ValidateCAHash(caHash); err != nil {
		return Token{}, err
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return Token{}, errors.New("--token is empty: omit it to have a random token generated, or pass at least 16 characters")
	}
	if looksFull(value) {
		t, err := Parse(value)
		if err != nil {
			return Token{}, fmt.Errorf("--token: %w", err)
		}
		if t.CAHash != caHash {
			return Token{}, fmt.Errorf("--token pins CA %s but this server's cluster CA has hash %s: "+
				"pass a token of this cluster, a passphrase of at least %d characters, or omit --token",
				short(t.CAHash), short(caHash), MinFlagLength)
		}
		return t, nil
	}
	if isBootstrapToken(value) {
		id, secret, _ := strings.Cut(value, ".")
		return Token{CAHash: caHash, ID: id, Secret: secret}, nil
	}
	if err := CheckFlag(value); err != nil {
		return Token{}, err
	}
	sum := sha256.Sum256([]byte(derivationDomain + value))
	enc := lowerBase32.EncodeToString(sum[:])
	return Token{
		CAHash: caHash,
		ID:     enc[:bootstrapapi.BootstrapTokenIDBytes],
		Secret: enc[bootstrapapi.BootstrapTokenIDBytes : bootstrapapi.BootstrapTokenIDBytes+bootstrapapi.BootstrapTokenSecretBytes],
	}, nil
}

// EnsureServerToken returns the server's join token, recorded in
// <dataDir>/server/token (mode 0600). The first call writes it, atomically:
// derived from fromFlag (the --token value) when set, otherwise random.
// Later calls reuse the recorded token; a fromFlag that yields a different
// token, or a recorded token pinning another CA, is an error naming the fix.
func EnsureServerToken(dataDir, caHash, fromFlag string) (Token, error) {
	t, recorded, err := ResolveServerToken(dataDir, caHash, fromFlag)
	if err != nil {
		return Token{}, err
	}
	if !recorded {
		if err := RecordServerToken(dataDir, t); err != nil {
			return Token{}, err
		}
	}
	return t, nil
}

// ResolveServerToken returns the token EnsureServerToken would return, and
// whether it is already recorded in <dataDir>/server/token, without
// writing it (it only tightens a loose mode of a recorded file). A token
// not yet recorded is derived from fromFlag, or random when fromFlag is "".
func ResolveServerToken(dataDir, caHash, fromFlag string) (tok Token, recorded bool, err error) {
	if err := ValidateCAHash(caHash); err != nil {
		return Token{}, false, fmt.Errorf("server token: %w", err)
	}
	var want *Token
	if fromFlag != "" {
		t, err := FromFlag(caHash, fromFlag)
		if err != nil {
			return Token{}, false, err
		}
		want = &t
	}
	path := ServerTokenPath(dataDir)
	rec, found, err := readServerToken(path, caHash)
	if err != nil {
		return Token{}, false, err
	}
	if found {
		if want != nil && want.Bootstrap() != rec.Bootstrap() {
			return Token{}, false, fmt.Errorf("--token differs from the token this server was first started with (recorded in %s): "+
				"pass the original --token, or omit --token to keep the recorded one; to change the token, delete %s "+
				"and restart (agents that already joined keep working; new agents need the new token)", path, path)
		}
		return rec, true, nil
	}
	if want != nil {
		return *want, false, nil
	}
	g, err := Generate(caHash)
	if err != nil {
		return Token{}, false, err
	}
	return g, false, nil
}

// RecordServerToken writes t to <dataDir>/server/token atomically (mode
// 0600), so that a reader sees the whole token or no file.
func RecordServerToken(dataDir string, t Token) error {
	path := ServerTokenPath(dataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("server token: create %s: %w (check that the data dir is writable)", filepath.Dir(path), err)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(t.Format()+"\n"), 0o600); err != nil {
		return fmt.Errorf("server token: %w", err)
	}
	return nil
}

// ReadServerToken reads the token recorded in <dataDir>/server/token.
func ReadServerToken(dataDir string) (Token, error) {
	path := ServerTokenPath(dataDir)
	data, err := os.ReadFile(path)
	if err != nil {
		return Token{}, fmt.Errorf("read server token: %w (is %s the server's data dir, and are you root?)", err, dataDir)
	}
	t, err := Parse(string(data))
	if err != nil {
		return Token{}, fmt.Errorf("server token file %s is damaged: %w", path, err)
	}
	return t, nil
}

// readServerToken loads a recorded token, checks it against caHash and
// tightens a loose file mode. A missing file yields found == false.
func readServerToken(path, caHash string) (t Token, found bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Token{}, false, nil
	}
	if err != nil {
		return Token{}, false, fmt.Errorf("read server token %s: %w", path, err)
	}
	t, err = Parse(string(data))
	if err != nil {
		return Token{}, false, fmt.Errorf("server token file %s is damaged: %w; restore it from a backup, or delete it "+
			"to create a new token (agents that already joined keep working)", path, err)
	}
	if t.CAHash != caHash {
		return Token{}, false, fmt.Errorf("server token file %s pins CA %s but the cluster CA has hash %s: the CA was "+
			"replaced; delete %s to create a token for the current CA", path, short(t.CAHash), short(caHash), path)
	}
	info, err := os.Stat(path)
	if err != nil {
		return Token{}, false, fmt.Errorf("stat server token %s: %w", path, err)
	}
	if info.Mode().Perm() != 0o600 {
		if err := os.Chmod(path, 0o600); err != nil {
			return Token{}, false, fmt.Errorf("server token %s has mode %v: set it to 0600: %w", path, info.Mode().Perm(), err)
		}
	}
	return t, true, nil
}

// short abbreviates a CA hash for messages.
func short(hash string) string {
	if len(hash) <= 16 {
		return hash
	}
	return hash[:16] + "…"
}
