package listener

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/strategy"
)

// RegisterOpt configures Register. Every Opt is a RegisterOpt, applied to
// each registered listener (BatchSize and BatchWait to batch handler
// fields only; KeyOrder, FollowersOnDeadLetter and MaxKeysInRetry to
// single-record handler fields only; TransactionInterval, and
// ExactlyOnce's transactional ID, to the listeners that are exactly once
// when tags and files have been applied, and FollowersOnDeadLetter and
// MaxKeysInRetry to those that are key-ordered); NamedErrors and
// PolicyFile apply to registration only.
type RegisterOpt interface {
	applyRegister(*regCfg)
}

type regCfg struct {
	opts  []Opt
	reg   *config.Registry
	files []*config.File
}

type registerOpt func(*regCfg)

func (o registerOpt) applyRegister(r *regCfg) { o(r) }

// NamedErrors sets the registry that resolves the error names used in
// include, exclude and routes, in struct tags and policy files. Default:
// none, so any name is an error.
func NamedErrors(r *config.Registry) RegisterOpt {
	return registerOpt(func(c *regCfg) { c.reg = r })
}

// PolicyFile applies a parsed policy file (config.Load, config.Parse) over
// the struct tags: its defaults to every listener, and each listener entry
// to the handler field of its topic. Several files apply in the order
// given, a later one over an earlier one. Every entry's topic must be
// registered. Default: none.
func PolicyFile(f *config.File) RegisterOpt {
	return registerOpt(func(c *regCfg) {
		if f != nil {
			c.files = append(c.files, f)
		}
	})
}

