package console

import (
	"reflect"
	"testing"

	"github.com/kretry/kretry/internal/dltops"
	"github.com/kretry/kretry/strategy"
)

func names(ts []TopicCount) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Topic)
	}
	return out
}

// Plans are found by names: delay and index suffixes sort numerically,
// groupTopics plans find their main topic and group, route DLTs join
// their plan, and topics that only look alike are left out.
func TestFindPlans(t *testing.T) {
	topics := []string{
		"orders", "orders-retry-10000", "orders-retry-2000", "orders-retry-500", "orders-dlt", "orders-validation-dlt",
		"orders-billing-retry-0", "orders-billing-retry-1", "orders-billing-dlt",
		"payments", "payments-retry", "payments-dlt",
		"clicks-retry-1000-0", "clicks-retry-1000-1", "clicks-retry-200",
		"lonely-dlt", "orders-retry-x", "retry-1000", "notes",
	}
	got := findPlans(topics, strategy.Naming{})
	type want struct {
		base, main, group string
		tiers, dlts       []string
	}
	wants := []want{
		{"clicks", "", "", []string{"clicks-retry-200", "clicks-retry-1000-0", "clicks-retry-1000-1"}, nil},
		{"lonely", "", "", nil, []string{"lonely-dlt"}},
		{"orders", "orders", "", []string{"orders-retry-500", "orders-retry-2000", "orders-retry-10000"},
			[]string{"orders-dlt", "orders-validation-dlt"}},
		{"orders-billing", "orders", "billing", []string{"orders-billing-retry-0", "orders-billing-retry-1"}, []string{"orders-billing-dlt"}},
		{"payments", "payments", "", []string{"payments-retry"}, []string{"payments-dlt"}},
	}
	if len(got) != len(wants) {
		t.Fatalf("found %d plans, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		p := got[i]
		if p.Base != w.base || p.Main != w.main || p.NameGroup != w.group || !reflect.DeepEqual(names(p.Tiers), w.tiers) ||
			!reflect.DeepEqual(names(p.DLTs), w.dlts) {
			t.Errorf("plan %d = %+v\nwant %+v", i, p, w)
		}
	}
	keys := []dltops.ListenerKey{{Topic: "orders", Group: "billing"}, {Topic: "orders", Group: "shipping"},
		{Topic: "payments", Group: "g"}, {Topic: "unknown", Group: "g"}}
	tiers := firstTiers(got, keys)
	wantTiers := map[dltops.ListenerKey]string{keys[0]: "orders-billing-retry-0", keys[1]: "orders-retry-500", keys[2]: "payments-retry"}
	if !reflect.DeepEqual(tiers, wantTiers) {
		t.Errorf("firstTiers = %v\nwant %v", tiers, wantTiers)
	}
}

// Custom suffixes find plans named with them, not the defaults.
func TestFindPlansCustomSuffixes(t *testing.T) {
	got := findPlans([]string{"a", "a.retry-10", "a.retry-5", "a-retry-5", "a.dead", "a-dlt"}, strategy.Naming{RetrySuffix: ".retry", DLTSuffix: ".dead"})
	if len(got) != 1 || got[0].Base != "a" || !reflect.DeepEqual(names(got[0].Tiers), []string{"a.retry-5", "a.retry-10"}) ||
		!reflect.DeepEqual(names(got[0].DLTs), []string{"a.dead"}) {
		t.Fatalf("plans = %+v", got)
	}
}
