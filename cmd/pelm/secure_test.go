package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
)

// testCA makes a CA and a server certificate for 127.0.0.1; it returns the
// server's TLS certificate and the path of the CA's PEM file.
func testCA(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pelm test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}, caFile
}

// TestSecuredNATS runs pelm against a server that requires TLS and users
// with narrow permissions: the processor's user and an application's, as
// deploy/nats-server.secure.conf sets them up (its permissions are read
// from the file).
func TestSecuredNATS(t *testing.T) {
	cert, caFile := testCA(t)
	opts := natstest.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	opts.TLS = true
	// The users' permissions are those of the shipped example, so that the
	// file cannot fall behind what the processor needs.
	conf, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats-server.secure.conf"))
	if err != nil {
		t.Fatal(err)
	}
	perms := map[string]*server.Permissions{}
	for _, u := range conf.Users {
		perms[u.Username] = u.Permissions
	}
	if perms["pelm"] == nil || perms["app"] == nil {
		t.Fatalf("deploy/nats-server.secure.conf: users %v, want pelm and app", perms)
	}
	opts.Users = []*server.User{
		{Username: "pelm", Password: "processor-secret", Permissions: perms["pelm"]},
		{Username: "app", Password: "app-secret", Permissions: perms["app"]},
	}
	srv := natstest.RunServer(&opts)
	defer srv.Shutdown()
	url := "tls://127.0.0.1:" + strconv.Itoa(srv.Addr().(*net.TCPAddr).Port)

	// Wrong credentials fail at once, clearly, without echoing the secret.
	var errOut strings.Builder
	err = run(context.Background(), []string{"serve", "--nats-url", url, "--nats-ca", caFile, "--nats-user", "pelm",
		"--nats-password", "not-the-secret", "--http-listen", ""}, nil, io.Discard, &errOut)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") || strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("serve with a wrong password: %v", err)
	}
	// Without the CA the server's certificate is not trusted.
	err = run(context.Background(), []string{"serve", "--nats-url", url, "--nats-user", "pelm",
		"--nats-password", "processor-secret", "--http-listen", ""}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("serve without the CA: %v", err)
	}

	// The right ones, from the environment names of the nats CLI.
	t.Setenv("NATS_URL", url)
	t.Setenv("NATS_CA", caFile)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--nats-user", "pelm", "--nats-password", "processor-secret",
			"--dim", "3", "--http-listen", "", "--log-level", "warn"}, nil, io.Discard, io.Discard)
	}()
	t.Setenv("NATS_USER", "app")
	t.Setenv("NATS_PASSWORD", "app-secret")
	var res map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; {
		var out strings.Builder
		err := run(context.Background(), []string{"store", "--memory", "notes", "--vector", "[1,0,0]", "--phase", "0.5",
			"--id", "a", "--timeout", "2s"}, nil, &out, io.Discard)
		if err == nil {
			res = decodeJSONMap(t, out.String())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the application never got a result: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res["ok"] != true || res["accepted"] != true {
		t.Fatalf("store as the application: %v", res)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestEmbeddedToken checks that the embedded server, given --nats-token,
// refuses clients without it.
func TestEmbeddedToken(t *testing.T) {
	port := freePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--nats-listen", "127.0.0.1:" + strconv.Itoa(port), "--data-dir", t.TempDir(),
			"--nats-token", "s3cret", "--dim", "3", "--http-listen", "", "--log-level", "warn"}, nil, io.Discard, io.Discard)
	}()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		err = run(context.Background(), []string{"store", "--nats-url", url, "--nats-token", "s3cret", "--memory", "m",
			"--vector", "[1,0,0]", "--phase", "0.5", "--timeout", "2s"}, nil, io.Discard, io.Discard)
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("a client with the token: %v", err)
	}
	err = run(context.Background(), []string{"store", "--nats-url", url, "--memory", "m",
		"--vector", "[1,0,0]", "--phase", "0.5", "--timeout", "2s"}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("a client without the token: %v", err)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