// Register builds one Listener per handler field of the struct handlers
// (a struct or a pointer to one) that has a kretry tag, in field order. It
// starts nothing and connects to nothing: run the listeners with Run or
// RunAll.
//
// A handler field holds a Handler (or a func(context.Context, *kgo.Record)
// error), or a BatchHandler (or a func(context.Context, []*kgo.Record)
// error), and its tag names the topic and any policy settings:
//
//	type Handlers struct {
//		Orders    listener.HandlerFunc      `kretry:"topic=orders,group=billing,attempts=4,delay=1s,multiplier=2,maxDelay=10s,exclude=validation|notfound"`
//		OrdersDLT dlt.HandlerFunc           `kretry:"dlt=orders"`
//		Payments  *PaymentService           `kretry:"topic=payments"`
//		Clicks    listener.BatchHandlerFunc `kretry:"topic=clicks,batch=500,batchWait=20ms"`
//		db        *sql.DB                   // fields without a kretry tag are ignored
//	}
//
// A field whose type is a Handler is built with New, one whose type is a
// BatchHandler with NewBatch; a type that is both is an error (register
// one method, as in listener.BatchHandlerFunc(x.HandleBatch)). The batch
// settings, batch and batchWait (BatchSize and BatchWait in Go), apply to
// batch handlers only: in the tag of a single-record handler field, or in
// a policy file's entry for its topic, they are an error; from the Go
// options given to Register and from a policy file's defaults they apply
// to the batch handler fields and are not applied to the others. The
// key-order settings, keyOrder, followersOnDeadLetter and maxKeysInRetry
// (KeyOrder, FollowersOnDeadLetter and MaxKeysInRetry), the other way
// round: key order does not work with batch handlers yet, so they are an
// error in the tag of a batch handler field or its file entry, and from
// the Go options and a file's defaults they apply to the single-record
// handler fields only.
//
// A DLT handler field holds a dlt.Handler (or a func(context.Context,
// *kgo.Record, retry.State) error) and its tag is "dlt=<topic>", the main
// topic whose dead-lettered records it handles. A handler field whose
// value also has a HandleDLT method (it implements dlt.Handler too) is its
// topic's DLT handler as well; a "dlt=" field for the same topic is then
// an error, since either could be meant. The tag grammar is
// documented at config.ParseTag and in docs/configuration.md.
//
// Settings combine field by field, each over the previous: the defaults;
// opts (Go options, which apply to every listener); the field's tag; then
// each PolicyFile's defaults and the entry for the field's topic
// (docs/configuration.md, "Precedence").
//
// Register validates everything first and reports every problem at once,
// each naming where it came from (struct type, field and tag key, or
// file:line:column): invalid values and policies, unknown keys, unregistered
// error names, two handlers for one topic, topics that collide across
// listeners, a DLT handler for a topic no field consumes, policy file
// entries for topics no field consumes, batch settings for a single-record
// handler, key-order settings for a batch handler, transactionalId or
// transactionInterval for a listener that is not exactly once
// (exactlyOnce, any kind of handler), followersOnDeadLetter or
// maxKeysInRetry for one that is not key-ordered (keyOrder), keyOrder
// with exactlyOnce, two exactly-once listeners with one transactional ID,
// key-ordered and other listeners in one consumer group, nil or mistyped
// fields.
func Register(seeds []string, handlers any, opts ...RegisterOpt) ([]*Listener, error) {
	var rc regCfg
	for _, o := range opts {
		if o != nil {
			o.applyRegister(&rc)
		}
	}
	fs, errs := handlerFields(handlers)
	// When a tag failed, its topic is unknown: checks against the consumed
	// topics would mislead.
	topicsKnown := len(errs) == 0
	if len(fs) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("listener: Register: no field of %s has a kretry tag", typeName(reflect.TypeOf(handlers))))
	}

	// Topics: one handler per topic, DLT handlers for consumed topics.
	byTopic := map[string]*handlerField{}
	dltFor := map[string]*handlerField{}
	var consumers []*handlerField
	for _, f := range fs {
		if topic := f.decl.DLT(); topic != "" {
			if prev, dup := dltFor[topic]; dup {
				errs = append(errs, &config.Error{Pos: f.pos, Key: "dlt", Err: fmt.Errorf("%w DLT handler for topic %q, also field %s", config.ErrDuplicate, topic, prev.pos.Field)})
				continue
			}
			dltFor[topic] = f
			continue
		}
		topic := f.decl.Topic()
		if prev, dup := byTopic[topic]; dup {
			errs = append(errs, &config.Error{Pos: f.pos, Key: "topic", Err: fmt.Errorf("%w topic %q, also consumed by field %s; one handler per topic", config.ErrDuplicate, topic, prev.pos.Field)})
			continue
		}
		byTopic[topic] = f
		consumers = append(consumers, f)
	}
	for _, f := range fs {
		if topic := f.decl.DLT(); topicsKnown && topic != "" && byTopic[topic] == nil && dltFor[topic] == f {
			errs = append(errs, &config.Error{Pos: f.pos, Key: "dlt", Err: fmt.Errorf("no handler field consumes topic %q (consumed: %s)", topic, topicList(byTopic))})
		}
	}
	for _, file := range rc.files {
		for _, entry := range file.Listeners {
			f := byTopic[entry.Topic()]
			switch {
			case topicsKnown && f == nil:
				errs = append(errs, &config.Error{Pos: entry.Pos(), Key: "topic", Err: fmt.Errorf("listener entry for topic %q matches no handler field (consumed: %s)", entry.Topic(), topicList(byTopic))})
			case f != nil && f.batch == nil:
				errs = append(errs, batchSettingErrors(entry, "field "+f.pos.Struct+"."+f.pos.Field, "from this entry")...)
			case f != nil:
				errs = append(errs, keyOrderSettingErrors(entry, "field "+f.pos.Struct+"."+f.pos.Field, "from this entry")...)
			}
		}
	}

	// Resolve each listener's spec over the Go options.
	specs := make([]config.Spec, len(consumers))
	for i, f := range consumers {
		topic := f.decl.Topic()
		c := defaultCfg(seeds, topic)
		for _, o := range rc.opts {
			o.apply(&c)
		}
		if f.batch == nil {
			dropBatch(&c)
		} else {
			dropKeyOrder(&c)
		}
		decls := []*config.Decl{f.decl}
		for _, file := range rc.files {
			for _, d := range file.Layers(topic) {
				if f.batch != nil {
					// A file's key-order settings are not for a batch
					// handler; its entry's are reported above.
					d = d.Without(config.KeyOrderKeys()...)
				}
				decls = append(decls, d)
			}
		}
		s, err := config.Resolve(c.spec(), rc.reg, decls...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if f.batch == nil {
			// A file's defaults may size batches; a single-record
			// handler has none.
			s.Batch = config.DefaultSpec(topic).Batch
		}
		specs[i] = s
	}
	if len(errs) == 0 {
		errs = append(errs, collisions(consumers, specs)...)
		errs = append(errs, sharedTransactionalIDs(consumers, specs)...)
		errs = append(errs, mixedKeyOrderGroups(consumers, specs)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	ls := make([]*Listener, 0, len(consumers))
	for i, f := range consumers {
		lopts := slices.Clone(rc.opts)
		var primary any = f.handler
		method, adapter := "Handle", "listener.HandlerFunc(x.Handle)"
		if f.batch != nil {
			primary, method, adapter = f.batch, "HandleBatch", "listener.BatchHandlerFunc(x.HandleBatch)"
			lopts = append(lopts, opt(dropKeyOrder))
		} else {
			lopts = append(lopts, opt(dropBatch))
		}
		lopts = append(lopts, FromSpec(specs[i]))
		d := dltFor[specs[i].Topic]
		both, isBoth := primary.(dlt.Handler)
		switch {
		case d != nil && isBoth:
			errs = append(errs, &config.Error{Pos: f.pos, Err: fmt.Errorf("%w DLT handler for topic %q: the field's type %T has a HandleDLT method, "+
				"which serves as the topic's DLT handler, and field %s is one too; remove the %s field, or register only the "+
				"%s method here (%s)", config.ErrDuplicate, specs[i].Topic, primary, d.pos.Field, d.pos.Field, method, adapter)})
			continue
		case d != nil:
			lopts = append(lopts, DLTHandler(d.dlt))
		case isBoth:
			lopts = append(lopts, DLTHandler(both))
		}
		var l *Listener
		var err error
		if f.batch != nil {
			l, err = NewBatch(seeds, specs[i].Topic, f.batch, lopts...)
		} else {
			l, err = New(seeds, specs[i].Topic, f.handler, lopts...)
		}
		if err != nil {
			errs = append(errs, &config.Error{Pos: f.pos, Err: err})
			continue
		}
		ls = append(ls, l)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ls, nil
}

// dropBatch removes the batch settings the options given to Register set:
// they apply to batch handler fields only, and New refuses them.
func dropBatch(c *cfg) { c.batchSize, c.batchWait, c.batchSet = DefaultBatchSize, 0, false }

// dropKeyOrder removes the key-order settings the options given to
// Register set: they apply to single-record handler fields only, and
// NewBatch refuses them.
func dropKeyOrder(c *cfg) {
	c.keyOrder, c.followers, c.maxKeys = false, config.FollowersRelease, config.DefaultMaxKeysInRetry
}

// batchSettingErrors reports each batch setting of d, a declaration for
// the single-record handler of field; from says where to remove it.
func batchSettingErrors(d *config.Decl, field, from string) []error {
	return kindSettingErrors(d, config.BatchKeys(), "applies to batch handlers, but "+field+" holds a single-record handler",
		"make it a listener.BatchHandler (func(ctx, []*kgo.Record) error)", from)
}

// keyOrderSettingErrors reports each key-order setting of d, a
// declaration for the batch handler of field; from says where to remove
// it.
func keyOrderSettingErrors(d *config.Decl, field, from string) []error {
	return kindSettingErrors(d, config.KeyOrderKeys(), "key order does not work with batch handlers yet, but "+field+" holds a batch handler",
		"make it a listener.Handler (func(ctx, *kgo.Record) error)", from)
}

// kindSettingErrors reports each setting of keys that d sets although it
// does not apply to the kind of handler d declares: why says so, fix how
// to change the handler, and from where to remove the setting.
func kindSettingErrors(d *config.Decl, keys []string, why, fix, from string) []error {
	var errs []error
	for _, key := range keys {
		if at, path, ok := d.Setting(key); ok {
			errs = append(errs, &config.Error{Pos: at, Key: path, Err: fmt.Errorf("%s: %s, or remove %s %s", why, fix, key, from)})
		}
	}
	return errs
}

// handlerField is a tagged field of the struct given to Register.
type handlerField struct {
	pos     config.Pos
	decl    *config.Decl
	handler Handler      // for a single-record handler field
	batch   BatchHandler // for a batch handler field
	dlt     dlt.Handler  // for a DLT handler field
}

var (
	handlerType     = reflect.TypeFor[Handler]()
	handlerFuncType = reflect.TypeFor[HandlerFunc]()
	batchType       = reflect.TypeFor[BatchHandler]()
	batchFuncType   = reflect.TypeFor[BatchHandlerFunc]()
	dltHandlerType  = reflect.TypeFor[dlt.Handler]()
	dltFuncType     = reflect.TypeFor[dlt.HandlerFunc]()
)

// handlerFields reads the tagged fields of handlers.
func handlerFields(handlers any) ([]*handlerField, []error) {
	v := reflect.ValueOf(handlers)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, []error{fmt.Errorf("listener: Register: handlers is a nil %s", v.Type())}
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil, []error{fmt.Errorf("listener: Register: handlers must be a struct or a pointer to one, got %s", typeName(reflect.TypeOf(handlers)))}
	}
	t := v.Type()
	var out []*handlerField
	var errs []error
	for i := range t.NumField() {
		sf := t.Field(i)
		pos := config.Pos{Struct: typeName(t), Field: sf.Name}
		fail := func(format string, args ...any) {
			errs = append(errs, &config.Error{Pos: pos, Err: fmt.Errorf(format, args...)})
		}
		tag, ok := sf.Tag.Lookup(config.TagKey)
		if !ok {
			// reflect ignores a tag it cannot unquote; say so rather than
			// skip a handler silently.
			if strings.Contains(string(sf.Tag), config.TagKey+":") {
				fail("the struct tag %q is not well-formed (a tag value is a Go string: write \\\\ for each backslash of an escape)", string(sf.Tag))
			}
			continue
		}
		if tag == "-" {
			continue
		}
		if !sf.IsExported() {
			fail("field must be exported to be registered")
			continue
		}
		d, err := config.ParseTag(tag, pos)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hf := &handlerField{pos: pos, decl: d}
		fv := v.Field(i)
		if isNil(fv) {
			what := "handler field"
			if d.DLT() != "" {
				what = "DLT handler field"
			}
			fail("a %s is nil; set it before calling Register", what)
			continue
		}
		if d.DLT() != "" {
			h, ok := as[dlt.Handler](fv, dltHandlerType, dltFuncType)
			if !ok {
				fail("a DLT handler field must implement %s or be a %s, got %s", dltHandlerType, funcSignature(dltFuncType), fv.Type())
				continue
			}
			hf.dlt = h
			out = append(out, hf)
			continue
		}
		h, single := as[Handler](fv, handlerType, handlerFuncType)
		b, batch := as[BatchHandler](fv, batchType, batchFuncType)
		switch {
		case single && batch:
			fail("a handler field must be either a %s or a %s, but %s is both; register one method, as in "+
				"listener.HandlerFunc(x.Handle) or listener.BatchHandlerFunc(x.HandleBatch)", handlerType, batchType, fv.Type())
			continue
		case batch:
			hf.batch = b
			if e := keyOrderSettingErrors(d, "the field", "from the tag"); len(e) > 0 {
				errs = append(errs, e...)
				continue
			}
		case single:
			hf.handler = h
			if e := batchSettingErrors(d, "the field", "from the tag"); len(e) > 0 {
				errs = append(errs, e...)
				continue
			}
		default:
			fail("a handler field must implement %s or %s, or be a %s or a %s, got %s",
				handlerType, batchType, funcSignature(handlerFuncType), funcSignature(batchFuncType), fv.Type())
			continue
		}
		out = append(out, hf)
	}
	return out, errs
}

// isNil reports whether fv is a nil pointer, interface, func, map, slice
// or channel.
func isNil(fv reflect.Value) bool {
	switch fv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan:
		return fv.IsNil()
	}
	return false
}

// as returns fv as a T: a value implementing iface (or whose address
// does), or a func convertible to fn. fv is not nil.
func as[T any](fv reflect.Value, iface, fn reflect.Type) (T, bool) {
	switch {
	case fv.Type().Implements(iface):
		return fv.Interface().(T), true
	case fv.CanAddr() && reflect.PointerTo(fv.Type()).Implements(iface):
		return fv.Addr().Interface().(T), true
	case fv.Kind() == reflect.Func && fv.Type().ConvertibleTo(fn):
		return fv.Convert(fn).Interface().(T), true
	}
	var zero T
	return zero, false
}

// funcSignature spells a func type without its name, as in
// "func(context.Context, *kgo.Record) error".
func funcSignature(t reflect.Type) string {
	in := make([]string, t.NumIn())
	for i := range in {
		in[i] = t.In(i).String()
	}
	out := make([]string, t.NumOut())
	for i := range out {
		out[i] = t.Out(i).String()
	}
	return "func(" + strings.Join(in, ", ") + ") " + strings.Join(out, ", ")
}

// collisions reports topics that two listeners would both use.
func collisions(fs []*handlerField, specs []config.Spec) []error {
	type use struct {
		field string
		role  string
	}
	used := map[string]use{}
	var errs []error
	for i, s := range specs {
		plan, err := s.Plan()
		if err != nil {
			continue // reported by Resolve
		}
		for _, t := range plan.Topics() {
			role, _ := plan.Lookup(t)
			u := use{fs[i].pos.Field, fmt.Sprintf("the %s topic of %q", role, s.Topic)}
			if prev, dup := used[t]; dup {
				errs = append(errs, &config.Error{Pos: fs[i].pos, Key: "topic", Err: fmt.Errorf("%w topic %q: it is %s (field %s) and %s (field %s); choose other topics or suffixes",
					config.ErrDuplicate, t, u.role, u.field, prev.role, prev.field)})
				continue
			}
			used[t] = u
		}
	}
	return errs
}

// sharedTransactionalIDs reports exactly-once listeners that would use
// one transactional ID, and so fence each other: the same ID given (in a
// file's defaults or an ExactlyOnce option given to Register, it is every
// listener's). Derived IDs ("<group>-<topic>-<host name>") differ, since
// Register refuses two handlers for one topic.
func sharedTransactionalIDs(fs []*handlerField, specs []config.Spec) []error {
	used := map[string]int{}
	var errs []error
	for i, s := range specs {
		e := s.ExactlyOnce
		if !e.Enabled {
			continue
		}
		id, what := e.TransactionalID, fmt.Sprintf("transactional ID %q", e.TransactionalID)
		if id == "" {
			continue // derived: "<group>-<topic>-<host name>", one per topic
		}
		j, dup := used[id]
		if !dup {
			used[id] = i
			continue
		}
		errs = append(errs, &config.Error{Pos: fs[i].pos, Key: "transactionalId", Err: fmt.Errorf("%w %s, also field %s's: "+
			"exactly-once listeners with one transactional ID fence each other; give each its own ID, or leave it out to derive one per topic",
			config.ErrDuplicate, what, fs[j].pos.Field)})
	}
	return errs
}

// mixedKeyOrderGroups reports a listener that would share its consumer
// group with one whose key order differs: a key-ordered listener's group
// uses its own partition assignor, which other members cannot join.
func mixedKeyOrderGroups(fs []*handlerField, specs []config.Spec) []error {
	first := map[string]int{}
	var errs []error
	for i, s := range specs {
		j, seen := first[s.Group]
		if !seen {
			first[s.Group] = i
			continue
		}
		if o := specs[j]; o.KeyOrder.Enabled != s.KeyOrder.Enabled {
			errs = append(errs, &config.Error{Pos: fs[i].pos, Key: "keyOrder", Err: fmt.Errorf("is %v, but field %s, in the same group %q, has keyOrder %v: "+
				"a key-ordered listener's group uses its own partition assignor, which other listeners cannot join; give one of them another group",
				s.KeyOrder.Enabled, fs[j].pos.Field, s.Group, o.KeyOrder.Enabled)})
		}
	}
	return errs
}

func topicList(m map[string]*handlerField) string {
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}

// typeName names a struct type for messages: "main.Handlers", or
// "struct {…}" for an anonymous one.
func typeName(t reflect.Type) string {
	switch {
	case t == nil:
		return "nil"
	case t.Kind() == reflect.Pointer:
		return "*" + typeName(t.Elem())
	case t.Name() == "" && t.Kind() == reflect.Struct:
		return "struct {…}"
	}
	return t.String()
}

// spec returns the settings of c that a config.Spec holds.
func (c *cfg) spec() config.Spec {
	return config.Spec{
		Topic:  c.topic,
		Group:  c.group,
		Policy: c.policy,
		Topics: config.TopicSettings{
			Create:            c.createTopics,
			Partitions:        c.partitions,
			ReplicationFactor: c.replicationFactor,
			Configs:           c.topicConfigs,
		},
		Batch:       config.BatchSettings{Size: c.batchSize, Wait: c.batchWait},
		ExactlyOnce: config.ExactlyOnceSettings{Enabled: c.eos, TransactionalID: c.txnID, Interval: c.txnInterval},
		KeyOrder:    config.KeyOrderSettings{Enabled: c.keyOrder, OnDeadLetter: c.followers, MaxKeys: c.maxKeys},
	}
}

// Spec returns the listener's resolved settings — topic, group, normalized
// retry policy, topic settings, batch settings (the defaults for a
// single-record handler), exactly-once settings (TransactionalID as
// given: empty when it is derived from the group and the host name at
// Run) and key-order settings (the defaults for a batch handler) — as a
// config.Spec, for logging or for config.MarshalYAML.
func (l *Listener) Spec() config.Spec {
	s := l.cfg.spec()
	s.Topic = l.plan.Main
	s.Policy = l.policy
	s.Topics.Configs = maps.Clone(s.Topics.Configs)
	return s
}

// RunAll runs every listener (Run) until ctx is canceled or one of them
// fails; a failure cancels the others. It returns when all have returned,
// with the errors that caused the stop joined: nil when ctx was canceled
// and every listener stopped cleanly. A listener interrupted by the stop
// while it was still starting reports no error of its own.
//
// Before starting anything RunAll checks the listeners' plans. Two
// listeners of one consumer group that would consume the same topic are
// refused (ErrSharedTopic): the group would split that topic's records
// between two handlers. Listeners of different groups that share retry or
// dead-letter topics (several services on one topic with the default
// names) work, since each skips the other's records, but each reads and
// commits past all of them: RunAll logs a warning that names the topics
// and suggests per-group names (strategy.Naming.GroupTopics).
func RunAll(ctx context.Context, ls ...*Listener) error {
	if err := checkShared(ls); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() {
			err := l.Run(ctx)
			if err == nil || ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return
			}
			errs[i] = fmt.Errorf("listener: topic %q: %w", l.plan.Main, err)
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ErrSharedTopic is returned by RunAll, wrapped, for two listeners of one
// consumer group that would consume the same topic.
var ErrSharedTopic = errors.New("listener: two listeners of one group consume the same topic")

// checkShared refuses listeners of one group that share a topic and warns
// about listeners of different groups that share retry or DLT topics.
func checkShared(ls []*Listener) error {
	type owner struct {
		l    *Listener
		role string
	}
	seen := map[string][]owner{}
	var errs []error
	for _, l := range ls {
		for _, t := range l.consumedTopics() {
			role, _ := l.plan.Lookup(t)
			me := owner{l, "the " + role.String() + " topic"}
			for _, o := range seen[t] {
				if o.l.cfg.group == l.cfg.group {
					errs = append(errs, fmt.Errorf("%w: group %q: topic %q is %s of %q and %s of %q; give one listener another group or other topic names",
						ErrSharedTopic, l.cfg.group, t, o.role, o.l.plan.Main, me.role, l.plan.Main))
				}
			}
			seen[t] = append(seen[t], me)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	warned := map[[2]*Listener]bool{}
	for _, t := range slices.Sorted(maps.Keys(seen)) {
		owners := seen[t]
		for i := range owners {
			for _, o := range owners[i+1:] {
				a, b := owners[i].l, o.l
				if a.cfg.group == b.cfg.group || warned[[2]*Listener{a, b}] {
					continue
				}
				if role, _ := a.plan.Lookup(t); role == strategy.RoleMain {
					continue // services sharing a main topic: the normal case
				}
				warned[[2]*Listener{a, b}] = true
				b.log.Warn("kretry: listeners of two groups share retry or DLT topics; each reads and skips the other's records. "+
					"Give each group its own topics with per-group naming (groupTopics) to save those reads",
					"groups", a.cfg.group+", "+b.cfg.group, "topics", strings.Join(sharedTopics(a, b), ", "))
			}
		}
	}
	return nil
}

// sharedTopics lists the retry and DLT topics a and b both consume.
func sharedTopics(a, b *Listener) []string {
	var out []string
	bs := b.consumedTopics()
	for _, t := range a.consumedTopics() {
		if role, _ := a.plan.Lookup(t); role != strategy.RoleMain && slices.Contains(bs, t) {
			out = append(out, t)
		}
	}
	return out
}
