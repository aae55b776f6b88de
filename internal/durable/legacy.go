package durable

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pelm-dev/pelm/filter"
	"github.com/pelm-dev/pelm/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// ErrLegacy is returned by MigrateLegacy when a processor of a version
// before partitions left work that only it can finish.
var ErrLegacy = errors.New("durable: a processor of an earlier version left unfinished work")

// MigrateLegacy takes over the layout of a version before partitions: one
// journal (<prefix>.journal), one commit mark (<prefix>.state.commit) and
// one recovery marker (<prefix>.state.recovering). The items and settings
// of memories keep their layout, so what remains to do is to make sure
// that nothing in the old journal is still needed, and then delete it. It
// is needed when it holds an entry the state does not, when it holds the
// result of a request still in the requests stream (whose ack was lost),
// or when a recovery was running: that is ErrLegacy, and the way out is to
// start the earlier version once more and stop it with SIGTERM.
// MigrateLegacy reports whether there was anything to take over.
func MigrateLegacy(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, prefix string) (bool, error) {
	s := New(nc, js, Config{Prefix: prefix})
	s.journal.subject = prefix + ".journal"
	s.part.commit = prefix + ".state.commit"
	s.part.marker = prefix + ".state.recovering"
	commit, err := lastOn(ctx, js, StateStream, s.part.commit)
	if err != nil {
		return false, fmt.Errorf("durable: legacy commit mark: %w", err)
	}
	marker, err := lastOn(ctx, js, StateStream, s.part.marker)
	if err != nil {
		return false, fmt.Errorf("durable: legacy recovery marker: %w", err)
	}
	jst, err := js.Stream(ctx, JournalStream)
	if err != nil {
		return false, fmt.Errorf("durable: journal: %w", err)
	}
	jinfo, err := jst.Info(ctx, jetstream.WithSubjectFilter(s.journal.subject))
	if err != nil {
		return false, fmt.Errorf("durable: journal: %w", err)
	}
	records := jinfo.State.Subjects[s.journal.subject]
	if commit == nil && marker == nil && records == 0 {
		return false, nil
	}
	if marker != nil {
		var m Marker
		if err := msgpack.Unmarshal(marker.Data, &m); err != nil {
			return true, fmt.Errorf("durable: legacy recovery marker: %w", err)
		}
		if m.From != 0 {
			return true, fmt.Errorf("%w: it died while recovering requests from %d", ErrLegacy, m.From)
		}
	}
	if commit != nil {
		var cr commitRecord
		if err := msgpack.Unmarshal(commit.Data, &cr); err != nil {
			return true, fmt.Errorf("durable: legacy commit mark: %w", err)
		}
		s.matMark = cr.Journal
	}
	call := func() context.Context { return ctx }
	if _, err := s.replayJournal(ctx, call, legacyApplier{}); err != nil {
		return true, err
	}
	if err := s.forgetAckedDone(ctx); err != nil {
		return true, err
	}
	for seq, d := range s.done {
		if !d.confirmed {
			return true, fmt.Errorf("%w: request %d ran but is still in the requests stream (its ack was lost)", ErrLegacy, seq)
		}
	}
	st, err := js.Stream(ctx, StateStream)
	if err != nil {
		return true, err
	}
	for _, subj := range []string{s.part.commit, s.part.marker} {
		if err := st.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return true, fmt.Errorf("durable: purge legacy %s: %w", subj, err)
		}
	}
	if err := jst.Purge(ctx, jetstream.WithPurgeSubject(s.journal.subject)); err != nil {
		return true, fmt.Errorf("durable: purge legacy journal: %w", err)
	}
	return true, nil
}

// legacyApplier refuses every journal entry that the state does not hold.
type legacyApplier struct{}

func (legacyApplier) Reset()                                 {}
func (legacyApplier) Create(string, wire.MemoryConfig) error { return nil }
func (legacyApplier) Load(string, []Item) ([]string, error)  { return nil, nil }
func (legacyApplier) SetFilter(string, filter.State) error   { return nil }
func (legacyApplier) Replay(_ string, e *Entry) error {
	return fmt.Errorf("%w: request %d is in its journal but not yet in the state", ErrLegacy, e.Seq)
}
