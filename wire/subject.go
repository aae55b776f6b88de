package wire

import (
	"fmt"
	"strings"
)

const InvalidName = "_invalid"

// ValidMemoryName reports whether s is a memory name of PROTOCOL.md: 1 to
// 64 of A-Z a-z 0-9 _ -.
func ValidMemoryName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Route is where a request's subject says it goes.
type Route struct {
	Memory string // a valid memory name, or InvalidName
	OpName string // the op token as sent, or InvalidName
	Op     Op
	Err    *Error // why the subject is not a request's, or nil
}

// ParseSubject splits "<reqPrefix><memory>.<op>". reqPrefix ends with a dot.
// It does not allocate: memory and opName are substrings of subject.
func ParseSubject(subject, reqPrefix string) Route {
	rest, ok := strings.CutPrefix(subject, reqPrefix)
	if !ok {
		return Route{Memory: InvalidName, OpName: InvalidName, Err: Errorf(CodeBadRequest, "subject %q is not under %q", Clip(subject), reqPrefix)}
	}
	mem, opName, ok := strings.Cut(rest, ".")
	r := Route{Memory: mem, OpName: opName}
	if !ValidMemoryName(mem) {
		r.Memory = InvalidName
		r.Err = Errorf(CodeBadMemory, "memory name %q: want 1 to 64 of A-Z a-z 0-9 _ -", Clip(mem))
	}
	if !ok || strings.Contains(opName, ".") || opName == "" {
		r.OpName = InvalidName
		if r.Err == nil {
			r.Err = Errorf(CodeUnknownOp, "subject %q: want %s<memory>.<op>", Clip(subject), reqPrefix)
		}
		return r
	}
	r.Op = ParseOp(opName)
	if r.Op == OpInvalid {
		// An unknown token (even "*") never becomes part of a subject.
		r.OpName = InvalidName
		if r.Err == nil {
			r.Err = Errorf(CodeUnknownOp, "op %q: want store, retrieve, process, forget, create, info or drop", Clip(opName))
		}
	}
	return r
}

// ReplyRules decides whether a Pelm-Reply-To subject may receive a result.
type ReplyRules struct {
	forbidden []string // prefixes under which a result would become a request, a dead letter or state
	exact     []string // subjects a result must not take (the stats)
	allow     []string // --reply-allow patterns
}

// MaxReplyTo bounds Pelm-Reply-To: NATS refuses a publish whose control
// line (subject included) passes 4 KiB, and closes the connection.
const MaxReplyTo = 256

func NewReplyRules(prefix string, allow []string) (ReplyRules, error) {
	for _, p := range allow {
		if !ValidSubject(p, true) {
			return ReplyRules{}, fmt.Errorf("%w: reply-allow %q", ErrPattern, p)
		}
	}
	return ReplyRules{forbidden: []string{prefix + ".req", prefix + ".dlq", prefix + ".state", prefix + ".journal", prefix + ".part"},
		exact: []string{prefix + ".stats"}, allow: allow}, nil
}

// check returns nil when results may go to subject.
func (rr ReplyRules) Check(subject string) *Error {
	if len(subject) > MaxReplyTo {
		return Errorf(CodeBadRequest, "Pelm-Reply-To of %d bytes: at most %d", len(subject), MaxReplyTo)
	}
	if !ValidSubject(subject, false) {
		return Errorf(CodeBadRequest, "Pelm-Reply-To %q: not a valid subject without wildcards", subject)
	}
	if subject[0] == '$' {
		return Errorf(CodeBadRequest, "Pelm-Reply-To %q: subjects beginning with $ are reserved", subject)
	}
	for _, f := range rr.forbidden {
		if subject == f || strings.HasPrefix(subject, f+".") {
			return Errorf(CodeBadRequest, "Pelm-Reply-To %q: lies under %s, a result must not become a request, a dead letter or state", subject, f)
		}
	}
	for _, f := range rr.exact {
		if subject == f {
			return Errorf(CodeBadRequest, "Pelm-Reply-To %q: that subject carries the stats", subject)
		}
	}
	for _, p := range rr.allow {
		if SubjectMatch(p, subject) {
			return nil
		}
	}
	return Errorf(CodeBadRequest, "Pelm-Reply-To %q: not allowed by --reply-allow", subject)
}

// clip shortens client-supplied text quoted in an error message, which
// also travels in the DLQ copy's Pelm-Error header.
func Clip(s string) string {
	const max = 128
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// ValidSubject checks NATS subject syntax: dot-separated non-empty tokens
// without white space; wildcard tokens only when wild is true.
func ValidSubject(s string, wild bool) bool {
	if s == "" {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			return false
		}
		if (tok == "*" || tok == ">") && !wild {
			return false
		}
		if strings.ContainsAny(tok, "*>") && len(tok) > 1 {
			return false
		}
	}
	return !wild || !strings.Contains(s, ">.") // '>' only as the last token
}

// SubjectMatch reports whether subject matches pattern (with * and >).
func SubjectMatch(pattern, subject string) bool {
	for {
		pt, prest, pmore := strings.Cut(pattern, ".")
		if pt == ">" {
			return subject != ""
		}
		st, srest, smore := strings.Cut(subject, ".")
		if pt != "*" && pt != st {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}
