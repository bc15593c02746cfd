package ctlog

import (
	"context"
	"time"
)

// logClient is what the follower needs from one log, whatever its API. Every method that
// returns entries or heads has verified them: a head's signature, a new head's consistency
// with an old one, entries' inclusion in the head they were read against.
type logClient interface {
	// head fetches the newest tree head and checks its signature.
	head(ctx context.Context) (head, error)
	// consistent checks that cur contains old as a prefix (old.Size <= cur.Size).
	consistent(ctx context.Context, old, cur head) error
	// frontier returns what fetch needs to verify entries from index on against h (RFC 6962:
	// the compact range of [0, index); static-ct-api logs need nothing).
	frontier(ctx context.Context, h head, index int64) ([][]byte, error)
	// fetch reads the entries [from, to) of h, checks they are the ones h commits to, and
	// returns them with the frontier at to. It may stop short of to (at a tile boundary, or
	// after what the log would give in one go); chunk.next says where.
	fetch(ctx context.Context, h head, frontier [][]byte, from, to int64) (chunk, error)
	// entryTime is the log timestamp of entry i of h, unverified: it only chooses where a
	// backfill starts.
	entryTime(ctx context.Context, h head, i int64) (time.Time, error)
}

// chunk is a verified run of entries.
type chunk struct {
	entries   []*Entry      // parsed entries, in index order; unreadable ones are left out
	malformed int           // entries in the tree that did not parse
	unread    []unreadEntry // the first few of them, to be named in the log
	next      int64
	frontier  [][]byte
}

// unreadEntry is an entry of the tree that could not be read, and why.
type unreadEntry struct {
	index int64
	why   string
}

// maxUnreadNamed bounds the unreadable entries a chunk names (a hostile log may have many).
const maxUnreadNamed = 3

// skip counts n entries from index on as unreadable for why.
func (c *chunk) skip(index int64, n int, why error) {
	c.malformed += n
	if len(c.unread) < maxUnreadNamed {
		c.unread = append(c.unread, unreadEntry{index: index, why: why.Error()})
	}
}
