package strategy_test

import (
	"strings"
	"testing"

	"github.com/kretry/kretry/strategy"
)

func TestNamingValidate(t *testing.T) {
	tests := []struct {
		name string
		n    strategy.Naming
		want string
	}{
		{"zero value", strategy.Naming{}, ""},
		{"custom", strategy.Naming{RetrySuffix: "_r.x", DLTSuffix: "-DLT", Suffixing: strategy.SuffixByIndex, SameInterval: strategy.MultipleTopics}, ""},
		{"retry suffix illegal", strategy.Naming{RetrySuffix: "-retry!"}, `retrySuffix: may contain only [a-zA-Z0-9._-], got "-retry!" with "!" at byte 6`},
		{"dlt suffix illegal", strategy.Naming{DLTSuffix: "-dlt é"}, "dltSuffix: may contain only"},
		{"suffix too long", strategy.Naming{DLTSuffix: strings.Repeat("d", 249)}, "dltSuffix: must be at most 248 characters, got 249"},
		{"same suffixes", strategy.Naming{RetrySuffix: "-x", DLTSuffix: "-x"}, `dltSuffix: retrySuffix and dltSuffix must differ, both are "-x"`},
		{"retry defaulted equals dlt", strategy.Naming{DLTSuffix: "-retry"}, "must differ"},
		{"unknown suffixing", strategy.Naming{Suffixing: 3}, "suffixing: must be delay or index, got Suffixing(3)"},
		{"unknown same interval", strategy.Naming{SameInterval: -1}, "sameInterval: must be single or multiple, got SameInterval(-1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertErr(t, tt.n.Validate(), tt.want)
		})
	}
	if got := (strategy.Naming{}).Normalize(); got.RetrySuffix != "-retry" || got.DLTSuffix != "-dlt" ||
		got.Suffixing != strategy.SuffixByDelay || got.SameInterval != strategy.SingleTopic {
		t.Errorf("Naming{}.Normalize() = %+v", got)
	}
}
