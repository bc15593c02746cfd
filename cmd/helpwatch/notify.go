package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/notify"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// notifyFlags are --notify and --console-url of the commands that work the job queue.
type notifyFlags struct {
	file       *string
	consoleURL *string
}

func addNotifyFlags(fs *flag.FlagSet) *notifyFlags {
	return &notifyFlags{
		file:       fs.String("notify", "", "notification settings (YAML, see docs/notify.example.yaml): look for events and deliver them to webhooks, Slack, Teams, e-mail digests or hook commands"),
		consoleURL: fs.String("console-url", "", "the console's address (https://host:port), for links in notifications (overrides console_url in --notify)"),
	}
}

// load reads the settings (nil without --notify).
func (f *notifyFlags) load() (*notify.Config, error) {
	if *f.file == "" {
		if *f.consoleURL != "" {
			return nil, usageError("--console-url is for notifications: give --notify FILE too")
		}
		return nil, nil
	}
	cfg, err := notify.Load(*f.file, nil)
	if err != nil {
		return nil, err
	}
	if *f.consoleURL != "" {
		cfg.ConsoleURL = strings.TrimRight(*f.consoleURL, "/")
	}
	return cfg, nil
}

// notifySender builds the "notify" job handler over cfg's channels; every HTTP request goes
// through the address guard.
func notifySender(db *store.SQL, cfg *notify.Config, guard *netguard.Guard, log *slog.Logger) *notify.Sender {
	client := guard.HTTPClient(30*time.Second, 0)
	chans := map[string]notify.Channel{}
	for i := range cfg.Channels {
		chans[cfg.Channels[i].Name] = notify.NewChannel(&cfg.Channels[i], client)
	}
	return &notify.Sender{Store: db, Channels: chans, Config: cfg, Sent: func(n *store.Notification, reply string) {
		log.Info("notified", "channel", n.Channel, "event", n.Event, "reply", output.Printable(reply))
	}}
}

const notifyUsage = `usage: helpwatch notify check FILE
       helpwatch notify test FILE CHANNEL [allow flags]
       helpwatch notify list [--db PATH|URL] [--channel NAME] [--limit 50]

Notifications tell people when something happens: a new case at or above a verdict, a site check
that confirms a clone or helpline page, a takedown, a site back up after one, a CT log that lags or
whose answers fail verification. A settings file (docs/notify.example.yaml) names the channels
(signed webhook, Slack, Microsoft Teams, e-mail digest, hook command) and the triggers that send
events to them; 'watch' and 'work' given --notify FILE look for events and deliver them as jobs of
the queue, each once, retried with backoff ('helpwatch jobs' shows what failed and why).

check   reads the file and says what it would send where (secrets come from the environment).
test    sends one made-up event to CHANNEL now, through the address guard.
list    the latest notifications with their state and the receiver's answer.`

func runNotify(args []string, stdout, stderr io.Writer) error {
	if done, err := subcommandHelp(args, notifyUsage, stderr, "notify", "check, test or list"); done {
		return err
	}
	sub := args[0]
	fs := newFlagSet("notify "+sub, notifyUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	channel := fs.String("channel", "", "list: only this channel")
	limit := fs.Int("limit", 50, "list: at most this many")
	gf := addGuardFlags(fs)
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	switch sub {
	case "check":
		if len(rest) != 1 {
			return usageError("notify check FILE")
		}
		cfg, err := notify.Load(rest[0], nil)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHANNEL\tTYPE\tDELIVERY")
		for _, c := range cfg.Channels {
			how := "each event as it is found"
			if c.Digest() {
				how = c.Every + " digest"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Type, how)
		}
		tw.Flush()
		for i, t := range cfg.Triggers {
			cond := []string{}
			if t.MinVerdict != "" {
				cond = append(cond, "verdict ≥ "+string(t.MinVerdict))
			}
			if t.MinScore > 0 {
				cond = append(cond, fmt.Sprintf("score ≥ %d", t.MinScore))
			}
			if len(t.Brands) > 0 {
				cond = append(cond, "brands "+strings.Join(t.Brands, ","))
			}
			if len(cond) == 0 {
				cond = append(cond, "every case")
			}
			fmt.Fprintf(stdout, "trigger %d (line %d): %s (%s) -> %s\n", i+1, t.Line, strings.Join(t.Events, ", "), strings.Join(cond, "; "), strings.Join(t.Channels, ", "))
		}
		if cfg.ConsoleURL == "" {
			fmt.Fprintln(stdout, "no console_url: messages will not link to the case (set console_url or --console-url)")
		}
		return nil
	case "test":
		if len(rest) != 2 {
			return usageError("notify test FILE CHANNEL")
		}
		cfg, err := notify.Load(rest[0], nil)
		if err != nil {
			return err
		}
		c, ok := cfg.Channel(rest[1])
		if !ok {
			return usageError("channel %q is not in %s", rest[1], rest[0])
		}
		guard, err := gf.build()
		if err != nil {
			return err
		}
		ctx, stop := watchContext()
		defer stop()
		e := notify.TestEvent(cfg.ConsoleURL, time.Now())
		m := &notify.Message{Delivery: "test-" + time.Now().UTC().Format("20060102T150405"), Event: &e}
		if c.Digest() {
			m.Event, m.Digest, m.Period = nil, []notify.Event{e}, c.Every
		}
		reply, err := notify.NewChannel(c, guard.HTTPClient(30*time.Second, 0)).Send(ctx, m)
		if err != nil {
			return fmt.Errorf("channel %s: %w", c.Name, err)
		}
		fmt.Fprintf(stdout, "sent a test event to %s: %s\n", c.Name, output.Printable(reply))
		return nil
	case "list":
		if len(rest) > 0 {
			return usageError("unexpected argument %q", rest[0])
		}
		db, err := openExistingDB(*dbPath)
		if err != nil {
			return err
		}
		defer db.Close()
		ns, err := db.Notifications(context.Background(), *channel, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MADE UTC\tCHANNEL\tEVENT\tSTATE\tWHAT\tANSWER OR LAST ERROR")
		for _, n := range ns {
			state, answer := n.State, n.Reply
			if n.State == store.NotifyQueued && n.JobState != "" {
				state = n.JobState // queued, running or failed: the delivery's
				answer = n.JobError
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Created.UTC().Format("2006-01-02 15:04"), output.Printable(n.Channel), n.Event, state,
				output.Printable(clipText(n.Key, 48)), output.Printable(clipText(answer, 60)))
		}
		tw.Flush()
		if len(ns) == 0 {
			fmt.Fprintln(stderr, "no notifications yet (watch or work with --notify FILE makes them)")
		}
		return nil
	}
	return usageError("notify %q: check, test or list", sub)
}
