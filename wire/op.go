package wire

// Op is a request's operation, the last token of its subject.
type Op uint8

// The operations of PROTOCOL.md.
const (
	OpInvalid Op = iota
	OpStore
	OpRetrieve
	OpProcess
	OpForget
)

var opNames = [...]string{"_invalid", "store", "retrieve", "process", "forget"}

func (o Op) String() string { return opNames[o] }

// ParseOp maps an op token to its Op; OpInvalid for any other.
func ParseOp(s string) Op {
	switch s {
	case "store":
		return OpStore
	case "retrieve":
		return OpRetrieve
	case "process":
		return OpProcess
	case "forget":
		return OpForget
	}
	return OpInvalid
}
