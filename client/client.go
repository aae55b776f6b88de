package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/wire"
)

// Errors of the package. An error result is returned as its *wire.Error:
// tell its code with errors.Is(err, wire.ErrBadDimension) and the like.
var (
	// ErrDuplicate: JetStream dropped the request as a duplicate of one
	// published with the same message id within its window; its result
	// went wherever the first one asked for.
	ErrDuplicate = errors.New("client: duplicate request dropped by JetStream")
	// ErrClosed: the client was closed before the result came.
	ErrClosed = errors.New("client: closed")
)

// Client publishes requests to pelm through JetStream and returns their
// results. Each request names a reply subject of its own under the
// client's inbox, so results are matched to requests whatever order they
// come in. A Client is safe for concurrent use.
type Client struct {
	js     jetstream.JetStream
	sub    *nats.Subscription
	prefix string
	enc    wire.Encoding
	inbox  string // results come to inbox.<n>

	n      atomic.Uint64
	mu     sync.Mutex
	calls  map[string]*Call // by reply subject, until the result comes
	closed bool
}

// Option configures a Client.
type Option func(*Client)

// WithPrefix sets the subject prefix of the pelm deployment (default
// "pelm", as `pelm serve --prefix`).
func WithPrefix(prefix string) Option { return func(c *Client) { c.prefix = prefix } }

// WithJSON sends requests, and so gets results, in JSON instead of
// msgpack.
func WithJSON() Option { return func(c *Client) { c.enc = wire.JSON } }

// WithInbox sets the subject under which results come (default: a fresh
// inbox of the connection); the server's --reply-allow must admit it.
func WithInbox(inbox string) Option { return func(c *Client) { c.inbox = inbox } }

// New returns a client on nc. It subscribes to its inbox at once; Close
// unsubscribes.
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{js: js, prefix: wire.DefaultPrefix, calls: map[string]*Call{}}
	for _, o := range opts {
		o(c)
	}
	if c.inbox == "" {
		c.inbox = nc.NewInbox()
	}
	if !wire.ValidSubject(c.prefix, false) {
		return nil, fmt.Errorf("client: prefix %q is not a subject", c.prefix)
	}
	c.sub, err = nc.Subscribe(c.inbox+".*", c.deliver)
	if err != nil {
		return nil, fmt.Errorf("client: subscribe to %s: %w", c.inbox, err)
	}
	return c, nil
}

// Close stops listening for results; calls still waiting fail with
// ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	calls := c.calls
	c.calls, c.closed = map[string]*Call{}, true
	c.mu.Unlock()
	for _, call := range calls {
		call.finish(nil, ErrClosed)
	}
	return c.sub.Unsubscribe()
}

// deliver hands a result to its call.
func (c *Client) deliver(m *nats.Msg) {
	c.mu.Lock()
	call := c.calls[m.Subject]
	delete(c.calls, m.Subject)
	c.mu.Unlock()
	if call != nil {
		call.finish(m, nil)
	}
}

// CallOption sets something of one request.
type CallOption func(*nats.Msg)

// MsgID sets the request's Nats-Msg-Id: JetStream drops a second publish
// of the same id within its duplicate window (2 minutes), and the result
// carries it as req_id.
func MsgID(id string) CallOption {
	return func(m *nats.Msg) { m.Header.Set(wire.HeaderMsgID, id) }
}

// Send publishes r to memory without waiting for anything: many requests
// can be in flight at once. The Call's Result waits for the server's
// acknowledgement of the publish and then for the result.
func (c *Client) Send(memory string, r Request, opts ...CallOption) (*Call, error) {
	if !wire.ValidMemoryName(memory) {
		return nil, fmt.Errorf("client: memory name %q: want 1 to 64 of A-Z a-z 0-9 _ -", memory)
	}
	body, err := Encode(r, c.enc)
	if err != nil {
		return nil, err
	}
	reply := c.inbox + "." + strconv.FormatUint(c.n.Add(1), 10)
	msg := nats.NewMsg(c.prefix + ".req." + memory + "." + r.Op().String())
	msg.Data = body
	msg.Header.Set(wire.HeaderContentType, c.enc.ContentType())
	msg.Header.Set(wire.HeaderReplyTo, reply)
	for _, o := range opts {
		o(msg)
	}
	call := &Call{done: make(chan struct{}), c: c, reply: reply}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.calls[reply] = call
	c.mu.Unlock()
	call.ack, err = c.js.PublishMsgAsync(msg)
	if err != nil {
		c.mu.Lock()
		delete(c.calls, reply)
		c.mu.Unlock()
		return nil, fmt.Errorf("client: publish %s: %w", msg.Subject, err)
	}
	return call, nil
}

