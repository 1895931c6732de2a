package config

import (
	"errors"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// optionKeyer is an error about one option of a component, found by the
// component's Validate: OptionKey is the option's path in the component's
// block ("format.parquet.columns[2].type"). pipeline.OptionError implements
// it; config matches it by its method because it imports nothing of the
// project.
type optionKeyer interface {
	error
	OptionKey() string
}

// OptionErrors turns the error returned by the component's Validate into
// Errors at the offending keys, one per problem:
//
//   - an error with an OptionKey method (pipeline.OptionError) is reported
//     at the value of that key in the component's block, as
//     "<component path>.<key>: <message>"; a key that is absent falls back
//     to its nearest present parent, then to the component itself. An
//     option error whose cause holds option errors of its own prefixes
//     their keys with its key;
//   - errors.Join trees (and fmt.Errorf with several %w) are walked, at
//     any depth; an error wrapping one error with %w is looked through for
//     the structure above;
//   - Error and Errors values (e.g. from Decode) pass through unchanged,
//     File set to the component's file where it is empty;
//   - any other error is reported at the component, with its path.
//
// It returns nil for a nil err; the result is sorted by position.
func (c Component) OptionErrors(err error) Errors {
	var out Errors
	c.optionErrors(err, "", &out)
	out.Sort()
	return out
}

// optionErrors appends the problems in err to out; prefix is the key of an
// enclosing option error.
func (c Component) optionErrors(err error, prefix string, out *Errors) {
	if err == nil {
		return
	}
	// Look through single %w wrappers for structure; the first structured
	// error found decides. An error without structure is reported whole.
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch v := e.(type) {
		case Errors:
			*out = append(*out, v.InFile(c.Pos.File)...)
			return
		case Error:
			*out = append(*out, Errors{v}.InFile(c.Pos.File)...)
			return
		case *Error:
			*out = append(*out, Errors{*v}.InFile(c.Pos.File)...)
			return
		case optionKeyer:
			c.optionError(v, joinKey(prefix, v.OptionKey()), out)
			return
		case interface{ Unwrap() []error }:
			for _, sub := range v.Unwrap() {
				c.optionErrors(sub, prefix, out)
			}
			return
		}
	}
	if prefix != "" {
		*out = append(*out, c.keyError(prefix, err.Error()))
		return
	}
	*out = append(*out, c.Errorf("%v", err))
}

// optionError reports option error e, whose full key is key.
func (c Component) optionError(e optionKeyer, key string, out *Errors) {
	cause := errors.Unwrap(e)
	if cause != nil && hasOptionKey(cause) {
		c.optionErrors(cause, key, out)
		return
	}
	msg := strings.TrimPrefix(e.Error(), e.OptionKey()+": ")
	if cause != nil {
		msg = cause.Error()
	}
	*out = append(*out, c.keyError(key, msg))
}

// keyError returns an Error with msg at key (see keyPos).
func (c Component) keyError(key, msg string) Error {
	return c.keyPos(key).Errorf("%s: %s", join(c.Path, key), msg)
}

// hasOptionKey reports whether err holds an option error.
func hasOptionKey(err error) bool {
	var k optionKeyer
	return errors.As(err, &k)
}

// joinKey appends key to prefix: "a" + "b" is "a.b", "a" + "[2].b" is
// "a[2].b".
func joinKey(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	case strings.HasPrefix(key, "["):
		return prefix + key
	}
	return prefix + "." + key
}

// keyPos returns the position of the value at key (a dotted path with
// "[i]" indices) in the component's block, or of its nearest present
// parent, or of the component.
func (c Component) keyPos(key string) Pos {
	p := c.Pos
	n := resolve(c.Node)
	for _, step := range keySteps(key) {
		n = child(n, step)
		if n == nil {
			break
		}
		p = NodePos(c.Pos.File, n)
	}
	return p
}

// keyStep is one step of a key path: a mapping key, or a list index when
// index >= 0.
type keyStep struct {
	name  string
	index int
}

// keySteps splits "a.b[2][0].c" into a, b, [2], [0], c. A malformed index
// ends the path there (its parent is then where the error is shown).
func keySteps(key string) []keyStep {
	var steps []keyStep
	for part := range strings.SplitSeq(key, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			steps = append(steps, keyStep{name: name, index: -1})
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if !ok || err != nil || i < 0 {
				return steps
			}
			steps = append(steps, keyStep{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return steps
}

// child returns the value at step in n (following aliases and merge
// keys), or nil.
func child(n *yaml.Node, step keyStep) *yaml.Node {
	n = resolve(n)
	if n == nil {
		return nil
	}
	if step.index >= 0 {
		if n.Kind != yaml.SequenceNode || step.index >= len(n.Content) {
			return nil
		}
		return resolve(n.Content[step.index])
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	// A throwaway decoder lists the pairs with merge keys expanded; the
	// mapping's own problems were reported when it was decoded.
	for _, p := range (&decoder{}).pairs(n, "") {
		if p.key.Value == step.name {
			return resolve(p.val)
		}
	}
	return nil
}
