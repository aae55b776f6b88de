package processor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// promMetrics are the processor's Prometheus series (PROTOCOL.md, Stats: the
// same numbers as pelm.stats, in Prometheus form). They are updated once
// per batch on the batch goroutine; the client library's counters are
// atomic, so a scrape needs no lock of ours.
type promMetrics struct {
	requests    *prometheus.CounterVec   // memory, op, outcome
	latency     *prometheus.HistogramVec // stage: queue, process, total
	batchSize   prometheus.Histogram
	pending     prometheus.Gauge
	redelivered prometheus.Counter
	deadLetters prometheus.Counter
	replays     prometheus.Counter
	memSize     *prometheus.GaugeVec
	memCap      *prometheus.GaugeVec
	memThresh   *prometheus.GaugeVec
	memEMA      *prometheus.GaugeVec
	journal     prometheus.Gauge
	epochs      prometheus.Gauge
	memBytes    *prometheus.GaugeVec
	reserved    prometheus.Gauge
	owned       prometheus.Gauge
	unowned     prometheus.Gauge
	partitions  prometheus.Gauge
	takeovers   prometheus.Counter
	fences      prometheus.Counter
	rebuild     prometheus.Histogram
}

// newMetrics registers the series; ready and failures are read at each
// scrape.
func newMetrics(reg prometheus.Registerer, ready func() bool, failures func() uint64, maxBytes int64) (*promMetrics, error) {
	budget := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "pelm_memories_budget_bytes",
		Help: "--max-bytes: the RAM the memories may reserve (0: no bound).",
	})
	budget.Set(float64(maxBytes))
	m := &promMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pelm_requests_total",
			Help: "Requests handled, by memory, op and outcome (ok, error, rejected).",
		}, []string{"memory", "op", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pelm_request_duration_seconds",
			Help:    "Request latency by stage: queue (stream to batch start), process (batch start to result), total (stream to result).",
			Buckets: prometheus.ExponentialBucketsRange(50e-6, 10, 20),
		}, []string{"stage"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pelm_batch_size",
			Help:    "Requests per batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pelm_consumer_pending_messages",
			Help: "Requests in the stream not yet delivered to the processor.",
		}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pelm_redeliveries_total",
			Help: "Requests delivered more than once.",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pelm_dead_letters_total",
			Help: "Requests copied to the dead-letter stream.",
		}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pelm_replayed_results_total",
			Help: "Results republished from a stored result instead of running the request again.",
		}),
		memSize:   memoryGauge("pelm_memory_items", "Items a memory holds."),
		memCap:    memoryGauge("pelm_memory_capacity_items", "Items a memory may hold."),
		memThresh: memoryGauge("pelm_memory_filter_threshold", "The threshold of a memory's moral filter."),
		memEMA:    memoryGauge("pelm_memory_filter_ema", "The acceptance EMA of a memory's moral filter."),
		memBytes:  memoryGauge("pelm_memory_bytes", "RAM a memory holds for its vectors, their bookkeeping, ids and metas."),
		reserved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pelm_memories_reserved_bytes",
			Help: "RAM the memories reserve, each at its full capacity: what --max-bytes bounds.",
		}),
		journal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pelm_journal_records",
			Help: "Journal records not yet purged: a few seconds' worth in steady state; growing means materialising or ack confirmation is stuck.",
		}),
		epochs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pelm_materialize_epochs_waiting",
			Help: "Sealed epochs of item changes not yet committed to the per-item state; above 4 the batch loop waits.",
		}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pelm_partitions_owned",
			Help: "Partitions this process serves.",
		}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pelm_partitions",
			Help: "Partitions of the prefix, the catch-all of subjects that name no memory included.",
		}),
		unowned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pelm_partitions_unowned",
			Help: "Partitions that, as this process sees them, no live process owns: their requests wait.",
		}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pelm_partition_takeovers_total",
			Help: "Partitions this process took over (at start, from a process that stopped or died, or in a rebalance).",
		}),
		fences: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pelm_partitions_lost_total",
			Help: "Partitions this process lost to another (its lease lapsed, or the server refused a write as fenced).",
		}),
		rebuild: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pelm_partition_rebuild_seconds",
			Help:    "From taking a partition to consuming it: fence, restore of its memories, recovery of the requests its previous owner held.",
			Buckets: prometheus.ExponentialBucketsRange(0.01, 120, 12),
		}),
	}
	matFailures := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "pelm_materialize_failures_total",
		Help: "Commits of item changes to the per-item state that failed or went unanswered (each is retried).",
	}, func() float64 { return float64(failures()) })
	readyGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pelm_ready",
		Help: "1 while the processor is serving (as /readyz), else 0.",
	}, func() float64 {
		if ready() {
			return 1
		}
		return 0
	})
	for _, c := range []prometheus.Collector{readyGauge, m.requests, m.latency, m.batchSize, m.pending, m.redelivered,
		m.deadLetters, m.replays, m.memSize, m.memCap, m.memThresh, m.memEMA, m.journal, m.epochs, matFailures,
		m.memBytes, m.reserved, budget, m.owned, m.partitions, m.unowned, m.takeovers, m.fences, m.rebuild} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func memoryGauge(name, help string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"memory"})
}

