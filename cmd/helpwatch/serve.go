package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/helpwatch/helpwatch/watcher/abuse"
	"github.com/helpwatch/helpwatch/watcher/console"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const serveUsage = `usage: helpwatch serve [--db PATH|URL] [--addr 127.0.0.1:8080] [--tls-cert FILE --tls-key FILE] [--trusted-proxy CIDR,...] [--identity-header NAME]

Serves the analysts' console over the findings database (SQLite or PostgreSQL): the queue of
cases with filters, a page per case with its evidence and timeline, labels, approving or
holding abuse drafts, re-checking a site, campaigns and the pipeline's status.

Every page needs an account: create the first with 'helpwatch users add NAME --role admin'
(there is no default account and no default password). Roles: viewer reads, analyst also
labels, approves and re-checks, admin also manages accounts (with 'helpwatch users').

Serve over TLS with --tls-cert and --tls-key, or behind a reverse proxy that does: name its
address with --trusted-proxy (only it may set X-Forwarded-For), and with --identity-header the
header in which it passes the signed-in account of a single sign-on (the account must exist).
Without TLS the console listens on loopback only unless --addr names another address.`

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", serveUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	certFile := fs.String("tls-cert", "", "TLS certificate (PEM) to serve HTTPS with")
	keyFile := fs.String("tls-key", "", "its private key (PEM)")
	proxies := fs.String("trusted-proxy", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For (and identity header) are believed")
	identity := fs.String("identity-header", "", "header in which a trusted proxy names the signed-in account (single sign-on)")
	ttl := fs.Duration("session", 12*time.Hour, "how long a sign-in lasts")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	if (*certFile == "") != (*keyFile == "") {
		return usageError("--tls-cert and --tls-key go together")
	}
	var trusted []netip.Prefix
	for _, p := range strings.Split(*proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			a, err := netip.ParseAddr(p)
			if err != nil {
				return usageError("--trusted-proxy %q: not an address or CIDR", p)
			}
			p = netip.PrefixFrom(a, a.BitLen()).String()
		}
		pre, err := netip.ParsePrefix(p)
		if err != nil {
			return usageError("--trusted-proxy %q: not an address or CIDR", p)
		}
		trusted = append(trusted, pre.Masked())
	}
	if *identity != "" && len(trusted) == 0 {
		return usageError("--identity-header needs --trusted-proxy: only a proxy may say who is signed in")
	}
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	users, err := db.Users(context.Background())
	if err != nil {
		return err
	}
	if len(users) == 0 {
		return fmt.Errorf("%s has no console account: create one first with '%s users add NAME --role admin --db %s' (the password is read from standard input)",
			dbName(*dbPath), selfCommand(), dbName(*dbPath))
	}
	log := newLogger(stderr)
	srv := &console.Server{Store: db, Log: log, TLS: *certFile != "", TrustedProxies: trusted, IdentityHeader: *identity,
		SessionTTL: *ttl, Deliverable: abuse.Delivered}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: listening on %s: %w", *addr, err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	ctx, stop := watchContext()
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(shut)
	}()
	scheme := "http"
	if *certFile != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "console on %s://%s (db %s, %d account(s)); stop with Ctrl-C\n", scheme, ln.Addr(), dbName(*dbPath), len(users))
	if *certFile != "" {
		err = hs.ServeTLS(ln, *certFile, *keyFile)
	} else {
		err = hs.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

const usersUsage = `usage: helpwatch users add NAME --role viewer|analyst|admin [--db PATH|URL]
       helpwatch users passwd NAME
       helpwatch users disable|enable NAME
       helpwatch users list

The console's accounts. add and passwd read the password from standard input (the first line;
at least 12 characters), so that it is never on a command line or in the shell's history:
    helpwatch users add jane --role analyst < password-file
Disabling an account, or changing its password, ends its sessions. Every change is written to
the audit log with who made it.`

func runUsers(args []string, stdout, stderr io.Writer) error {
	if done, err := subcommandHelp(args, usersUsage, stderr, "users", "add, passwd, disable, enable or list"); done {
		return err
	}
	sub := args[0]
	fs := newFlagSet("users "+sub, usersUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	role := fs.String("role", "", "add: the account's role (viewer, analyst or admin)")
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	ctx := context.Background()
	needName := func() (string, error) {
		if len(rest) != 1 {
			return "", usageError("users %s needs one account name", sub)
		}
		name := rest[0]
		if len(name) > 64 || name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || r > 0x7e }) {
			return "", usageError("account name %q: 1 to 64 printable ASCII characters without spaces", output.Printable(name))
		}
		return name, nil
	}
	switch sub {
	case "list":
		db, err := openExistingDB(*dbPath)
		if err != nil {
			return err
		}
		defer db.Close()
		users, err := db.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tCREATED\tCHANGED")
		for _, u := range users {
			state := "enabled"
			if u.Disabled {
				state = "disabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", output.Printable(u.Name), u.Role, state, u.CreatedAt.Format(time.DateOnly), u.ChangedAt.Format(time.DateOnly))
		}
		return tw.Flush()
	case "add", "passwd":
		name, err := needName()
		if err != nil {
			return err
		}
		if sub == "add" && store.RoleRank(*role) == 0 {
			return usageError("users add needs --role viewer, analyst or admin")
		}
		password, err := readPassword(os.Stdin)
		if err != nil {
			return err
		}
		hash, err := console.HashPassword(password)
		if err != nil {
			return usageError("%v", err)
		}
		db, err := openDB(*dbPath, dbOpen{mustExist: sub == "passwd"})
		if err != nil {
			return err
		}
		defer db.Close()
		if sub == "add" {
			err = db.AddUser(ctx, store.User{Name: name, Role: *role, PasswordHash: hash})
		} else {
			err = db.SetUserPassword(ctx, name, hash)
		}
		if err != nil {
			return err
		}
		if err := db.Audit(ctx, store.AuditEntry{Actor: actor(), Action: "users " + sub, Target: "user:" + name, Detail: *role}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: account %s %s\n", dbName(*dbPath), name, map[string]string{"add": "added as " + *role, "passwd": "has a new password; its sessions ended"}[sub])
		return nil
	case "disable", "enable":
		name, err := needName()
		if err != nil {
			return err
		}
		db, err := openExistingDB(*dbPath)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.SetUserDisabled(ctx, name, sub == "disable"); err != nil {
			return err
		}
		if err := db.Audit(ctx, store.AuditEntry{Actor: actor(), Action: "users " + sub, Target: "user:" + name}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: account %s %sd\n", dbName(*dbPath), name, sub)
		return nil
	}
	return usageError("users %q: the subcommands are add, passwd, disable, enable and list", sub)
}

// readPassword reads the first line of r.
func readPassword(r io.Reader) (string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 4096))
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", err
		}
		return "", usageError("no password on standard input (give it as the first line)")
	}
	return strings.TrimRight(sc.Text(), "\r"), nil
}
