package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/jackc/pgx/v5/pgconn"
)

// keptErrors bounds the reasons a job keeps (the latest ones).
const keptErrors = 10

func (s *SQL) RegisterWorker(ctx context.Context, w Worker) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO workers (id, host, pid, pid_start, started, heartbeat) VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat`, w.ID, w.Host, w.PID, w.PIDStart, w.Started.UnixMilli())
	return s.explain(err)
}

func (s *SQL) Heartbeat(ctx context.Context, workerID string, now time.Time, lease time.Duration) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE workers SET heartbeat = $1 WHERE id = $2`, now.UnixMilli(), workerID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE jobs SET lease_until = $1 WHERE owner = $2 AND state = 'running'`, now.Add(lease).UnixMilli(), workerID)
		return err
	})
}

func (s *SQL) UnregisterWorker(ctx context.Context, workerID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', owner = '', lease_until = 0, due_at = $1,
			attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE owner = $2 AND state = 'running'`,
			s.now().UnixMilli(), workerID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM workers WHERE id = $1`, workerID)
		return err
	})
}

// HostName is how workers name their host in the workers table.
func HostName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// ProcessStart is the start time of process pid as the kernel counts it (Linux), so that a
// reused pid is not mistaken for the process that registered; "" where it cannot be read.
func ProcessStart(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from its end.
	s := string(data)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return ""
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 20 {
		return ""
	}
	return fields[19] // field 22 of the whole line
}

// alive reports whether the process of a worker row on this host still runs.
func alive(pid int, pidStart string) bool {
	if pid <= 0 {
		return false
	}
	now := ProcessStart(pid)
	if now == "" {
		// No /proc (not Linux) and no way to tell: trust the lease.
		if _, err := os.Stat("/proc/self/stat"); err != nil {
			return true
		}
		return false
	}
	return pidStart == "" || now == pidStart
}

// reap takes back the jobs of gone workers: leases that ran out anywhere, and at once the jobs
// of workers on this host whose process has exited. A lost job's attempt stays counted, so a
// job that kills its worker every time ends failed instead of looping.
func (s *SQL) reap(ctx context.Context, tx *sql.Tx, self string, now time.Time) error {
	host := HostName()
	rows, err := tx.QueryContext(ctx, `SELECT id, pid, pid_start FROM workers WHERE host = $1 AND id != $2`, host, self)
	if err != nil {
		return err
	}
	var dead []string
	for rows.Next() {
		var id, start string
		var pid int
		if err := rows.Scan(&id, &pid, &start); err != nil {
			rows.Close()
			return err
		}
		if !alive(pid, start) {
			dead = append(dead, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	ms := now.UnixMilli()
	for _, id := range dead {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET lease_until = 0 WHERE owner = $1 AND state = 'running'`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM workers WHERE id = $1`, id); err != nil {
			return err
		}
	}
	lost := `the worker holding it stopped without finishing it`
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'failed', owner = '', finished_at = $1, last_error = $2
		WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts`, ms, lost+` (attempts used up)`); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', owner = '', lease_until = 0, due_at = $1, last_error = $2
		WHERE state = 'running' AND lease_until < $1`, ms, lost)
	return err
}

// reapEvery is how often a claim also takes back the jobs of gone workers while the queue
// is busy; a claim that finds fewer jobs than it asked for always does.
const reapEvery = time.Second

func (s *SQL) ClaimJobs(ctx context.Context, workerID string, kinds []string, n int, now time.Time, lease time.Duration, afterKinds bool) ([]Job, error) {
	if n <= 0 || len(kinds) == 0 {
		return nil, nil
	}
	var out []Job
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		if s.dialect == postgresDialect {
			// A claim lost in a database crash is only a job run again: it need not wait
			// for the disk, and the queue's throughput is then not one fsync per claim.
			if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit TO OFF`); err != nil {
				return err
			}
		}
		// Reaping reads the workers and scans the running jobs: on a busy queue it runs once
		// a second, and whenever the due jobs seem used up, so a dead worker's jobs are
		// still taken as soon as they are the only ones left.
		reaped := false
		if last := s.lastReap.Load(); now.UnixMilli()-last >= reapEvery.Milliseconds() || now.UnixMilli() < last {
			if err := s.reap(ctx, tx, workerID, now); err != nil {
				return err
			}
			reaped = true
		}
		jobs, err := s.claim(ctx, tx, workerID, kinds, n, now, lease, afterKinds)
		if err != nil {
			return err
		}
		out = append(out, jobs...)
		if len(out) < n && !reaped {
			if err := s.reap(ctx, tx, workerID, now); err != nil {
				return err
			}
			reaped = true
			jobs, err := s.claim(ctx, tx, workerID, kinds, n-len(out), now, lease, afterKinds)
			if err != nil {
				return err
			}
			out = append(out, jobs...)
		}
		if reaped {
			s.lastReap.Store(now.UnixMilli())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: claiming jobs: %w", s.path, err)
	}
	// Oldest due first, whatever order the database returned them in.
	for i := 1; i < len(out); i++ {
		for k := i; k > 0 && (out[k].Due.Before(out[k-1].Due) || out[k].Due.Equal(out[k-1].Due) && out[k].ID < out[k-1].ID); k-- {
			out[k], out[k-1] = out[k-1], out[k]
		}
	}
	return out, nil
}