// Do sends r and waits for its result. A request the server refused comes
// back as the result and its *wire.Error; a failure to publish or to get
// the result within ctx as an error alone.
func (c *Client) Do(ctx context.Context, memory string, r Request, opts ...CallOption) (*wire.Result, error) {
	call, err := c.Send(memory, r, opts...)
	if err != nil {
		return nil, err
	}
	return call.Result(ctx)
}

// Store stores an item in memory (created with the server's defaults if it
// does not exist).
func (c *Client) Store(ctx context.Context, memory string, r StoreRequest, opts ...CallOption) (*wire.Result, error) {
	return c.Do(ctx, memory, r, opts...)
}

// Retrieve returns the items of memory closest to r.Vector within its
// phase window.
func (c *Client) Retrieve(ctx context.Context, memory string, r RetrieveRequest, opts ...CallOption) (*wire.Result, error) {
	return c.Do(ctx, memory, r, opts...)
}

// Process filters an event, retrieves its context and stores it.
func (c *Client) Process(ctx context.Context, memory string, r ProcessRequest, opts ...CallOption) (*wire.Result, error) {
	return c.Do(ctx, memory, r, opts...)
}

// Forget removes an item by id.
func (c *Client) Forget(ctx context.Context, memory string, r ForgetRequest, opts ...CallOption) (*wire.Result, error) {
	return c.Do(ctx, memory, r, opts...)
}

// Create creates memory with its own settings.
func (c *Client) Create(ctx context.Context, memory string, r CreateRequest, opts ...CallOption) (*wire.Result, error) {
	return c.Do(ctx, memory, r, opts...)
}

// Info returns memory's settings (Result.Config), live items (Size) and
// filter state (Threshold, EMA).
func (c *Client) Info(ctx context.Context, memory string, opts ...CallOption) (*wire.Result, error) {
	return c.Do(ctx, memory, InfoRequest{}, opts...)
}

// Drop deletes memory and everything in it; Result.Found says whether it
// existed.
func (c *Client) Drop(ctx context.Context, memory string, opts ...CallOption) (*wire.Result, error) {
	return c.Do(ctx, memory, DropRequest{}, opts...)
}

// Call is a request in flight.
type Call struct {
	c     *Client
	reply string
	ack   jetstream.PubAckFuture
	done  chan struct{}
	msg   *nats.Msg
	err   error
	once  sync.Once
}

func (call *Call) finish(m *nats.Msg, err error) {
	call.once.Do(func() {
		call.msg, call.err = m, err
		close(call.done)
	})
}

// Done is closed once the result has come (or the client closed).
func (call *Call) Done() <-chan struct{} { return call.done }

// Seq waits for the server's acknowledgement of the publish and returns
// the request's stream sequence.
func (call *Call) Seq(ctx context.Context) (uint64, error) {
	select {
	case ack := <-call.ack.Ok():
		if ack.Duplicate {
			return ack.Sequence, fmt.Errorf("%w: sequence %d", ErrDuplicate, ack.Sequence)
		}
		return ack.Sequence, nil
	case err := <-call.ack.Err():
		return 0, fmt.Errorf("client: publish: %w (is a pelm server's stream there?)", err)
	case <-ctx.Done():
		return 0, fmt.Errorf("client: waiting for the publish to be stored: %w", ctx.Err())
	}
}

// Result waits for the result and decodes it. A result with ok false is
// returned with its error, a *wire.Error.
func (call *Call) Result(ctx context.Context) (*wire.Result, error) {
	m, err := call.Msg(ctx)
	if err != nil {
		return nil, err
	}
	res, err := wire.DecodeResult(m.Data, m.Header.Get(wire.HeaderContentType))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if !res.OK {
		if res.Error == nil {
			return res, fmt.Errorf("client: result %d is not ok and gives no error", res.Seq)
		}
		return res, res.Error
	}
	return res, nil
}

// Msg waits for the result and returns it as it came, headers and body
// (for tools that show results as they are).
func (call *Call) Msg(ctx context.Context) (*nats.Msg, error) {
	if _, err := call.Seq(ctx); err != nil {
		call.abandon()
		return nil, err
	}
	select {
	case <-call.done:
		return call.msg, call.err
	case <-ctx.Done():
		call.abandon()
		return nil, fmt.Errorf("client: waiting for the result: %w", ctx.Err())
	}
}

// abandon stops waiting for the result: a call given up on is not kept.
func (call *Call) abandon() {
	call.c.mu.Lock()
	delete(call.c.calls, call.reply)
	call.c.mu.Unlock()
}