func (m *promMetrics) deadLetter() {
	if m != nil {
		m.deadLetters.Inc()
	}
}

// durability moves the journal's and the materialiser's gauges by what a
// partition's backlog changed.
func (m *promMetrics) durability(records, epochs int) {
	if m != nil {
		m.journal.Add(float64(records))
		m.epochs.Add(float64(epochs))
	}
}

// handover counts a partition taken over, and how long it took to serve it.
func (m *promMetrics) handover(d time.Duration) {
	if m != nil {
		m.takeovers.Inc()
		m.rebuild.Observe(d.Seconds())
	}
}

// fenced counts a partition lost to another process.
func (m *promMetrics) fenced() {
	if m != nil {
		m.fences.Inc()
	}
}

// ownership sets the partition gauges.
func (m *promMetrics) ownership(owned, partitions, unowned int) {
	if m != nil {
		m.owned.Set(float64(owned))
		m.partitions.Set(float64(partitions))
		m.unowned.Set(float64(unowned))
	}
}

// memories sets the gauges of every memory (after a restore).
func (m *promMetrics) memories(mems []*memory, reserved int64) {
	if m == nil {
		return
	}
	m.reserved.Set(float64(reserved))
	for _, mem := range mems {
		m.memory(mem)
	}
}

// dropped removes a dropped memory's series.
func (m *promMetrics) dropped(name string) {
	if m == nil {
		return
	}
	for _, g := range []*prometheus.GaugeVec{m.memSize, m.memCap, m.memThresh, m.memEMA, m.memBytes} {
		g.DeleteLabelValues(name)
	}
}

func (m *promMetrics) memory(mem *memory) {
	if m == nil {
		return
	}
	st := mem.stats()
	m.memSize.WithLabelValues(mem.name).Set(float64(st.Size))
	m.memCap.WithLabelValues(mem.name).Set(float64(st.Capacity))
	m.memThresh.WithLabelValues(mem.name).Set(st.Threshold)
	m.memEMA.WithLabelValues(mem.name).Set(st.EMA)
	m.memBytes.WithLabelValues(mem.name).Set(float64(mem.mem.Bytes()))
}

// observe folds one finished batch into the series.
func (m *promMetrics) observe(slots []slot, mems []*memory, reserved int64) {
	if m == nil {
		return
	}
	m.reserved.Set(float64(reserved))
	m.batchSize.Observe(float64(len(slots)))
	queue, process, total := m.latency.WithLabelValues("queue"), m.latency.WithLabelValues("process"), m.latency.WithLabelValues("total")
	for i := range slots {
		s := &slots[i]
		o := &s.out
		m.requests.WithLabelValues(o.Memory, o.OpName, o.Kind()).Inc()
		if s.delivered > 1 {
			m.redelivered.Inc()
		}
		if s.replayed() {
			m.replays.Inc()
		} else {
			queue.Observe(float64(o.QueueUS) / 1e6)
			process.Observe(float64(o.ProcessUS) / 1e6)
			total.Observe(float64(o.TotalUS) / 1e6)
		}
	}
	for _, mem := range mems {
		if len(mem.reqs) > 0 {
			m.memory(mem)
		}
	}
}