// claim takes up to n due jobs of kinds for workerID inside tx.
func (s *SQL) claim(ctx context.Context, tx *sql.Tx, workerID string, kinds []string, n int, now time.Time, lease time.Duration, afterKinds bool) ([]Job, error) {
	args := []any{workerID, now.Add(lease).UnixMilli(), now.UnixMilli()}
	for _, k := range kinds {
		args = append(args, k)
	}
	wait := ""
	if afterKinds {
		wait = ` AND NOT EXISTS (SELECT 1 FROM jobs w WHERE w.case_id = j.case_id AND w.kind = j.after_kind AND w.state IN ('queued', 'running'))`
	}
	lock := ""
	if s.dialect == postgresDialect {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	// The case's name comes with the claim (a subquery in RETURNING, which SQLite and
	// PostgreSQL both read): one statement for the batch, not one more per job.
	rows, err := tx.QueryContext(ctx, `UPDATE jobs SET state = 'running', owner = $1, lease_until = $2, started_at = $3, attempts = attempts + 1
		WHERE id IN (SELECT j.id FROM jobs j WHERE j.state = 'queued' AND j.due_at <= $3 AND j.kind IN (`+placeholders(4, len(kinds))+`)`+wait+`
		ORDER BY j.due_at, j.id LIMIT `+fmt.Sprint(n)+lock+`)
		RETURNING id, kind, case_id, run, ref, attempts, max_attempts, created_at, due_at, last_error,
			COALESCE((SELECT c.registrable FROM cases c WHERE c.id = jobs.case_id), '')`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j := Job{Owner: workerID}
		var created, due int64
		if err := rows.Scan(&j.ID, &j.Kind, &j.CaseID, &j.Run, &j.Ref, &j.Attempt, &j.MaxAttempts, &created, &due, &j.LastError, &j.Registrable); err != nil {
			return nil, err
		}
		j.Created, j.Due = fromMillis(created), fromMillis(due)
		out = append(out, j)
	}
	return out, rows.Err()
}

// lockCaseFirst takes the case's row lock before a worker touches its job row: a watch saving
// a batch locks the case and then queues its jobs, so a worker that locked its job first and
// the case second would deadlock with it (PostgreSQL; SQLite has one writer).
func (s *SQL) lockCaseFirst(ctx context.Context, tx *sql.Tx, caseID int64) error {
	if s.dialect != postgresDialect || caseID == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT id FROM cases WHERE id = $1 FOR UPDATE`, caseID)
	return err
}

// IsTransient reports whether err is the database ending a transaction that would succeed if
// run again at once: a deadlock or serialization failure, or a connection the server closed
// (a restart, pg_terminate_backend). The queue retries such a job at once without counting
// the attempt.
func IsTransient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "40P01", pgErr.Code == "40001", strings.HasPrefix(pgErr.Code, "57P"), strings.HasPrefix(pgErr.Code, "08"):
			return true
		}
	}
	return errors.Is(err, driver.ErrBadConn)
}

// completeJob marks a held job done inside tx; ErrLeaseLost when it is no longer held.
func (s *SQL) completeJob(ctx context.Context, tx *sql.Tx, job *Job, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', owner = '', lease_until = 0, finished_at = $1
		WHERE id = $2 AND owner = $3 AND state = 'running'`, now.UnixMilli(), job.ID, job.Owner)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrLeaseLost
	}
	return nil
}

// appendError adds a reason to a job's kept list (JSON), dropping the oldest past keptErrors.
func appendError(list string, at time.Time, reason string) string {
	var errs []struct {
		At     time.Time `json:"at"`
		Reason string    `json:"reason"`
	}
	_ = json.Unmarshal([]byte(list), &errs)
	errs = append(errs, struct {
		At     time.Time `json:"at"`
		Reason string    `json:"reason"`
	}{at.UTC(), reason})
	if len(errs) > keptErrors {
		errs = errs[len(errs)-keptErrors:]
	}
	data, _ := json.Marshal(errs)
	return string(data)
}

