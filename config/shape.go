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
	switch t.Kind() {
	case reflect.Struct:
		return checkObject(path, v, t)
	case reflect.Slice:
		return checkList(path, v, t)
	case reflect.String:
		if _, ok := v.(string); !ok {
			return mustBe(path, "a string", v)
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return mustBe(path, "true or false", v)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return checkWhole(path, v, t)
	}
	return nil
}

// checkObject checks an object against struct type t: every key must be
// one of t's JSON names, each value of its field's shape.
func checkObject(path string, v any, t reflect.Type) []*Problem {
	obj, ok := v.(map[string]any)
	if !ok {
		return mustBe(path, "an object", v)
	}
	fields, names := jsonFields(t)
	where := path
	if where == "" {
		where = "the top level"
	}
	// Sorted, so that the problems come in the same order every time.
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
}

// jsonFields returns struct type t's fields by JSON name, and the names in
// the order of the struct, as a problem lists them.
func jsonFields(t reflect.Type) (map[string]reflect.Type, []string) {
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
	return fields, names
}

// checkList checks a list against slice type t; null stands for an absent
// list.
func checkList(path string, v any, t reflect.Type) []*Problem {
	if v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		return mustBe(path, "a list", v)
	}
	var probs []*Problem
	for i, e := range list {
		probs = append(probs, checkShape(fmt.Sprintf("%s[%d]", path, i), e, t.Elem())...)
	}
	return probs
}

// checkWhole checks a number against integer type t, signed or not:
// encoding/json would refuse a fraction or an overflow and name no path.
func checkWhole(path string, v any, t reflect.Type) []*Problem {
	n, ok := v.(json.Number)
	if !ok {
		return mustBe(path, "a number", v)
	}
	bits := t.Bits()
	var err error
	var lo, hi string
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		_, err = strconv.ParseUint(n.String(), 10, bits)
		lo, hi = "0", strconv.FormatUint(uint64(1)<<bits-1, 10)
	default:
		_, err = strconv.ParseInt(n.String(), 10, bits)
		lo, hi = strconv.FormatInt(-(int64(1)<<(bits-1)), 10), strconv.FormatInt(int64(1)<<(bits-1)-1, 10)
	}
	if err != nil {
		return []*Problem{{path, fmt.Sprintf("must be a whole number from %s to %s, not %s", lo, hi, n)}}
	}
	return nil
}

// mustBe is the problem of a value at path that is not of the kind want.
func mustBe(path, want string, v any) []*Problem {
	return []*Problem{{path, fmt.Sprintf("must be %s, not %s", want, jsonKind(v))}}
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
