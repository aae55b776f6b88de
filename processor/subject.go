package processor

import (
	"fmt"
	"strings"
)

const invalidName = "_invalid"

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

// route is where a request's subject says it goes.
type route struct {
	memory string // a valid memory name, or invalidName
	opName string // the op token as sent, or invalidName
	op     Op
	err    *RequestError
}

// parseSubject splits "<reqPrefix><memory>.<op>". reqPrefix ends with a dot.
// It does not allocate: memory and opName are substrings of subject.
func parseSubject(subject, reqPrefix string) route {
	rest, ok := strings.CutPrefix(subject, reqPrefix)
	if !ok {
		return route{memory: invalidName, opName: invalidName, err: reqErr(CodeBadRequest, "subject %q is not under %q", clip(subject), reqPrefix)}
	}
	mem, opName, ok := strings.Cut(rest, ".")
	r := route{memory: mem, opName: opName}
	if !ValidMemoryName(mem) {
		r.memory = invalidName
		r.err = reqErr(CodeBadMemory, "memory name %q: want 1 to 64 of A-Z a-z 0-9 _ -", clip(mem))
	}
	if !ok || strings.Contains(opName, ".") || opName == "" {
		r.opName = invalidName
		if r.err == nil {
			r.err = reqErr(CodeUnknownOp, "subject %q: want %s<memory>.<op>", clip(subject), reqPrefix)
		}
		return r
	}
	r.op = parseOp(opName)
	if r.op == OpInvalid {
		// An unknown token (even "*") never becomes part of a subject.
		r.opName = invalidName
		if r.err == nil {
			r.err = reqErr(CodeUnknownOp, "op %q: want store, retrieve, process or forget", clip(opName))
		}
	}
	return r
}

// replyRules decides whether a Pelm-Reply-To subject may receive a result.
type replyRules struct {
	forbidden []string // prefixes under which a result would become a request, a dead letter or state
	exact     []string // subjects a result must not take (the stats)
	allow     []string // --reply-allow patterns
}

// maxReplyTo bounds Pelm-Reply-To: NATS refuses a publish whose control
// line (subject included) passes 4 KiB, and closes the connection.
const maxReplyTo = 256

func newReplyRules(prefix string, allow []string) (replyRules, error) {
	for _, p := range allow {
		if !ValidSubject(p, true) {
			return replyRules{}, fmt.Errorf("%w: reply-allow pattern %q is not a valid subject", ErrConfig, p)
		}
	}
	return replyRules{forbidden: []string{prefix + ".req", prefix + ".dlq", prefix + ".state", prefix + ".journal"},
		exact: []string{prefix + ".stats"}, allow: allow}, nil
}

// check returns nil when results may go to subject.
func (rr replyRules) check(subject string) *RequestError {
	if len(subject) > maxReplyTo {
		return reqErr(CodeBadRequest, "Pelm-Reply-To of %d bytes: at most %d", len(subject), maxReplyTo)
	}
	if !ValidSubject(subject, false) {
		return reqErr(CodeBadRequest, "Pelm-Reply-To %q: not a valid subject without wildcards", subject)
	}
	if subject[0] == '$' {
		return reqErr(CodeBadRequest, "Pelm-Reply-To %q: subjects beginning with $ are reserved", subject)
	}
	for _, f := range rr.forbidden {
		if subject == f || strings.HasPrefix(subject, f+".") {
			return reqErr(CodeBadRequest, "Pelm-Reply-To %q: lies under %s, a result must not become a request, a dead letter or state", subject, f)
		}
	}
	for _, f := range rr.exact {
		if subject == f {
			return reqErr(CodeBadRequest, "Pelm-Reply-To %q: that subject carries the stats", subject)
		}
	}
	for _, p := range rr.allow {
		if subjectMatch(p, subject) {
			return nil
		}
	}
	return reqErr(CodeBadRequest, "Pelm-Reply-To %q: not allowed by --reply-allow", subject)
}

// clip shortens client-supplied text quoted in an error message, which
// also travels in the DLQ copy's Pelm-Error header.
func clip(s string) string {
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

// subjectMatch reports whether subject matches pattern (with * and >).
func subjectMatch(pattern, subject string) bool {
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
