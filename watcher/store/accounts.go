package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Console roles, weakest first: a viewer reads, an analyst also labels, approves and holds
// drafts and asks for re-checks, an admin also manages accounts.
const (
	RoleViewer  = "viewer"
	RoleAnalyst = "analyst"
	RoleAdmin   = "admin"
)

// RoleRank orders roles; an unknown role ranks below every known one.
func RoleRank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleAnalyst:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// User is a console account. PasswordHash is a PHC string (argon2id), never the password.
type User struct {
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	Disabled     bool      `json:"disabled"`
	CreatedAt    time.Time `json:"created_at"`
	ChangedAt    time.Time `json:"changed_at"`
	PasswordHash string    `json:"-"`
}

// ErrUserExists and ErrNoUser are the account errors a user can cause.
var (
	ErrUserExists = errors.New("an account of that name exists")
	ErrNoUser     = errors.New("no account of that name")
)

// AddUser creates an account; an existing name is ErrUserExists.
func (s *SQL) AddUser(ctx context.Context, u User) error {
	if RoleRank(u.Role) == 0 {
		return fmt.Errorf("unknown role %q (want viewer, analyst or admin)", u.Role)
	}
	now := s.now().UnixMilli()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE name = $1`, u.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%q: %w", u.Name, ErrUserExists)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO users (name, role, password_hash, disabled, created_at, changed_at) VALUES ($1, $2, $3, 0, $4, $4)`,
			u.Name, u.Role, u.PasswordHash, now)
		return err
	})
}

const userColumns = `name, role, password_hash, disabled, created_at, changed_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var disabled, created, changed int64
	err := row.Scan(&u.Name, &u.Role, &u.PasswordHash, &disabled, &created, &changed)
	u.Disabled, u.CreatedAt, u.ChangedAt = disabled != 0, fromMillis(created), fromMillis(changed)
	return u, err
}

// UserByName returns an account, disabled ones included.
func (s *SQL) UserByName(ctx context.Context, name string) (*User, bool, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &u, true, nil
}

// Users lists the accounts by name.
func (s *SQL) Users(ctx context.Context) ([]User, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetUserDisabled disables or enables an account; disabling ends its sessions.
func (s *SQL) SetUserDisabled(ctx context.Context, name string, disabled bool) error {
	flag := 0
	if disabled {
		flag = 1
	}
	return s.changeUser(ctx, name, `UPDATE users SET disabled = $1, changed_at = $2 WHERE name = $3`, flag, s.now().UnixMilli(), name)
}

// SetUserPassword replaces an account's password hash and ends its sessions.
func (s *SQL) SetUserPassword(ctx context.Context, name, hash string) error {
	return s.changeUser(ctx, name, `UPDATE users SET password_hash = $1, changed_at = $2 WHERE name = $3`, hash, s.now().UnixMilli(), name)
}

func (s *SQL) changeUser(ctx context.Context, name, query string, args ...any) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%q: %w", name, ErrNoUser)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_name = $1`, name)
		return err
	})
}

// CreateSession keeps a session by the hash of its token (the token itself is only in the
// user's cookie: a copy of the database opens no session).
func (s *SQL) CreateSession(ctx context.Context, tokenHash, user string, expires time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// Expired sessions go as new ones come.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < $1`, s.now().UnixMilli()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_name, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
			tokenHash, user, s.now().UnixMilli(), expires.UnixMilli())
		return err
	})
}

// SessionUser returns the account of a live session: not expired at now, its account enabled.
func (s *SQL) SessionUser(ctx context.Context, tokenHash string, now time.Time) (*User, bool, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT u.name, u.role, u.password_hash, u.disabled, u.created_at, u.changed_at
		FROM sessions x JOIN users u ON u.name = x.user_name WHERE x.token_hash = $1 AND x.expires_at > $2 AND u.disabled = 0`,
		tokenHash, now.UnixMilli()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &u, true, nil
}

// DeleteSession ends a session.
func (s *SQL) DeleteSession(ctx context.Context, tokenHash string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
		return err
	})
}

// AuditEntry is one change made by a person: who, what, to which case or account, and from
// which address.
type AuditEntry struct {
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Target  string    `json:"target,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Address string    `json:"address,omitempty"`
}

// Audit appends to the audit log.
func (s *SQL) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, action, target, detail, address) VALUES ($1, $2, $3, $4, $5, $6)`,
			e.At.UnixMilli(), e.Actor, e.Action, e.Target, e.Detail, e.Address)
		return err
	})
}

// AuditLog returns the latest entries, newest first: of one target, or of all when target is
// empty.
func (s *SQL) AuditLog(ctx context.Context, target string, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	query := `SELECT at, actor, action, target, detail, address FROM audit_log`
	var args []any
	if target != "" {
		query += ` WHERE target = $1`
		args = append(args, target)
	}
	query += fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT %d`, limit)
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Address); err != nil {
			return nil, err
		}
		e.At = fromMillis(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
