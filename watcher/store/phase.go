package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// phase collects statements whose arguments do not depend on one another's results and runs
// them together, calling each one's callback in order. On PostgreSQL they go pipelined in one
// round trip on the transaction's connection (a batch of thousands of names would otherwise
// wait for the network thousands of times); on SQLite, which runs in the process, one after
// another through statements prepared once per transaction.
type phase struct {
	ops []phaseOp
}

type phaseOp struct {
	query string
	args  []any
	exec  func(rowsAffected int64) error
	// row gets a scan function that returns sql.ErrNoRows when the statement gave no row.
	row func(scan func(dest ...any) error) error
}

// Exec queues a statement; done (may be nil) gets the number of rows it changed.
func (p *phase) Exec(query string, done func(rowsAffected int64) error, args ...any) {
	p.ops = append(p.ops, phaseOp{query: query, args: args, exec: done})
}

// QueryRow queues a statement that returns at most one row, read by row.
func (p *phase) QueryRow(query string, row func(scan func(dest ...any) error) error, args ...any) {
	p.ops = append(p.ops, phaseOp{query: query, args: args, row: row})
}

// phaseTx is a transaction that runs phases.
type phaseTx struct {
	*sql.Tx
	conn  *sql.Conn // PostgreSQL: the transaction's connection, for pipelined batches
	stmts map[string]*sql.Stmt
}

func (t *phaseTx) close() {
	for _, st := range t.stmts {
		st.Close()
	}
}

// run runs the phase's statements and empties it.
func (t *phaseTx) run(ctx context.Context, p *phase) error {
	defer func() { p.ops = p.ops[:0] }()
	if len(p.ops) == 0 {
		return nil
	}
	if t.conn != nil {
		return t.runBatch(ctx, p)
	}
	for _, op := range p.ops {
		st := t.stmts[op.query]
		if st == nil {
			var err error
			if st, err = t.PrepareContext(ctx, op.query); err != nil {
				return err
			}
			if t.stmts == nil {
				t.stmts = map[string]*sql.Stmt{}
			}
			t.stmts[op.query] = st
		}
		if op.row != nil {
			row := st.QueryRowContext(ctx, op.args...)
			if err := op.row(row.Scan); err != nil {
				return err
			}
			continue
		}
		res, err := st.ExecContext(ctx, op.args...)
		if err != nil {
			return err
		}
		if op.exec != nil {
			n, _ := res.RowsAffected()
			if err := op.exec(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// runBatch sends the phase as one pgx batch on the connection the transaction holds (between
// the transaction's own statements, so it is inside the transaction).
func (t *phaseTx) runBatch(ctx context.Context, p *phase) error {
	return t.conn.Raw(func(driverConn any) error {
		sc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: a PostgreSQL connection of type %T", driverConn)
		}
		b := &pgx.Batch{}
		for _, op := range p.ops {
			q := b.Queue(op.query, op.args...)
			switch {
			case op.row != nil:
				row := op.row
				q.QueryRow(func(r pgx.Row) error {
					return row(func(dest ...any) error {
						err := r.Scan(dest...)
						if errors.Is(err, pgx.ErrNoRows) {
							return sql.ErrNoRows
						}
						return err
					})
				})
			case op.exec != nil:
				exec := op.exec
				q.Exec(func(tag pgconn.CommandTag) error { return exec(tag.RowsAffected()) })
			}
		}
		return sc.Conn().SendBatch(ctx, b).Close()
	})
}

// inPhaseTx is inTx for work done in phases: on PostgreSQL the transaction runs on a
// connection of its own that the phases' batches use too, and it is tried again (f must be
// repeatable) when the server ends it to break a deadlock with another writer.
func (s *SQL) inPhaseTx(ctx context.Context, f func(tx *phaseTx) error) error {
	if s.dialect != postgresDialect {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			ptx := &phaseTx{Tx: tx}
			defer ptx.close()
			return s.named(f(ptx))
		})
	}
	for attempt := 1; ; attempt++ {
		err := s.phaseTxOnce(ctx, f)
		var pgErr *pgconn.PgError
		if attempt < 4 && errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") && ctx.Err() == nil {
			continue
		}
		return err
	}
}

func (s *SQL) phaseTxOnce(ctx context.Context, f func(tx *phaseTx) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.explain(fmt.Errorf("%s: %w", s.path, err))
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return s.explain(fmt.Errorf("%s: begin: %w", s.path, err))
	}
	defer tx.Rollback()
	ptx := &phaseTx{Tx: tx, conn: conn}
	defer ptx.close()
	if err := s.named(f(ptx)); err != nil {
		return s.explain(err)
	}
	if err := tx.Commit(); err != nil {
		return s.explain(fmt.Errorf("%s: commit: %w", s.path, err))
	}
	return nil
}

// named makes sure an error says which database it came from (the statements' own messages
// do not).
func (s *SQL) named(err error) error {
	if err == nil || strings.HasPrefix(err.Error(), s.path) {
		return err
	}
	return fmt.Errorf("%s: %w", s.path, err)
}
