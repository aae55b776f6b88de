package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pelm-dev/pelm/client"
	"github.com/pelm-dev/pelm/wire"
)

const defaultNATSURL = "nats://127.0.0.1:4222"

// optional is a flag whose absence matters: the request leaves the field
// out and the processor applies its default.
type optional struct {
	set, isBool bool
	raw         string
}

func (o *optional) String() string     { return o.raw }
func (o *optional) Set(s string) error { o.set, o.raw = true, s; return nil }

// IsBoolFlag lets a bool field be given as a flag alone (--scrub).
func (o *optional) IsBoolFlag() bool { return o.isBool }

type requestFlags struct {
	natsURL, prefix, memory string
	timeout                 time.Duration
	msgID, replyTo          string
	vector                  string
	fields                  map[string]*optional // JSON-valued fields by protocol name
	strFields               map[string]*optional // string fields
	conn                    connFlags
}

// verbFields lists the request fields each verb offers as flags.
var verbFields = map[string][]string{
	"store":    {"phase", "id", "moral", "text", "confidence", "meta", "ttl"},
	"retrieve": {"phase", "tolerance", "top_k", "min_confidence", "with_vectors"},
	"process":  {"phase", "id", "moral", "text", "confidence", "meta", "ttl", "tolerance", "top_k", "min_confidence", "with_vectors"},
	"forget":   {"id"},
	"create":   {"dim", "capacity", "eviction", "filter_threshold", "filter_adaptive", "scrub", "ttl"},
	"info":     {},
	"drop":     {},
}

// needsVector reports whether a verb's request carries a vector.
func needsVector(verb string) bool {
	return verb == "store" || verb == "retrieve" || verb == "process"
}

