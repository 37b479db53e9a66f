package gerrittest

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// pred is a compiled change query.
type pred func(s *Server, c *change, who *account) bool

// parseQuery compiles the subset of Gerrit's search language the fake
// understands: AND (implicit), OR, NOT / -, parentheses, and the operators
// status:, is:, project:, projects:, branch:, ref:, change:, commit:,
// owner:, topic:, intopic:, message:, label:, bare numbers and Change-Ids.
// Anything else is refused with 400, as Gerrit refuses unknown operators.
func parseQuery(text string) (pred, error) {
	toks, err := tokenize(text)
	if err != nil {
		return nil, err
	}
	p := &queryParser{toks: toks}
	if len(toks) == 0 {
		return func(*Server, *change, *account) bool { return true }, nil
	}
	out, err := p.or()
	if err == nil && p.pos < len(p.toks) {
		err = errf(http.StatusBadRequest, "line 1:%d mismatched input '%s'", p.pos, p.toks[p.pos])
	}
	return out, err
}

func tokenize(text string) ([]string, error) {
	var toks []string
	for i := 0; i < len(text); {
		switch ch := text[i]; {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '+':
			i++
		case ch == '(' || ch == ')':
			toks = append(toks, string(ch))
			i++
		default:
			j, quote := i, byte(0)
			for j < len(text) {
				c := text[j]
				if quote != 0 {
					if c == quote {
						quote = 0
					}
				} else if c == '"' {
					quote = '"'
				} else if c == '{' {
					quote = '}'
				} else if c == ' ' || c == '\t' || c == '\n' || c == ')' || (c == '(' && j == i) {
					break
				}
				j++
			}
			if quote != 0 {
				return nil, errf(http.StatusBadRequest, "unterminated quote in query %q", text)
			}
			toks = append(toks, text[i:j])
			i = j
		}
	}
	return toks, nil
}

type queryParser struct {
	toks []string
	pos  int
}

func (p *queryParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *queryParser) or() (pred, error) {
	left, err := p.and()
	for err == nil && p.peek() == "OR" {
		p.pos++
		var right pred
		if right, err = p.and(); err == nil {
			l := left
			left = func(s *Server, c *change, w *account) bool { return l(s, c, w) || right(s, c, w) }
		}
	}
	return left, err
}

func (p *queryParser) and() (pred, error) {
	var parts []pred
	for {
		t := p.peek()
		if t == "" || t == ")" || t == "OR" {
			break
		}
		if t == "AND" {
			p.pos++
			continue
		}
		u, err := p.unary()
		if err != nil {
			return nil, err
		}
		parts = append(parts, u)
	}
	if len(parts) == 0 {
		return nil, errf(http.StatusBadRequest, "line 1:%d no viable alternative", p.pos)
	}
	return func(s *Server, c *change, w *account) bool {
		for _, q := range parts {
			if !q(s, c, w) {
				return false
			}
		}
		return true
	}, nil
}

func (p *queryParser) unary() (pred, error) {
	t := p.peek()
	p.pos++
	switch {
	case t == "NOT" || t == "-":
		inner, err := p.unary()
		return not(inner), err
	case t == "(":
		inner, err := p.or()
		if err == nil && p.peek() != ")" {
			err = errf(http.StatusBadRequest, "line 1:%d missing ')'", p.pos)
		}
		p.pos++
		return inner, err
	case strings.HasPrefix(t, "-") || strings.HasPrefix(t, "!"):
		inner, err := term(t[1:])
		return not(inner), err
	}
	return term(t)
}

func not(q pred) pred {
	if q == nil {
		return nil
	}
	return func(s *Server, c *change, w *account) bool { return !q(s, c, w) }
}

var (
	changeIDRe = regexp.MustCompile(`^I[0-9a-f]{4,40}$`)
	labelRe    = regexp.MustCompile(`^([A-Za-z0-9-]+)(?:(>=|<=|=|>|<)([+-]?\d+|[A-Za-z]+))?(?:,(?:user=)?(.+))?$`)
)

