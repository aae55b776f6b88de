package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Buckets of the processes on one prefix. PELM_MEMBERS holds one key per
// live process, put again every lease/4; the bucket's max age is the
// lease, so the key of a process that stopped putting it (killed, paused,
// cut off) is gone a lease after its last put. PELM_OWNERS holds, per
// partition, the member that serves it; it changes only by compare and
// swap on its revision.
const (
	MembersBucket = "PELM_MEMBERS"
	OwnersBucket  = "PELM_OWNERS"

	// reconcileEvery is how often a process compares what it serves with
	// what it should.
	reconcileEvery = 250 * time.Millisecond
	// retryAfter is how long a partition whose serving failed waits before
	// this process tries it again.
	retryAfter = 2 * time.Second
)

// owner is the process's part in sharing the partitions: its membership,
// its lease, and the partitions it serves.
//
// Safety does not rest on the lease. Every write of a partition (journal,
// state, recovery marker) carries a fence check the server enforces
// (internal/durable), and a new owner deletes its predecessor's consumer,
// so a process that lost a partition can neither write it nor pull or ack
// its requests. The lease stops what the server cannot fence: a result's
// core publish and a purge. A process publishes nothing once it has not
// renewed its membership for 3/4 of the lease, while the others wait the
// whole lease (the key's max age) before they take over.
type owner struct {
	p     *Processor
	id    string
	lease time.Duration
	epoch time.Time // the base of held, on the monotonic clock

	members, owners jetstream.KeyValue
	held            atomic.Int64 // the lease holds until epoch + held
	// term counts the leases: it moves on when a renewal comes after the
	// lease had lapsed. What a process held under one term it may have
	// lost meanwhile, whatever the renewal says: partitions of an older
	// term write and publish nothing (partition.valid).
	term atomic.Uint64

	mu      sync.Mutex
	records map[int]ownerRecord // PELM_OWNERS as the watcher last saw it
	live    map[string]bool     // PELM_MEMBERS as the watcher last saw it
	listed  time.Time           // when live was last listed in full
	synced  atomic.Int32        // buckets whose watcher has given its initial values
	kick    chan struct{}

	runs    map[int]*run
	retryAt map[int]time.Time
	// claims are this process's keys in PELM_OWNERS, by its own
	// successful writes: the watcher may still show a key this process
	// has since deleted, and a claim is only as good as the write. A
	// partition runs only under a claim, which stays as it is while it runs.
	claims map[int]uint64
	wg     sync.WaitGroup

	handovers atomic.Uint64
	unowned   atomic.Int64 // partitions no live member owns, at the last reconcile
	wanted    atomic.Int64 // partitions given to this process, at the last reconcile; -1 before the first
}

type ownerRecord struct {
	member   string
	revision uint64
}

// run is a partition being served.
type run struct {
	pt        *partition
	cancel    context.CancelFunc
	done      chan struct{}
	releasing bool // handed back on purpose: delete the key once stopped
	err       error
}

// member is the value of a PELM_MEMBERS key, for people reading it.
type member struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

func newOwner(ctx context.Context, p *Processor) (*owner, error) {
	o := &owner{p: p, id: nuid.Next(), lease: p.cfg.Lease, epoch: time.Now(),
		records: map[int]ownerRecord{}, live: map[string]bool{}, kick: make(chan struct{}, 1), runs: map[int]*run{}, retryAt: map[int]time.Time{}, claims: map[int]uint64{}}
	o.wanted.Store(-1)
	var err error
	// The server marks a key that ages out, so that watchers see a member
	// go (LimitMarkerTTL).
	o.members, err = bucket(ctx, p.js, jetstream.KeyValueConfig{Bucket: MembersBucket, TTL: o.lease, LimitMarkerTTL: o.lease,
		Description: "pelm: the processes serving the prefix", Replicas: max(1, p.cfg.Replicas), Storage: jetstream.FileStorage})
	if err != nil {
		return nil, err
	}
	if st, err := o.members.Status(ctx); err == nil && st.TTL() > 0 && st.TTL() != o.lease {
		// The bucket was made with another lease: the bucket decides when
		// the others take over, so it is the lease.
		p.log.Warn().Dur("lease", st.TTL()).Dur("flag", o.lease).Msg("the members bucket's lease differs from --lease: using the bucket's")
		o.lease = st.TTL()
	}
	o.owners, err = bucket(ctx, p.js, jetstream.KeyValueConfig{Bucket: OwnersBucket,
		Description: "pelm: the process serving each partition", Replicas: max(1, p.cfg.Replicas), Storage: jetstream.FileStorage})
	if err != nil {
		return nil, err
	}
	if err := o.heartbeat(ctx); err != nil {
		return nil, fmt.Errorf("%w: join: %w", ErrSetup, err)
	}
	return o, nil
}

