package strategy_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kretry/kretry/strategy"
)

// BenchmarkErrorType is the cost of naming a failure's type, paid once per
// failed delivery: an error wrapped twice by fmt.Errorf around a sentinel.
func BenchmarkErrorType(b *testing.B) {
	err := fmt.Errorf("reserve: %w", fmt.Errorf("db: %w", errors.ErrUnsupported))
	b.ReportAllocs()
	for b.Loop() {
		if strategy.ErrorType(err) != "*errors.errorString" {
			b.Fatal("wrong type")
		}
	}
}
