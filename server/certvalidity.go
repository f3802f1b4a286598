package server

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// CertValidityEnv sets the lifetime in days of newly issued leaf
// certificates (default 365), as k3s's CATTLE_NEW_SIGNED_CERT_EXPIRATION_DAYS.
const CertValidityEnv = "IKS_CERT_VALIDITY_DAYS"

// leafValidity reads CertValidityEnv (0: the PKI's default).
func leafValidity() (time.Duration, error) {
	v := os.Getenv(CertValidityEnv)
	if v == "" {
		return 0, nil
	}
	d, err := strconv.Atoi(v)
	if err != nil || d < 1 || d > 3650 {
		return 0, fmt.Errorf("%s=%q is not a number of days from 1 to 3650: unset it for the default of 365", CertValidityEnv, v)
	}
	return time.Duration(d) * 24 * time.Hour, nil
}
