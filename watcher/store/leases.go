package store

import (
	"context"
	"database/sql"
	"hash/fnv"
	"sync"
	"time"
)

// logLeases hold, on PostgreSQL, one advisory lock per CT log this process follows, all on one
// connection of their own: PostgreSQL releases them when that session ends, so a process that
// dies (kill -9, a lost machine) gives its logs up as soon as its connection drops, and
// another ingest process takes them over.
type logLeases struct {
	mu   sync.Mutex
	conn *sql.Conn
	held map[string]bool
	// schema is the session's schema: advisory locks are database-wide, and two deployments
	// (or two test runs) in other schemas of one database must not share their logs' locks.
	schema string
	lost   chan struct{}
	stop   chan struct{}
}

// leaseKeepalive is how often the lease connection is checked: a broken one has lost every
// lock, and the logs must stop being followed here.
const leaseKeepalive = 10 * time.Second

func logLockKey(schema, logID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("helpwatch ct log " + schema + "\x00" + logID))
	return int64(h.Sum64())
}

// TryLog takes CT log logID for this process when no other process holds it, and says whether
// it did. The lease lasts until the store is closed; lost is closed if it ends before (the
// database connection broke: follow nothing more under it, and try again). On SQLite, a store
// of one machine, every log is this process's.
func (s *SQL) TryLog(ctx context.Context, logID string) (ok bool, lost <-chan struct{}, err error) {
	if s.dialect != postgresDialect {
		return true, nil, nil
	}
	l := &s.leases
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return false, nil, err
		}
		var schema string
		if err := conn.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			conn.Close()
			return false, nil, err
		}
		l.conn, l.held, l.schema, l.lost, l.stop = conn, map[string]bool{}, schema, make(chan struct{}), make(chan struct{})
		go s.keepLeases(conn, l.lost, l.stop)
	}
	if l.held[logID] {
		return true, l.lost, nil
	}
	if err := l.conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, logLockKey(l.schema, logID)).Scan(&ok); err != nil {
		s.dropLeasesLocked()
		return false, nil, err
	}
	if ok {
		l.held[logID] = true
	}
	return ok, l.lost, nil
}

// keepLeases checks the lease connection until stop; when it breaks, every lease is lost.
func (s *SQL) keepLeases(conn *sql.Conn, lost, stop chan struct{}) {
	t := time.NewTicker(leaseKeepalive)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := conn.PingContext(ctx)
		cancel()
		if err != nil {
			s.leases.mu.Lock()
			if s.leases.conn == conn {
				s.dropLeasesLocked()
			}
			s.leases.mu.Unlock()
			return
		}
	}
}

// dropLeasesLocked gives up the lease connection (its locks go with it) and says so.
func (s *SQL) dropLeasesLocked() {
	l := &s.leases
	if l.conn == nil {
		return
	}
	close(l.lost)
	close(l.stop)
	l.conn.Close()
	l.conn, l.held = nil, nil
}

func (s *SQL) closeLeases() {
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	s.dropLeasesLocked()
}