// bucket binds a key-value bucket, making it when it is missing.
func bucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: bucket %s: %w", ErrSetup, cfg.Bucket, err)
	}
	return kv, nil
}

func (o *owner) now() int64 { return int64(time.Since(o.epoch)) }

// valid reports whether the process holds its lease.
func (o *owner) valid() bool { return o.now() < o.held.Load() }

// validFor reports whether the process holds its lease and has held it
// without a gap since term.
func (o *owner) validFor(term uint64) bool {
	held := o.held.Load() // before term: heartbeat moves term before held
	return o.now() < held && o.term.Load() == term
}

// heartbeat renews the membership; the lease then holds for 3/4 of the
// lease from when the put was sent.
func (o *owner) heartbeat(ctx context.Context) error {
	sent := o.now()
	host, _ := os.Hostname()
	val, _ := json.Marshal(member{Host: host, PID: os.Getpid(), Started: o.epoch.UTC()})
	ctx, cancel := context.WithTimeout(ctx, o.lease/4)
	defer cancel()
	if _, err := o.members.Put(ctx, o.id, val); err != nil {
		return err
	}
	if sent >= o.held.Load() {
		o.term.Add(1) // a new lease: not a continuation of the last
	}
	o.held.Store(sent + int64(o.lease*3/4))
	return nil
}

// run serves partitions until ctx is done, then hands them all back.
func (o *owner) run(ctx context.Context) error {
	wctx, stopWatch := context.WithCancel(context.Background())
	defer func() {
		stopWatch()
		o.wg.Wait()
	}()
	if err := o.watch(wctx); err != nil {
		return err
	}
	tick := time.NewTicker(reconcileEvery)
	defer tick.Stop()
	beat := time.Now()
	for {
		select {
		case <-ctx.Done():
			o.stopAll()
			dctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
			_ = o.members.Delete(dctx, o.id) // the others need not wait out the lease
			cancel()
			return nil
		case <-tick.C:
		case <-o.kick:
		}
		if o.p.nc.IsClosed() {
			for _, r := range o.runs {
				r.pt.lose() // nothing can be written or acked any more
			}
			o.stopAll()
			return fmt.Errorf("processor: %w", nats.ErrConnectionClosed)
		}
		if time.Since(beat) >= o.lease/4 || !o.valid() {
			if err := o.heartbeat(ctx); err != nil {
				o.p.log.Warn().Err(err).Msg("renew membership")
			} else {
				beat = time.Now()
			}
		}
		o.reconcile(ctx)
	}
}

// watch keeps records and live up to date from the two buckets, and kicks
// a reconcile on every change.
func (o *owner) watch(ctx context.Context) error {
	err := o.follow(ctx, o.owners, func() { clear(o.records) }, func(e jetstream.KeyValueEntry) {
		k, ok := partitionKey(e.Key())
		if !ok {
			return
		}
		if e.Operation() == jetstream.KeyValuePut {
			o.records[k] = ownerRecord{member: string(e.Value()), revision: e.Revision()}
		} else {
			delete(o.records, k)
		}
	})
	if err != nil {
		return err
	}
	return o.follow(ctx, o.members, func() { clear(o.live) }, func(e jetstream.KeyValueEntry) {
		o.live[e.Key()] = e.Operation() == jetstream.KeyValuePut
		if !o.live[e.Key()] {
			delete(o.live, e.Key())
		}
	})
}

// watchedBuckets is how many buckets watch follows: PELM_OWNERS and
// PELM_MEMBERS.
const watchedBuckets = 2

// rewatchAfter is how long a process waits before it watches a bucket
// again whose watcher ended.
const rewatchAfter = time.Second

