package config

import (
	"fmt"
	"slices"
	"strings"
)

// TagKey is the struct tag key kretry reads: `kretry:"topic=orders,…"`.
const TagKey = "kretry"

// ParseTag parses the value of a kretry struct tag; at names the struct
// type and field, for errors. The grammar:
//
//	tag    = pair { "," pair }
//	pair   = key "=" value
//	value  = item { "|" item }        lists: delays, include, exclude, routes, topicConfigs
//	item   = text | text ":" text     routes (suffix:name), topicConfigs (name:value)
//
// Keys are the Field keys ("topic", "attempts", "maxDelay", …), matched
// exactly; each may appear once. Spaces around keys, values and items are
// ignored. A backslash escapes the next character when it is one of
// `\ , | : =`; any other escape is an error. Durations are Go durations
// ("1s", "1m30s"); an empty list value ("exclude=") sets an empty list.
// A struct tag's value is a Go string, so in source code each backslash is
// written twice: `kretry:"topicConfigs=cleanup.policy:compact\\,delete"`.
//
// A handler field's tag must set topic. A DLT handler field's tag is
// "dlt=<topic>": it names the main topic whose DLT records it handles and
// takes no other key.
//
//	Orders    listener.HandlerFunc `kretry:"topic=orders,attempts=4,delay=1s,multiplier=2,maxDelay=10s,exclude=validation|notfound"`
//	OrdersDLT dlt.HandlerFunc      `kretry:"dlt=orders"`
//
// ParseTag returns every problem found, joined; each is an *Error whose Pos
// is at.
func ParseTag(tag string, at Pos) (*Decl, error) {
	d := &Decl{pos: at, vals: map[string]value{}}
	var errs []*Error
	fail := func(key, format string, args ...any) { errs = append(errs, errorf(at, key, format, args...)) }
	if strings.TrimSpace(tag) == "" {
		fail("", "empty kretry tag; want topic=<topic> on a handler or dlt=<topic> on a DLT handler")
		return nil, joinErrors(errs)
	}
	seen := map[string]bool{}
	var keys []string
	for _, part := range split(tag, ',') {
		part = trim(part)
		if part == "" {
			fail("", "empty setting between commas in %q", tag)
			continue
		}
		eq := index(part, '=')
		if eq < 0 {
			fail("", "setting %q has no \"=\"; want key=value", part)
			continue
		}
		key, val := trim(part[:eq]), trim(part[eq+1:])
		if seen[key] {
			fail(key, "%w key %q", ErrDuplicate, key)
			continue
		}
		seen[key] = true
		if key == keyDLT {
			topic, err := unescape(val)
			if err == nil {
				err = checkTopic(topic)
			}
			if err != nil {
				fail(key, "%w", err)
				continue
			}
			d.dlt = topic
			keys = append(keys, key)
			continue
		}
		f, ok := fieldByKey[key]
		if !ok {
			fail(key, "%w", unknownKey(key, append(allKeys(), keyDLT)))
			continue
		}
		keys = append(keys, key)
		if e := d.setText(f, val, at, ""); e != nil {
			errs = append(errs, e...)
		}
	}
	if len(errs) == 0 {
		switch {
		case d.dlt != "" && len(keys) > 1:
			others := slices.DeleteFunc(keys, func(k string) bool { return k == keyDLT })
			fail(others[0], "a DLT handler's tag takes only dlt=<topic>; settings belong on the handler field of topic %q", d.dlt)
		case d.dlt == "" && d.topic == "":
			fail("topic", "must be set on a handler field (or use dlt=<topic> on a DLT handler field)")
		}
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	return d, nil
}

// ParseValues builds a declaration from key/value pairs written as in a
// struct tag's values (lists separated by "|", pairs by ":", the same
// escapes) — the form of the kretry CLI's flags. at names the source for
// errors, as in Pos{File: "flags"}. Keys are Field keys; "topic" may be
// set. It returns every problem found, joined.
func ParseValues(values map[string]string, at Pos) (*Decl, error) {
	d := &Decl{pos: at, vals: map[string]value{}}
	var errs []*Error
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		f, ok := fieldByKey[key]
		if !ok {
			errs = append(errs, errorf(at, key, "%w", unknownKey(key, allKeys())))
			continue
		}
		errs = append(errs, d.setText(f, trim(values[key]), at, "")...)
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	return d, nil
}

// setText parses one tag value for f and stores it.
func (d *Decl) setText(f *field, val string, at Pos, prefix string) []*Error {
	path := prefix + f.key
	r := raw{path: path, pos: at}
	var errs []*Error
	fail := func(format string, args ...any) { errs = append(errs, errorf(at, path, format, args...)) }
	switch f.kind {
	case kDurations, kNames, kRoutes, kConfigs:
		if val == "" {
			break // an empty list
		}
		for i, item := range split(val, '|') {
			item = trim(item)
			if item == "" {
				fail("empty item %d in %q", i, val)
				continue
			}
			if f.kind == kRoutes || f.kind == kConfigs {
				c := index(item, ':')
				if c < 0 {
					if f.kind == kRoutes {
						fail("item %q has no \":\"; want suffix:name, as in -validation:validation", item)
					} else {
						fail("item %q has no \":\"; want name:value, as in retention.ms:86400000", item)
					}
					continue
				}
				k, err1 := unescape(trim(item[:c]))
				v, err2 := unescape(trim(item[c+1:]))
				if err1 != nil || err2 != nil {
					fail("%v", firstErr(err1, err2))
					continue
				}
				r.pairs = append(r.pairs, pair{key: atom{text: k, pos: at}, val: atom{text: v, pos: at}})
				continue
			}
			text, err := unescape(item)
			if err != nil {
				fail("%v", err)
				continue
			}
			r.items = append(r.items, atom{text: text, pos: at})
		}
	default:
		text, err := unescape(val)
		if err != nil {
			fail("%v", err)
			break
		}
		r.one = atom{text: text, pos: at}
	}
	if len(errs) > 0 {
		return errs
	}
	v, perrs := f.parse(r)
	if len(perrs) > 0 {
		return perrs
	}
	if f.key == "topic" {
		d.topic, d.tpos = v.str, v.pos
		return nil
	}
	d.vals[f.key] = v
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// escapable lists the characters a backslash may escape.
const escapable = `\,|:=`

// split cuts s at every sep not escaped by a backslash; escapes are kept.
func split(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // skip the escaped byte
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// index returns the index of the first sep not escaped, or -1.
func index(s string, sep byte) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return i
		}
	}
	return -1
}

// unescape removes the escapes of s.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("%q ends in a lone backslash", s)
		}
		i++
		if !strings.ContainsRune(escapable, rune(s[i])) {
			return "", fmt.Errorf("%q has the unknown escape \\%c; a backslash escapes only %s", s, s[i], escapable)
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// trim removes spaces and tabs around s.
func trim(s string) string { return strings.Trim(s, " \t") }

// escape is the inverse of unescape: it escapes every character of s that
// the grammar gives a meaning.
func escape(s string) string {
	if !strings.ContainsAny(s, escapable) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(escapable, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
