package durable

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrFenced is returned by Append, and by the writes behind Tick and
// Close, once another process has fenced the partition: this store may
// never write it again, and its owner must stop serving it.
var ErrFenced = errors.New("durable: fenced: another process owns the partition")

// JetStream's error codes for a failed Nats-Expected-Last-Subject-Sequence
// check: 10071 names the sequence found; a replicated stream answers 10164
// instead, also when another write checked against the same subject is
// still in flight, so that one is confirmed by reading the fence.
const (
	errCodeWrongLastSequence         = 10071
	errCodeWrongLastSequenceConstant = 10164
)

// partitionSubjects names what belongs to one partition: its journal, the
// fences of the journal and of the state, its commit mark and its recovery
// marker. The items of its memories keep the per-memory layout.
type partitionSubjects struct {
	journal, journalFence string
	commit, stateFence    string
	marker                string
}

func newPartitionSubjects(prefix string, k int) partitionSubjects {
	p := strconv.Itoa(k)
	return partitionSubjects{
		journal:      prefix + ".journal." + p,
		journalFence: prefix + ".journal." + p + ".fence",
		commit:       prefix + ".state.commit." + p,
		stateFence:   prefix + ".state.fence." + p,
		marker:       prefix + ".state.recovering." + p,
	}
}

// fence is what the server checks on every write of the partition: the
// sequence of the last fence message on each stream. A process that took
// the partition over later wrote a newer fence, so these no longer match.
type fence struct {
	journal, state uint64
}

// Fence claims the partition for this store: it writes a fence message to
// the journal and to the state stream, after which every write of a store
// that fenced earlier is refused by the server. It must be called, once
// the process owns the partition, before Restore: the restore then sees
// every write the previous owner could still make.
func (s *Store) Fence(ctx context.Context, owner string) error {
	data := encodeRecord(fenceRecord{Owner: owner, At: time.Now().UTC()})
	ja, err := s.js.Publish(ctx, s.part.journalFence, data)
	if err != nil {
		return fmt.Errorf("durable: fence journal of partition %d: %w", s.cfg.Partition, err)
	}
	sa, err := s.js.Publish(ctx, s.part.stateFence, data)
	if err != nil {
		return fmt.Errorf("durable: fence state of partition %d: %w", s.cfg.Partition, err)
	}
	s.fence = fence{journal: ja.Sequence, state: sa.Sequence}
	s.fenced.Store(false)
	return nil
}

// FenceSeq is the journal fence this store wrote last: it names this
// ownership of the partition.
func (s *Store) FenceSeq() uint64 { return s.fence.journal }

type fenceRecord struct {
	Owner string    `msgpack:"owner"`
	At    time.Time `msgpack:"at"`
}

// Fenced reports whether the server has refused a write of this store
// because another process fenced the partition.
func (s *Store) Fenced() bool { return s.fenced.Load() }

// journalFenced adds the journal's fence check to a message.
func (s *Store) journalFenced(h nats.Header) {
	h.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(s.fence.journal, 10))
	h.Set(jetstream.ExpectedLastSubjSeqSubjHeader, s.part.journalFence)
}

// stateFenced adds the state's fence check to a message.
func (s *Store) stateFenced(h nats.Header) {
	h.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(s.fence.state, 10))
	h.Set(jetstream.ExpectedLastSubjSeqSubjHeader, s.part.stateFence)
}

// checkFenced turns the server's refusal of a fenced write into ErrFenced
// and remembers it.
func (s *Store) checkFenced(err error) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	if refused(int(apiErr.ErrorCode)) && s.fenceMoved() {
		s.fenced.Store(true)
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return err
}

// refused reports whether an error code is a failed expected-sequence
// check.
func refused(code int) bool {
	return code == errCodeWrongLastSequence || code == errCodeWrongLastSequenceConstant
}

// fenceMoved reports whether another store has fenced the partition since
// this one did: a fence message newer than this store's on either stream.
// When it cannot tell, it says so: a refusal is taken at its word.
func (s *Store) fenceMoved() bool {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	for _, f := range []struct {
		stream, subject string
		seq             uint64
	}{{JournalStream, s.part.journalFence, s.fence.journal}, {StateStream, s.part.stateFence, s.fence.state}} {
		raw, err := lastOn(ctx, s.js, f.stream, f.subject)
		if err != nil {
			return true
		}
		if raw != nil && raw.Sequence != f.seq {
			return true
		}
	}
	return false
}

// owns reports whether a memory belongs to this store's partition.
func (s *Store) owns(memory string) bool { return s.cfg.Owns == nil || s.cfg.Owns(memory) }

// valid reports whether the process still believes it owns the partition;
// it guards the writes the server cannot fence (purges).
func (s *Store) valid() bool { return s.cfg.Valid == nil || s.cfg.Valid() }

// Partition returns the partition of a memory among n, as JetStream's
// subject transform function partition(n,1) computes it from the memory
// name: FNV-1a of the name, modulo n.
func Partition(memory string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(memory); i++ {
		h ^= uint32(memory[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// lastOn returns the last message of a stream on subject, or nil.
func lastOn(ctx context.Context, js jetstream.JetStream, stream, subject string) (*jetstream.RawStreamMsg, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	raw, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return raw, err
}