// follow applies every change of a bucket, under o.mu, until ctx is done.
//
// nats.go ends a watcher whose ordered consumer it could not make again
// (as when a cluster loses a node: the consumer's create is refused), and
// says so only by closing its channel. A process that stopped there would
// act on a stale view for ever, so follow watches the bucket again, and
// swaps in the new watcher's view whole (reset, then its initial values)
// once it has it all: keys gone meanwhile are not in it.
func (o *owner) follow(ctx context.Context, kv jetstream.KeyValue, reset func(), apply func(jetstream.KeyValueEntry)) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("%w: watch %s: %w", ErrSetup, kv.Bucket(), err)
	}
	var once sync.Once // counts the bucket synced on its first initial values
	o.wg.Go(func() {
		for {
			o.drain(w, &once, reset, apply)
			_ = w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(rewatchAfter):
				}
				o.p.log.Warn().Str("bucket", kv.Bucket()).Msg("the bucket's watcher ended: watching it again")
				if w, err = kv.WatchAll(ctx); err == nil {
					break
				}
				o.p.log.Warn().Err(err).Str("bucket", kv.Bucket()).Msg("watch bucket")
			}
		}
	})
	return nil
}

// drain applies a watcher's changes until it ends: its initial values all
// at once, after reset, then each change as it comes.
func (o *owner) drain(w jetstream.KeyWatcher, once *sync.Once, reset func(), apply func(jetstream.KeyValueEntry)) {
	var initial []jetstream.KeyValueEntry
	synced := false
	for e := range w.Updates() {
		switch {
		case !synced && e != nil:
			initial = append(initial, e)
			continue
		case !synced:
			synced = true
			o.mu.Lock()
			reset()
			for _, e := range initial {
				apply(e)
			}
			o.mu.Unlock()
			initial = nil
			once.Do(func() { o.synced.Add(1) })
		case e == nil:
			continue
		default:
			o.mu.Lock()
			apply(e)
			o.mu.Unlock()
		}
		select {
		case o.kick <- struct{}{}:
		default:
		}
	}
}

func ownerKey(k int) string { return "p." + strconv.Itoa(k) }

func partitionKey(key string) (int, bool) {
	s, ok := strings.CutPrefix(key, "p.")
	if !ok {
		return 0, false
	}
	k, err := strconv.Atoi(s)
	return k, err == nil
}

// reconcile starts the partitions this process should serve and may take,
// hands back those it should not serve, and stops at once those another
// process took.
func (o *owner) reconcile(ctx context.Context) {
	o.reap()
	if o.synced.Load() < watchedBuckets {
		return // what it knows of the others is not whole yet
	}
	for _, r := range o.runs {
		if !o.validFor(r.pt.term) {
			// The lease lapsed since the partition was taken: another
			// process may already serve it.
			r.pt.lose()
			r.cancel()
		}
	}
	if !o.valid() {
		return
	}
	if time.Since(o.listed) >= o.lease {
		// A bucket made without age markers (by an earlier version) tells
		// watchers nothing when a member ages out: list it now and then.
		lctx, cancel := context.WithTimeout(ctx, apiTimeout)
		keys, err := o.members.Keys(lctx)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
			o.p.log.Warn().Err(err).Msg("list members")
			return
		}
		o.mu.Lock()
		o.live = map[string]bool{}
		for _, k := range keys {
			o.live[k] = true
		}
		o.mu.Unlock()
		o.listed = time.Now()
	}
	o.mu.Lock()
	live := make(map[string]bool, len(o.live)+1)
	for k := range o.live {
		live[k] = true
	}
	o.mu.Unlock()
	live[o.id] = true // held: the put may just not be seen yet
	members := make([]string, 0, len(live))
	for k := range live {
		members = append(members, k)
	}
	want := assign(o.p.parts+1, members)
	wanted := 0
	for _, m := range want {
		if m == o.id {
			wanted++
		}
	}
	o.wanted.Store(int64(wanted))
	o.mu.Lock()
	records := make(map[int]ownerRecord, len(o.records))
	for k, r := range o.records {
		records[k] = r
	}
	o.mu.Unlock()
	unowned := 0
	for k := 0; k <= o.p.parts; k++ {
		if rec, has := records[k]; !has || !live[rec.member] {
			unowned++
		}
	}
	o.unowned.Store(int64(unowned))
	for k := 0; k <= o.p.parts; k++ {
		rec, has := records[k]
		mine := want[k] == o.id
		if r := o.runs[k]; r != nil {
			switch {
			case has && rec.member != o.id && rec.revision > o.claims[k]:
				// Taken over. A record older than this process's own claim
				// is the watcher lagging behind the claim, not news.
				r.pt.lose()
				r.cancel()
			case !mine && !r.releasing:
				r.releasing = true
				r.cancel()
			}
			continue
		}
		if !mine {
			if rev, ok := o.claims[k]; ok {
				o.release(ctx, k, rev)
			}
			continue
		}
		if time.Now().Before(o.retryAt[k]) {
			continue
		}
		rev, ok := o.take(ctx, k, rec, has, live)
		if ok {
			o.start(ctx, k, rev)
		}
	}
}