func request(ctx context.Context, verb string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	f := &requestFlags{fields: map[string]*optional{}, strFields: map[string]*optional{}}
	fs := flag.NewFlagSet("pelm "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.natsURL, "nats-url", defaultNATSURL, "NATS server (env NATS_URL)")
	fs.StringVar(&f.prefix, "prefix", wire.DefaultPrefix, "subject prefix")
	fs.StringVar(&f.memory, "memory", "default", "memory name")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the result")
	fs.StringVar(&f.msgID, "msg-id", "", "Nats-Msg-Id of the request (duplicates within 2 minutes are dropped)")
	fs.StringVar(&f.replyTo, "reply-to", "", "subject under which the result comes, as <reply-to>.<n> (Pelm-Reply-To); empty uses a private inbox")
	f.conn.register(fs)
	if needsVector(verb) {
		fs.StringVar(&f.vector, "vector", "", "the vector as a JSON array; empty reads it from stdin")
	}
	for _, name := range verbFields[verb] {
		o := &optional{}
		flagName := strings.ReplaceAll(name, "_", "-")
		switch name {
		case "id", "text", "eviction":
			f.strFields[name] = o
			fs.Var(o, flagName, name+" (string)")
		case "scrub", "filter_adaptive":
			o.isBool = true
			f.fields[name] = o
			fs.Var(o, flagName, name+" (bool; the flag alone means true)")
		default:
			f.fields[name] = o
			fs.Var(o, flagName, name+" (JSON value)")
		}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	body, err := f.body(verb, stdin)
	if err != nil {
		return err
	}

	req, err := typedRequest(verb, body)
	if err != nil {
		return err
	}
	opts, err := f.conn.options()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(f.natsURL, append(opts, nats.Name("pelm-cli"))...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", f.natsURL, err)
	}
	defer nc.Close()
	copts := []client.Option{client.WithPrefix(f.prefix), client.WithJSON()}
	if f.replyTo != "" {
		copts = append(copts, client.WithInbox(f.replyTo))
	}
	c, err := client.New(nc, copts...)
	if err != nil {
		return err
	}
	defer c.Close()
	var callOpts []client.CallOption
	if f.msgID != "" {
		callOpts = append(callOpts, client.MsgID(f.msgID))
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	call, err := c.Send(f.memory, req, callOpts...)
	if err != nil {
		return err
	}
	res, err := call.Msg(ctx)
	switch {
	case errors.Is(err, client.ErrDuplicate):
		return fmt.Errorf("request dropped: Nats-Msg-Id %q was already published within the duplicate window", f.msgID)
	case err != nil:
		return fmt.Errorf("%w (is 'pelm serve' running?)", err)
	}
	return printJSON(stdout, res)
}

// typedRequest reads the JSON request body of verb into the client's
// request type; meta stays the JSON it was given.
func typedRequest(verb string, body []byte) (client.Request, error) {
	switch verb {
	case "store":
		return decodeRequest(body, func(r *client.StoreRequest) { r.Meta = rawMeta(body) })
	case "retrieve":
		return decodeRequest[client.RetrieveRequest](body, nil)
	case "process":
		return decodeRequest(body, func(r *client.ProcessRequest) { r.Meta = rawMeta(body) })
	case "forget":
		return decodeRequest[client.ForgetRequest](body, nil)
	case "create":
		return decodeRequest[client.CreateRequest](body, nil)
	case "info":
		return client.InfoRequest{}, nil
	case "drop":
		return client.DropRequest{}, nil
	}
	return nil, fmt.Errorf("no request for verb %q", verb)
}

// decodeRequest reads body into a T, then lets fix adjust it.
func decodeRequest[T client.Request](body []byte, fix func(*T)) (client.Request, error) {
	var r T
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if fix != nil {
		fix(&r)
	}
	return r, nil
}

// rawMeta is the meta value of a JSON request as given, or nil.
func rawMeta(body []byte) any {
	var m struct {
		Meta json.RawMessage `json:"meta"`
	}
	if json.Unmarshal(body, &m) != nil || len(m.Meta) == 0 || string(m.Meta) == "null" {
		return nil
	}
	return m.Meta
}

// body builds the JSON request from the flags and, for a missing --vector,
// stdin: either the vector as a JSON array or a whole request object that
// flags then override.
func (f *requestFlags) body(verb string, stdin io.Reader) ([]byte, error) {
	req := map[string]json.RawMessage{}
	vector := f.vector
	if needsVector(verb) && vector == "" {
		in, err := io.ReadAll(stdin)
		if err != nil {
			return nil, err
		}
		in = bytes.TrimSpace(in)
		switch {
		case len(in) == 0:
			return nil, errors.New("no vector: give --vector '[...]' or a JSON array or object on stdin")
		case in[0] == '{':
			if err := json.Unmarshal(in, &req); err != nil {
				return nil, fmt.Errorf("stdin: %w", err)
			}
		default:
			vector = string(in)
		}
	}
	if vector != "" {
		if !json.Valid([]byte(vector)) {
			return nil, fmt.Errorf("--vector %q is not JSON", vector)
		}
		req["vector"] = json.RawMessage(vector)
	}
	for name, o := range f.fields {
		if o.set {
			if !json.Valid([]byte(o.raw)) {
				return nil, fmt.Errorf("--%s %q is not a JSON value", strings.ReplaceAll(name, "_", "-"), o.raw)
			}
			req[name] = json.RawMessage(o.raw)
		}
	}
	for name, o := range f.strFields {
		if o.set {
			b, _ := json.Marshal(o.raw)
			req[name] = b
		}
	}
	return json.Marshal(req)
}

func printJSON(w io.Writer, m *nats.Msg) error {
	js, err := wire.BodyJSON(m.Data, m.Header.Get(wire.HeaderContentType))
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, js, "", "  "); err != nil {
		out.Reset()
		out.Write(js)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

func watch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("watch what? results, stats or dlq")
	}
	what := args[0]
	fs := flag.NewFlagSet("pelm watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats-url", defaultNATSURL, "NATS server (env NATS_URL)")
	prefix := fs.String("prefix", wire.DefaultPrefix, "subject prefix")
	memory := fs.String("memory", "*", "memory name, or * for all")
	op := fs.String("op", "*", "op, or * for all")
	count := fs.Int("count", 0, "stop after this many messages; 0 means never")
	var conn connFlags
	conn.register(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	var subject string
	switch what {
	case "results":
		subject = *prefix + ".res." + *memory + "." + *op
	case "stats":
		subject = *prefix + ".stats"
	case "dlq":
		subject = *prefix + ".dlq." + *memory + "." + *op
	default:
		return fmt.Errorf("watch %q: want results, stats or dlq", what)
	}
	opts, err := conn.options()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(*natsURL, append(opts, nats.Name("pelm-watch"))...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *natsURL, err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "watching %s\n", subject)
	for n := 0; *count == 0 || n < *count; n++ {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if what == "dlq" {
			fmt.Fprintf(stdout, "%s %s: %s\n", m.Subject, m.Header.Get(wire.HeaderError), m.Data)
			continue
		}
		if err := printJSON(stdout, m); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", m.Subject, err)
		}
	}
	return nil
}