func (s *SQL) RetryJob(ctx context.Context, job *Job, at time.Time, reason string, countAttempt bool) (bool, error) {
	failed := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var errs string
		var attempts, maxAttempts int
		err := tx.QueryRowContext(ctx, `SELECT errors, attempts, max_attempts FROM jobs WHERE id = $1 AND owner = $2 AND state = 'running'`,
			job.ID, job.Owner).Scan(&errs, &attempts, &maxAttempts)
		if err == sql.ErrNoRows {
			return ErrLeaseLost
		}
		if err != nil {
			return err
		}
		now := s.now()
		if !countAttempt {
			attempts--
		}
		errs = appendError(errs, now, reason)
		if countAttempt && attempts >= maxAttempts {
			failed = true
			_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = 'failed', owner = '', lease_until = 0, finished_at = $1, last_error = $2, errors = $3,
				retries = retries + 1 WHERE id = $4`, now.UnixMilli(), reason, errs, job.ID)
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', owner = '', lease_until = 0, due_at = $1, last_error = $2, errors = $3,
			attempts = $4, retries = retries + 1 WHERE id = $5`, at.UnixMilli(), reason, errs, attempts, job.ID)
		return err
	})
	return failed, err
}

func (s *SQL) ReleaseJob(ctx context.Context, job *Job) error {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = 'queued', owner = '', lease_until = 0, due_at = $1,
		attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE id = $2 AND owner = $3 AND state = 'running'`,
		s.now().UnixMilli(), job.ID, job.Owner)
	if err != nil {
		return s.explain(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrLeaseLost
	}
	return nil
}

func (s *SQL) FailJob(ctx context.Context, job *Job, reason string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var errs string
		if err := tx.QueryRowContext(ctx, `SELECT errors FROM jobs WHERE id = $1 AND owner = $2 AND state = 'running'`, job.ID, job.Owner).Scan(&errs); err != nil {
			if err == sql.ErrNoRows {
				return ErrLeaseLost
			}
			return err
		}
		now := s.now()
		_, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'failed', owner = '', lease_until = 0, finished_at = $1, last_error = $2, errors = $3
			WHERE id = $4`, now.UnixMilli(), reason, appendError(errs, now, reason), job.ID)
		return err
	})
}

func (s *SQL) PendingJobs(ctx context.Context, kinds []string) (int, error) {
	if len(kinds) == 0 {
		return 0, nil
	}
	args := make([]any, len(kinds))
	for i, k := range kinds {
		args[i] = k
	}
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running') AND kind IN (`+placeholders(1, len(kinds))+`)`,
		args...).Scan(&n)
	return n, err
}

func (s *SQL) DueJobs(ctx context.Context, kinds []string, now time.Time) (int, error) {
	if len(kinds) == 0 {
		return 0, nil
	}
	args := []any{now.UnixMilli()}
	for _, k := range kinds {
		args = append(args, k)
	}
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND due_at <= $1 AND kind IN (`+placeholders(2, len(kinds))+`)`,
		args...).Scan(&n)
	return n, err
}

func (s *SQL) JobStats(ctx context.Context, now time.Time) ([]KindStats, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT kind, state, CASE WHEN state = 'queued' AND due_at > $1 THEN 1 ELSE 0 END AS later,
		COUNT(*), SUM(retries), MIN(due_at) FROM jobs GROUP BY kind, state, later ORDER BY kind`, now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	by := map[string]*KindStats{}
	var order []string
	for _, k := range jobs.Names() {
		by[k] = &KindStats{Kind: k}
		order = append(order, k)
	}
	for rows.Next() {
		var kind, state string
		var later, count, retries int
		var oldest int64
		if err := rows.Scan(&kind, &state, &later, &count, &retries, &oldest); err != nil {
			return nil, err
		}
		st := by[kind]
		if st == nil {
			st = &KindStats{Kind: kind}
			by[kind] = st
			order = append(order, kind)
		}
		st.Retried += retries
		switch {
		case state == "queued" && later == 1:
			st.Scheduled += count
		case state == "queued":
			st.Queued += count
			st.OldestAge = max(st.OldestAge, now.Sub(fromMillis(oldest)).Seconds())
		case state == "running":
			st.Running += count
		case state == "done":
			st.Done += count
		case state == "failed":
			st.Failed += count
		}
	}
	out := make([]KindStats, 0, len(order))
	for _, k := range order {
		out = append(out, *by[k])
	}
	return out, rows.Err()
}

// CompleteJob marks a held job done when there was nothing to store (a delivery whose report
// was withdrawn or already sent); ErrLeaseLost when it is no longer held.
func (s *SQL) CompleteJob(ctx context.Context, job *Job) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return s.completeJob(ctx, tx, job, s.now()) })
}