// term compiles one operator:value term.
func term(t string) (pred, error) {
	op, val, hasOp := strings.Cut(t, ":")
	val = strings.Trim(val, `"{}`)
	if !hasOp {
		switch {
		case changeIDRe.MatchString(t):
			return func(_ *Server, c *change, _ *account) bool { return strings.HasPrefix(c.changeID, t) }, nil
		case isNumber(t):
			n, _ := strconv.Atoi(t)
			return func(_ *Server, c *change, _ *account) bool { return c.number == n }, nil
		}
		return nil, errf(http.StatusBadRequest, "Unsupported query: %s", t)
	}
	switch op {
	case "status", "is":
		return isTerm(t, val)
	case "project":
		return func(_ *Server, c *change, _ *account) bool { return c.project.name == val }, nil
	case "projects":
		return func(_ *Server, c *change, _ *account) bool { return strings.HasPrefix(c.project.name, val) }, nil
	case "branch", "ref":
		b := strings.TrimPrefix(val, "refs/heads/")
		return func(_ *Server, c *change, _ *account) bool { return c.branch == b }, nil
	case "change":
		if isNumber(val) {
			return term(val)
		}
		return func(_ *Server, c *change, _ *account) bool { return strings.HasPrefix(c.changeID, val) }, nil
	case "commit":
		return func(_ *Server, c *change, _ *account) bool {
			for _, ps := range c.patchsets {
				if len(val) >= 4 && strings.HasPrefix(ps.rev, val) {
					return true
				}
			}
			return false
		}, nil
	case "owner":
		return func(_ *Server, c *change, w *account) bool { return accountMatches(c.owner, val, w) }, nil
	case "topic":
		return func(_ *Server, c *change, _ *account) bool { return c.topic == val }, nil
	case "intopic":
		return func(_ *Server, c *change, _ *account) bool { return strings.Contains(c.topic, val) }, nil
	case "message":
		return func(_ *Server, c *change, _ *account) bool {
			return strings.Contains(c.current().commit.message, val)
		}, nil
	case "label":
		return labelTerm(t, val)
	}
	return nil, errf(http.StatusBadRequest, "Unsupported operator %s", t)
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil && s != "" && s[0] != '-' && s[0] != '+'
}

func accountMatches(a *account, val string, who *account) bool {
	if val == "self" {
		return who != nil && a == who
	}
	return a.Username == val || a.Email == val || a.Name == val || strconv.Itoa(a.ID) == val
}

func isTerm(t, val string) (pred, error) {
	switch strings.ToLower(val) {
	case "open", "new", "pending":
		return func(_ *Server, c *change, _ *account) bool { return c.status == statusNew }, nil
	case "closed":
		return func(_ *Server, c *change, _ *account) bool { return c.status != statusNew }, nil
	case "merged":
		return func(_ *Server, c *change, _ *account) bool { return c.status == statusMerged }, nil
	case "abandoned":
		return func(_ *Server, c *change, _ *account) bool { return c.status == statusAbandoned }, nil
	case "wip":
		return func(_ *Server, c *change, _ *account) bool { return c.wip }, nil
	case "private":
		return func(_ *Server, c *change, _ *account) bool { return c.private }, nil
	case "submittable":
		return func(_ *Server, c *change, _ *account) bool {
			return c.status == statusNew && !c.wip && submittable(submitRecords(c.project, c.current()))
		}, nil
	}
	return nil, errf(http.StatusBadRequest, "Unsupported operator %s", t)
}

// labelTerm compiles label:Name[op value][,user]: a vote on the current
// patchset compared with value, or the label's submit record status
// (label:Verified=NEED).
func labelTerm(t, val string) (pred, error) {
	m := labelRe.FindStringSubmatch(val)
	if m == nil {
		return nil, errf(http.StatusBadRequest, "Invalid label query %s", t)
	}
	name, op, value, user := m[1], m[2], m[3], m[4]
	if op == "" {
		op, value = ">=", "1"
	}
	want, err := strconv.Atoi(value)
	if err != nil {
		status := strings.ToUpper(value)
		switch status {
		case recOK, recNeed, recReject, recMay:
		default:
			return nil, errf(http.StatusBadRequest, "Invalid label query %s", t)
		}
		return func(_ *Server, c *change, _ *account) bool {
			for _, r := range submitRecords(c.project, c.current()) {
				if strings.EqualFold(r.label, name) {
					return r.status == status
				}
			}
			return false
		}, nil
	}
	cmp := map[string]func(int) bool{
		"=": func(v int) bool { return v == want }, ">=": func(v int) bool { return v >= want },
		"<=": func(v int) bool { return v <= want }, ">": func(v int) bool { return v > want },
		"<": func(v int) bool { return v < want },
	}[op]
	if op == "=" && want == 0 {
		// label:L=0: nobody (or not user) voted on L.
		return not(func(s *Server, c *change, w *account) bool {
			for _, v := range c.current().votes {
				if strings.EqualFold(v.label, name) && v.value != 0 && (user == "" || accountMatches(v.by, user, w)) {
					return true
				}
			}
			return false
		}), nil
	}
	return func(_ *Server, c *change, w *account) bool {
		for _, v := range c.current().votes {
			if strings.EqualFold(v.label, name) && v.value != 0 && cmp(v.value) &&
				(user == "" || accountMatches(v.by, user, w)) {
				return true
			}
		}
		return false
	}, nil
}
