package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong in a config document, at a JSON path such as
// peers[1].routes[0].net.
type Problem struct {
	Path string
	Msg  string
}

func (p *Problem) Error() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

func joinProblems(probs []*Problem) error {
	errs := make([]error, len(probs))
	for i, p := range probs {
		errs[i] = p
	}
	return errors.Join(errs...)
}

func schemaOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// childPath appends key to a JSON path: .key, or ["key"] (quoted) for a
// key that is not plain letters, digits, '_' and '-', such as an unknown
// key that is empty or holds a newline, so that every problem stays one
// line that starts with its path.
func childPath(parent, key string) string {
	if !plainKey(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// plainKey reports whether key can stand in a path as it is.
func plainKey(key string) bool {
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return key != ""
}

// checkShape walks a generically decoded JSON value against the schema type
// and reports unknown keys and wrong types, all of them, each with its path.
// encoding/json's DisallowUnknownFields stops at the first and names no path.
func checkShape(path string, v any, t reflect.Type) []*Problem {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	where := path
	if where == "" {
		where = "the top level"
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return []*Problem{{path, fmt.Sprintf("must be an object, not %s", jsonKind(v))}}
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var probs []*Problem
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				probs = append(probs, &Problem{childPath(path, k),
					fmt.Sprintf("unknown key %q in %s (known keys: %s)", k, where, strings.Join(names, ", "))})
				continue
			}
			probs = append(probs, checkShape(childPath(path, k), obj[k], ft)...)
		}
		return probs
	case reflect.Slice:
		if v == nil {
			return nil
		}
		list, ok := v.([]any)
		if !ok {
			return []*Problem{{path, fmt.Sprintf("must be a list, not %s", jsonKind(v))}}
		}
		var probs []*Problem
		for i, e := range list {
			probs = append(probs, checkShape(fmt.Sprintf("%s[%d]", path, i), e, t.Elem())...)
		}
		return probs
	case reflect.String:
		if _, ok := v.(string); !ok {
			return []*Problem{{path, fmt.Sprintf("must be a string, not %s", jsonKind(v))}}
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return []*Problem{{path, fmt.Sprintf("must be true or false, not %s", jsonKind(v))}}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return []*Problem{{path, fmt.Sprintf("must be a number, not %s", jsonKind(v))}}
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			lo, hi := -(int64(1) << (t.Bits() - 1)), int64(1)<<(t.Bits()-1)-1
			return []*Problem{{path, fmt.Sprintf("must be a whole number from %d to %d, not %s", lo, hi, n)}}
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			return []*Problem{{path, fmt.Sprintf("must be a number, not %s", jsonKind(v))}}
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			hi := uint64(1)<<t.Bits() - 1
			return []*Problem{{path, fmt.Sprintf("must be a whole number from 0 to %d, not %s", hi, n)}}
		}
	}
	return nil
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case json.Number:
		return "the number " + x.String()
	}
	return fmt.Sprintf("%T", v)
}
