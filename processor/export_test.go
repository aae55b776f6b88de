package processor

import "time"

// SetMaterializeEvery sets how old an epoch must be to be sealed by age,
// so that a test decides when state is materialised. Call it before Run.
func SetMaterializeEvery(p *Processor, d time.Duration) { p.matEvery = d }
