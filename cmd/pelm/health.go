package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// health runs `pelm health`: one HTTP GET of a running `pelm serve`'s
// /readyz (or --url), for container healthchecks on an image that has no
// shell and no HTTP client. It returns nil on a 2xx answer, an error (exit
// status 1) on anything else or on no answer within --timeout.
//
// Without --url it asks http://127.0.0.1:<port>/readyz, the port taken from
// --http-listen (env PELM_HTTP_LISTEN, as `pelm serve` reads it), so that a
// healthcheck in the same container follows a changed listen address.
func health(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pelm health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "URL to GET; empty: http://127.0.0.1:<port of --http-listen>/readyz")
	listen := fs.String("http-listen", ":8080", "the --http-listen of the pelm serve to ask (env PELM_HTTP_LISTEN)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	quiet := fs.Bool("quiet", false, "print nothing when healthy")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("health: unexpected argument %q", fs.Arg(0))
	}
	target := *url
	if target == "" {
		var err error
		if target, err = readyzURL(*listen); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("health: GET %s: %s", target, res.Status)
	}
	if !*quiet {
		fmt.Fprintf(stdout, "GET %s: %s\n", target, res.Status)
	}
	return nil
}

// readyzURL is the /readyz URL of a server listening on listen (host:port,
// host optional); an unspecified host is asked on the loopback.
func readyzURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		return "", fmt.Errorf("health: --http-listen %q: want [host]:port", listen)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}
