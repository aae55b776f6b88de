package durable

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// committer streams state messages into JetStream atomic batches: nothing
// of a batch is stored unless all of it is. Its header map and values are
// reused from message to message (nats.go serialises them on publish), so
// that adding a message allocates nothing of ours.
type committer struct {
	nc   *nats.Conn
	subj stateSubjects
	// commitSubject is the partition's commit mark; fence adds its check.
	commitSubject string
	fence         func(nats.Header)
	id            string
	n             int

	msg  nats.Msg
	hdr  nats.Header
	vals map[string][]string // one reused value slice per header name
}

func (c *committer) begin() { c.id, c.n = nuid.Next(), 0 }

// batchSeqs holds the batch sequence numbers as strings, so that
// numbering messages allocates nothing.
var batchSeqs = func() []string {
	s := make([]string, maxAtomicBatch+1)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// header sets one header of the next message.
func (c *committer) header(name, value string) {
	v := c.vals[name]
	if v == nil {
		if c.vals == nil {
			c.vals = map[string][]string{}
		}
		v = make([]string, 1)
		c.vals[name] = v
	}
	v[0] = value
	c.hdr[name] = v
}

// next starts the headers of the next message of the open batch.
func (c *committer) next() {
	if c.hdr == nil {
		c.hdr = nats.Header{}
	}
	clear(c.hdr)
	c.n++
	c.header(hdrBatchID, c.id)
	c.header(hdrBatchSeq, batchSeqs[c.n])
}

// send publishes the message whose headers next and header set. nats.go
// copies it into its buffer, so data may be reused at once.
func (c *committer) send(subject string, data []byte) error {
	c.msg = nats.Msg{Subject: subject, Header: c.hdr, Data: data}
	return c.nc.PublishMsg(&c.msg)
}

func (c *committer) add(subject string, data []byte) error {
	c.next()
	return c.send(subject, data)
}

func (c *committer) tombstone(subject string) error {
	c.next()
	c.header(hdrOp, opDelete)
	c.header(hdrTTL, tombstoneTTL)
	return c.send(subject, nil)
}

type commitRecord struct {
	Seq     uint64      `msgpack:"seq"` // the last request whose effects the batch holds
	At      time.Time   `msgpack:"at"`
	Journal journalMark `msgpack:"journal"` // the per-item state holds everything before it
}

func (c *committer) commitMsg(lastSeq uint64, mark journalMark) *nats.Msg {
	c.n++
	h := nats.Header{hdrBatchID: {c.id}, hdrBatchSeq: {strconv.Itoa(c.n)}, hdrCommit: {"1"}}
	if c.fence != nil {
		c.fence(h) // the whole batch is refused when another process fenced the partition
	}
	data := encodeRecord(commitRecord{Seq: lastSeq, At: time.Now().UTC(), Journal: mark})
	return &nats.Msg{Subject: c.commitSubject, Header: h, Data: data}
}

// commitAsync closes the atomic batch; the server's answer goes to reply.
func (c *committer) commitAsync(lastSeq uint64, mark journalMark, reply string) error {
	m := c.commitMsg(lastSeq, mark)
	m.Reply = reply
	if err := c.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("durable: commit state: %w", err)
	}
	return nil
}
