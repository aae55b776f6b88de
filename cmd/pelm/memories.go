package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/client"
	"github.com/pelm-dev/pelm/internal/durable"
	"github.com/pelm-dev/pelm/wire"
)

// memoriesCmd lists every memory with its settings and size: the names
// from the state stream (each memory keeps its settings and its filter
// there, about a second behind its requests), then an info request each.
func memoriesCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pelm memories", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats-url", defaultNATSURL, "NATS server (env NATS_URL)")
	prefix := fs.String("prefix", wire.DefaultPrefix, "subject prefix")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the answers")
	var conn connFlags
	conn.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts, err := conn.options()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(*natsURL, append(opts, nats.Name("pelm-cli"))...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *natsURL, err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	names, err := memoryNames(ctx, nc, *prefix)
	if err != nil {
		return err
	}
	c, err := client.New(nc, client.WithPrefix(*prefix))
	if err != nil {
		return err
	}
	defer c.Close()
	calls := make([]*client.Call, len(names))
	for i, name := range names {
		if calls[i], err = c.Send(name, client.InfoRequest{}); err != nil {
			return err
		}
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MEMORY\tSIZE\tCAPACITY\tDIM\tEVICTION\tTTL\tSCRUB\tTHRESHOLD\tADAPTIVE")
	for i, call := range calls {
		res, err := call.Result(ctx)
		switch {
		case errors.Is(err, wire.ErrNotFound):
			continue // dropped since the state was read
		case err != nil:
			return fmt.Errorf("info %s: %w", names[i], err)
		}
		cf := res.Config
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%v\t%v\t%.4g\t%v\n", names[i], res.Size, cf.Capacity, cf.Dim, cf.Eviction,
			cf.TTL, cf.Scrub, res.Threshold, cf.FilterAdaptive)
	}
	return w.Flush()
}

// memoryNames reads the names of the memories from the subjects of their
// settings and filter records in the state stream.
func memoryNames(ctx context.Context, nc *nats.Conn, prefix string) ([]string, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, durable.StateStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w (is 'pelm serve' running?)", durable.StateStream, err)
	}
	seen := map[string]bool{}
	for _, kind := range []string{"c", "f"} {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+".state.m.*."+kind))
		if err != nil {
			return nil, err
		}
		for subject := range info.State.Subjects {
			name := strings.TrimSuffix(strings.TrimPrefix(subject, prefix+".state.m."), "."+kind)
			if wire.ValidMemoryName(name) {
				seen[name] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}