// take claims partition k in PELM_OWNERS when it is free, or its owner is
// no longer a member.
func (o *owner) take(ctx context.Context, k int, rec ownerRecord, has bool, live map[string]bool) (uint64, bool) {
	cctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	var (
		rev uint64
		err error
	)
	switch {
	case !has:
		rev, err = o.owners.Create(cctx, ownerKey(k), []byte(o.id))
	case rec.member == o.id:
		if o.claims[k] == rec.revision {
			return rec.revision, true // its own, as it left it
		}
		return 0, false // a key it has deleted since: the watcher will say so
	case !live[rec.member]:
		// The watchers of the two buckets are not in step: a member that
		// has just joined may own a partition before this process sees it
		// join. Ask the bucket itself before taking the partition.
		if _, err := o.members.Get(cctx, rec.member); err == nil {
			return 0, false
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0, false
		}
		rev, err = o.owners.Update(cctx, ownerKey(k), []byte(o.id), rec.revision)
	default:
		return 0, false // its owner is alive: it hands it back
	}
	if err != nil {
		// Another process was quicker, or the watcher is behind.
		o.p.log.Debug().Err(err).Int("partition", k).Msg("take partition")
		return 0, false
	}
	o.claims[k] = rev
	return rev, true
}

// release deletes this process's claim on partition k.
func (o *owner) release(ctx context.Context, k int, rev uint64) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	defer cancel()
	err := o.owners.Delete(dctx, ownerKey(k), jetstream.LastRevision(rev))
	switch {
	case err == nil:
		delete(o.claims, k)
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists):
		// The key moved on: taken over.
		delete(o.claims, k)
		o.p.log.Debug().Err(err).Int("partition", k).Uint64("revision", rev).Msg("hand back partition")
	default:
		o.p.log.Warn().Err(err).Int("partition", k).Uint64("revision", rev).Msg("hand back partition; trying again")
	}
}

// start serves partition k on a goroutine of its own.
func (o *owner) start(ctx context.Context, k int, rev uint64) {
	pt := o.p.newPartition(k)
	pt.term = o.term.Load()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &run{pt: pt, cancel: cancel, done: make(chan struct{})}
	o.runs[k] = r
	o.p.mu.Lock()
	o.p.running[k] = pt
	o.p.mu.Unlock()
	o.handovers.Add(1)
	o.p.log.Info().Int("partition", k).Uint64("revision", rev).Msg("serving partition")
	o.wg.Go(func() {
		defer close(r.done)
		r.err = pt.serve(rctx)
		select {
		case o.kick <- struct{}{}:
		default:
		}
	})
}

// reap collects the partitions that stopped.
func (o *owner) reap() {
	for k, r := range o.runs {
		select {
		case <-r.done:
		default:
			continue
		}
		o.finish(k, r)
	}
}

// finish forgets a stopped partition, handing its key back when it
// stopped on purpose.
func (o *owner) finish(k int, r *run) {
	delete(o.runs, k)
	o.p.mu.Lock()
	delete(o.p.running, k)
	o.p.mu.Unlock()
	switch {
	case r.pt.lost.Load():
	case r.err != nil:
		o.p.log.Error().Err(r.err).Int("partition", k).Msg("serving partition failed; trying again shortly")
		o.retryAt[k] = time.Now().Add(retryAfter)
	case r.releasing:
		if rev, ok := o.claims[k]; ok {
			o.release(context.Background(), k, rev)
		}
		o.p.log.Info().Int("partition", k).Msg("partition handed back")
	}
}

// stopAll hands every partition back and waits for them.
func (o *owner) stopAll() {
	for _, r := range o.runs {
		r.releasing = true
		r.cancel()
	}
	for k, r := range o.runs {
		<-r.done
		o.finish(k, r)
	}
}

// observe sets the ownership gauges.
func (o *owner) observe(m *promMetrics) {
	o.p.mu.Lock()
	n := len(o.p.running)
	o.p.mu.Unlock()
	m.ownership(n, o.p.parts+1, int(o.unowned.Load()))
}
