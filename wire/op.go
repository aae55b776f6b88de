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
	OpCreate // memory management: create a memory with its settings
	OpInfo   // a memory's settings and state
	OpDrop   // delete a memory and everything in it

	NumOps = iota // one past the last Op
)

var opNames = [...]string{"_invalid", "store", "retrieve", "process", "forget", "create", "info", "drop"}

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
	case "create":
		return OpCreate
	case "info":
		return OpInfo
	case "drop":
		return OpDrop
	}
	return OpInvalid
}

// Manages reports whether o is a memory-management op (create, info, drop).
func (o Op) Manages() bool { return o == OpCreate || o == OpInfo || o == OpDrop }
