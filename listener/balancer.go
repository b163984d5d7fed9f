package listener

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// laneProtocol is the name of laneBalancer's group protocol. A group
// whose members do not all offer it cannot form: a key-ordered listener
// never shares its group with members that assign otherwise.
const laneProtocol = "kretry-lanes-v1"

// laneBalancer is the group assignor of key-ordered listeners: it gives
// partition n of every topic of the group (the main topic, its tiers and
// DLTs) to one member, so the member that handles a main partition's
// records also owns every tier partition they can wait in. Lanes are
// dealt round-robin over the members in the order the coordinator lists
// them. It is eager: a rebalance revokes every lane, and each is rebuilt
// by its next owner.
type laneBalancer struct{}

var _ kgo.GroupBalancer = laneBalancer{}

func (laneBalancer) ProtocolName() string { return laneProtocol }
func (laneBalancer) IsCooperative() bool  { return false }

func (laneBalancer) JoinGroupMetadata(topics []string, _ map[string][]int32, generation int32) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 0
	m.Topics = topics
	m.Generation = generation
	return m.AppendTo(nil)
}

func (laneBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b laneBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	return cb, cb.MemberTopics(), err
}

// Balance deals lane n to the n-th member (modulo their number) among
// those interested in the topic; members interested in the same topics,
// as the members of one listener's group are, get whole lanes.
func (laneBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	plan := cb.NewPlan()
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	slices.Sort(names)
	members := cb.Members()
	for _, t := range names {
		var interested []int
		cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
			if slices.Contains(meta.Topics, t) {
				i := slices.IndexFunc(members, func(o kmsg.JoinGroupResponseMember) bool { return o.MemberID == m.MemberID })
				interested = append(interested, i)
			}
		})
		if len(interested) == 0 {
			continue
		}
		for p := range topics[t] {
			m := &members[interested[int(p)%len(interested)]]
			plan.AddPartition(m, t, p)
		}
	}
	return plan
}
