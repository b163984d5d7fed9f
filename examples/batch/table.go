package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// row is a row of the orders table the example inserts into.
type row struct {
	ID       string // the order's ID: the record's key
	Customer string `json:"customer"`
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// errConnReset is the transient failure: the connection to the database
// dropped during a bulk insert, so the handler cannot tell which rows
// were written.
var errConnReset = errors.New("database connection reset")

// constraintError is a row the table refuses: retrying it cannot help.
type constraintError struct {
	constraint string
	detail     string
}

func (e *constraintError) Error() string { return e.constraint + " violated: " + e.detail }

// insertResult is what a bulk insert reports when it completes.
type insertResult struct {
	written int       // rows written
	present int       // rows found already there, the same: skipped
	refused []refusal // rows that violate a constraint, not written
}

// refusal is a row of a bulk insert that the table refused: rows[at].
type refusal struct {
	at  int
	err error
}

// table simulates, in memory, a database table and its bulk insert:
//
//	CREATE TABLE orders (
//	    id       text PRIMARY KEY,
//	    customer text NOT NULL,
//	    sku      text NOT NULL REFERENCES products (sku),
//	    quantity int  NOT NULL CHECK (quantity > 0));
//
// insert writes a whole batch in one call, like a bulk API that writes
// row by row: the rows that violate a constraint are refused and
// reported, the others written. It is idempotent, as an insert that may
// be retried must be (INSERT … ON CONFLICT (id) DO NOTHING): a row whose
// ID is already there with the same values is skipped; with other values
// it violates the primary key. And it is not atomic: a connection reset
// can leave part of a batch written.
type table struct {
	mu       sync.Mutex
	products map[string]bool
	rows     map[string]row
	writes   map[string]int // writes of each ID: a row written twice is a bug

	// The fault: the first insert holding row resetOn writes resetAfter
	// of its rows, then loses the connection.
	resetOn    string
	resetAfter int
}

func newTable(products ...string) *table {
	t := &table{products: map[string]bool{}, rows: map[string]row{}, writes: map[string]int{}}
	for _, p := range products {
		t.products[p] = true
	}
	return t
}

// resetOnce makes the first insert holding the row with ID id lose its
// connection after writing after rows of the batch.
func (t *table) resetOnce(id string, after int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resetOn, t.resetAfter = id, after
}

// insert writes rows in one call. On errConnReset, the rows before the
// reset were written: the caller cannot know which.
func (t *table) insert(ctx context.Context, rows []row) (insertResult, error) {
	if err := ctx.Err(); err != nil {
		return insertResult{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	reset := -1
	if t.resetOn != "" {
		for _, r := range rows {
			if r.ID == t.resetOn {
				reset, t.resetOn = min(t.resetAfter, len(rows)), ""
				break
			}
		}
	}
	var res insertResult
	for i, r := range rows {
		if i == reset {
			return insertResult{}, errConnReset
		}
		if err := t.check(r); err != nil {
			res.refused = append(res.refused, refusal{at: i, err: err})
			continue
		}
		if old, ok := t.rows[r.ID]; ok {
			if old != r {
				res.refused = append(res.refused, refusal{at: i, err: &constraintError{"orders_pkey",
					fmt.Sprintf("id %q exists with other values", r.ID)}})
				continue
			}
			res.present++
			continue
		}
		t.rows[r.ID] = r
		t.writes[r.ID]++
		res.written++
	}
	if reset == len(rows) {
		return insertResult{}, errConnReset
	}
	return res, nil
}

// check returns the first constraint r violates, or nil.
func (t *table) check(r row) error {
	switch {
	case r.Customer == "":
		return &constraintError{"orders_customer_not_null", "customer is null"}
	case r.Quantity <= 0:
		return &constraintError{"orders_quantity_check", fmt.Sprintf("quantity %d is not > 0", r.Quantity)}
	case !t.products[r.SKU]:
		return &constraintError{"orders_sku_fkey", fmt.Sprintf("no product %q", r.SKU)}
	}
	return nil
}

// stats returns how many rows the table holds and the most times any row
// was written.
func (t *table) stats() (rows, maxWrites int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.writes {
		maxWrites = max(maxWrites, n)
	}
	return len(t.rows), maxWrites
}

// has reports whether the row with ID id is in the table, and how many
// times it was written.
func (t *table) has(id string) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.rows[id]
	return ok, t.writes[id]
}
