package token

const (
	testHash   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testSecret = "s3cr3tvalue00042"
)
