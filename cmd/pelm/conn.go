package main

import (
	"errors"
	"flag"

	"github.com/nats-io/nats.go"
)

// connFlags are how a pelm command authenticates to NATS and verifies it.
// Each also comes from the environment under the nats CLI's name (NATS_CREDS,
// NATS_NKEY, NATS_USER, NATS_PASSWORD, NATS_CA, NATS_CERT, NATS_KEY) and
// NATS_TOKEN. Their values are never logged.
type connFlags struct {
	creds, nkey, user, password, token, ca, cert, key string
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.creds, "nats-creds", "", "NATS credentials file (JWT and NKey seed) (env NATS_CREDS)")
	fs.StringVar(&c.nkey, "nats-nkey", "", "NATS NKey seed file (env NATS_NKEY)")
	fs.StringVar(&c.user, "nats-user", "", "NATS user (env NATS_USER)")
	fs.StringVar(&c.password, "nats-password", "", "NATS password (env NATS_PASSWORD)")
	fs.StringVar(&c.token, "nats-token", "", "NATS token (env NATS_TOKEN); with the embedded server, the token it requires")
	fs.StringVar(&c.ca, "nats-ca", "", "CA certificate file that signs the NATS server's certificate (env NATS_CA)")
	fs.StringVar(&c.cert, "nats-cert", "", "client certificate file for TLS (env NATS_CERT)")
	fs.StringVar(&c.key, "nats-key", "", "client key file for TLS (env NATS_KEY)")
}

// options turns the flags into nats.go options.
func (c *connFlags) options() ([]nats.Option, error) {
	var opts []nats.Option
	if c.creds != "" {
		opts = append(opts, nats.UserCredentials(c.creds))
	}
	if c.nkey != "" {
		o, err := nats.NkeyOptionFromSeed(c.nkey)
		if err != nil {
			return nil, errors.New("--nats-nkey: cannot read the seed file") // the error could quote the seed
		}
		opts = append(opts, o)
	}
	if c.user != "" || c.password != "" {
		opts = append(opts, nats.UserInfo(c.user, c.password))
	}
	if c.token != "" {
		opts = append(opts, nats.Token(c.token))
	}
	if c.ca != "" {
		opts = append(opts, nats.RootCAs(c.ca))
	}
	if c.cert != "" || c.key != "" {
		if c.cert == "" || c.key == "" {
			return nil, errors.New("--nats-cert and --nats-key go together")
		}
		opts = append(opts, nats.ClientCert(c.cert, c.key))
	}
	return opts, nil
}
