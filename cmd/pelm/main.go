// Command pelm is the governed vector memory on NATS JetStream: `pelm serve`
// runs the processor (with an embedded NATS server unless told where one
// is), and the other verbs talk to a running one from a terminal.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `pelm: a governed vector memory on NATS JetStream

Usage:
  pelm serve     [flags]   run the processor (embedded NATS unless --nats-url)
  pelm bench     [flags]   measure pelm against a bare JetStream echo (in-process unless --nats-url)
  pelm store     [flags]   store a vector
  pelm retrieve  [flags]   retrieve the closest items
  pelm process   [flags]   filter, retrieve context, then store
  pelm forget    [flags]   forget an item by id
  pelm create    [flags]   create a memory with its own settings (--dim, --capacity, --eviction, --scrub, ...)
  pelm info      [flags]   a memory's settings, size and filter state
  pelm drop      [flags]   delete a memory and everything in it
  pelm memories  [flags]   every memory with its settings and size
  pelm watch     results|stats|dlq [flags]   print what the processor publishes
  pelm health    [flags]   exit 0 if a running pelm serve's /readyz answers 200 (container healthchecks)

Every flag can also be set in the environment as PELM_<FLAG> (upper case,
dashes as underscores), e.g. PELM_BATCH_MAX=512; --nats-url also reads
NATS_URL. Run 'pelm <verb> -h' for a verb's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "pelm:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no verb given")
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "serve":
		return serve(ctx, rest, stderr)
	case "bench":
		return benchCmd(ctx, rest, stdout, stderr)
	case "store", "retrieve", "process", "forget", "create", "info", "drop":
		return request(ctx, verb, rest, stdin, stdout, stderr)
	case "watch":
		return watch(ctx, rest, stdout, stderr)
	case "memories":
		return memoriesCmd(ctx, rest, stdout, stderr)
	case "health":
		return health(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown verb %q", verb)
}

// parseFlags parses args, then fills every flag not given on the command
// line from PELM_<NAME> (and --nats-url from NATS_URL).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		names := []string{"PELM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))}
		if rest, ok := strings.CutPrefix(f.Name, "nats-"); ok && rest != "listen" && rest != "sync" {
			names = append(names, "NATS_"+strings.ToUpper(rest)) // the nats CLI's names
		}
		for _, env := range names {
			if v, ok := os.LookupEnv(env); ok {
				if e := f.Value.Set(v); e != nil {
					err = fmt.Errorf("%s=%q: %w", env, v, e)
				}
				return
			}
		}
	})
	return err
}
