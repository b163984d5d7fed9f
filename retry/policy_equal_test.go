package retry

import (
	"reflect"
	"testing"

	"github.com/kretry/kretry/strategy"
)

// Equal compares every field of Policy: changing any leaf field (found by
// reflection, so a new field is covered) makes two policies unequal.
func TestPolicyEqualComparesEveryField(t *testing.T) {
	base := Policy{}.Normalize()
	if !base.Equal(Policy{}) {
		t.Fatal("a normalized zero Policy does not equal the zero Policy")
	}
	var visit func(v reflect.Value, path string)
	n := 0
	visit = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			f, name := v.Field(i), path+v.Type().Field(i).Name
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if f.Kind() == reflect.Struct {
				visit(f, name+".")
				continue
			}
			changed := base
			target := reflect.ValueOf(&changed).Elem()
			for _, part := range splitPath(name) {
				target = target.FieldByName(part)
			}
			switch target.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				target.SetInt(target.Int() + 1)
			case reflect.Float32, reflect.Float64:
				target.SetFloat(target.Float() + 0.5)
			case reflect.String:
				target.SetString(target.String() + "x")
			case reflect.Slice:
				target.Set(reflect.Append(target, reflect.Zero(target.Type().Elem())))
			default:
				t.Errorf("%s: no way to change a %s; extend this test", name, target.Kind())
				continue
			}
			n++
			if base.Equal(changed) || changed.Equal(base) {
				t.Errorf("Policy.Equal ignores %s", name)
			}
		}
	}
	visit(reflect.ValueOf(base), "")
	if n < 15 {
		t.Errorf("visited only %d fields", n)
	}
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

// Matchers compare by name: the same names built by different code are
// equal policies.
func TestPolicyEqualMatchersByName(t *testing.T) {
	a := Policy{Classifier: strategy.Classifier{Exclude: []strategy.Matcher{strategy.Is("x", nil)}}}
	b := Policy{Classifier: strategy.Classifier{Exclude: []strategy.Matcher{{Name: "x", Match: func(error) bool { return true }}}}}
	if !a.Equal(b) {
		t.Error("policies with the same matcher names differ")
	}
}

func TestDLTStrategyUnmarshalText(t *testing.T) {
	for text, want := range map[string]DLTStrategy{
		"": DLTRetryOnError, "retry-on-error": DLTRetryOnError, "FAIL-ON-ERROR": DLTFailOnError, "none": NoDLT,
		"ALWAYS_RETRY_ON_ERROR": DLTRetryOnError, "fail_on_error": DLTFailOnError, "NO_DLT": NoDLT,
	} {
		var s DLTStrategy
		if err := s.UnmarshalText([]byte(text)); err != nil || s != want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", text, s, err, want)
		}
	}
	var s DLTStrategy
	if err := s.UnmarshalText([]byte("loop")); err == nil || err.Error() != `unrecognized DLT strategy: "loop" (want retry-on-error, fail-on-error or none)` {
		t.Errorf("UnmarshalText(loop): %v", err)
	}
}
