package compile

import (
	"fmt"

	"github.com/ownerwall/ownerwall/internal/ident"
	"github.com/ownerwall/ownerwall/internal/ir"
)

// accountVia explains a user principal: its one uid is the account's.
// It holds the principal's UIDs too: one allocation per user principal.
type accountVia struct {
	uid  uint32
	name string
	uids [1]ir.Interval
}

func (v *accountVia) Why(uid uint32) (string, bool) {
	if uid != v.uid {
		return "", false
	}
	return "the account " + v.name, true
}

// groupVia explains a group principal from its member list, writing the
// sentence only for the uid asked about. Of members sharing a uid, the
// last one listed speaks for it.
type groupVia struct {
	group   string
	members []ident.Member
}

func (v *groupVia) Why(uid uint32) (string, bool) {
	for i := len(v.members) - 1; i >= 0; i-- {
		if m := &v.members[i]; m.UID == uid {
			return fmt.Sprintf("%s is a %s member of %s", m.Name, m.Via, v.group), true
		}
	}
	return "", false
}
