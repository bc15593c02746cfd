// Package notify tells people when something happens: a new case, a site check that confirms
// a clone or helpline page, a takedown, a site back up after one, a CT log that lags or whose
// answers are refused. A Scanner finds the events in the store and turns each into one
// notification per channel that a trigger sends it to; the "notify" job kind (Sender) delivers
// each through its Channel: a signed webhook, Slack, Microsoft Teams, an e-mail digest or a
// hook command. The store keeps each (channel, event) once, so a restart or a second process
// finding the same event sends nothing twice.
//
// What triggers what is configuration (Load; docs/notify.example.yaml).
package notify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/helpwatch/helpwatch/rules"
)

// Event kinds.
const (
	NewCase       = "new_case"       // a case first stored at or above a trigger's verdict
	SiteConfirmed = "site_confirmed" // a site check judged a case's site a clone or a helpline page
	TakenDown     = "taken_down"     // a reported name seen gone (NXDOMAIN, on hold, down or cleared)
	BackUp        = "back_up"        // a site check judged a scam page after a takedown
	LogLagging    = "log_lagging"    // a followed CT log lags more than log_lag_limit
	LogRefused    = "log_refused"    // a CT log's answers failed verification
)

// Kinds are the event kinds a trigger can name.
var Kinds = []string{NewCase, SiteConfirmed, TakenDown, BackUp, LogLagging, LogRefused}

// Channel types.
const (
	TypeWebhook = "webhook"
	TypeSlack   = "slack"
	TypeTeams   = "teams"
	TypeEmail   = "email"
	TypeCommand = "command"
)

// Config is a notification settings file.
type Config struct {
	// ConsoleURL is where `helpwatch serve` is reached; messages link to the case there.
	ConsoleURL string
	// LogLagLimit is the lag past which a followed CT log is lagging (default 10 minutes).
	LogLagLimit time.Duration
	Channels    []ChannelConfig
	Triggers    []Trigger
}

// ChannelConfig is one place notifications go.
type ChannelConfig struct {
	Name string
	Type string
	// URL is the endpoint (webhook, slack, teams); URLEnv names the environment variable
	// that holds it instead (Slack and Teams URLs are secrets).
	URL string
	// SecretEnv names the environment variable with the webhook's HMAC secret.
	SecretEnv string
	Secret    []byte `yaml:"-"`
	// Command is the hook program and its arguments; Timeout bounds one run (default 30 s).
	Command []string
	Timeout time.Duration
	// E-mail: the digest period ("hourly", "daily" or "event": one mail per event), the
	// addresses and the SMTP server (password from PasswordEnv, default
	// HELPWATCH_SMTP_PASSWORD).
	Every       string
	To, From    string
	SMTP        string
	StartTLS    bool
	User        string
	PasswordEnv string
	Password    string `yaml:"-"`
	// Line is where the channel is defined in its file.
	Line int
}

// Digest reports whether the channel collects events into periodic digests.
func (c *ChannelConfig) Digest() bool {
	return c.Type == TypeEmail && c.Every != "event"
}

// Period is the digest period.
func (c *ChannelConfig) Period() time.Duration {
	if c.Every == "hourly" {
		return time.Hour
	}
	return 24 * time.Hour
}

// Trigger sends events of some kinds, for some cases, to some channels.
type Trigger struct {
	Events []string
	// MinVerdict, Brands and MinScore narrow case events (new_case, site_confirmed,
	// taken_down, back_up); empty means any.
	MinVerdict rules.Verdict
	Brands     []string
	MinScore   int
	Channels   []string
	Line       int
}

// matches reports whether the trigger sends e.
func (t *Trigger) matches(e *Event) bool {
	if !slices.Contains(t.Events, e.Kind) {
		return false
	}
	c := e.Case
	if c == nil {
		return true
	}
	if t.MinVerdict != "" && rules.Verdict(c.Verdict).Rank() < t.MinVerdict.Rank() {
		return false
	}
	if t.MinScore > 0 && c.Score < t.MinScore {
		return false
	}
	if len(t.Brands) > 0 && !slices.ContainsFunc(t.Brands, func(b string) bool { return strings.EqualFold(b, c.Brand) }) {
		return false
	}
	return true
}

type fileConfig struct {
	ConsoleURL  string      `yaml:"console_url"`
	LogLagLimit string      `yaml:"log_lag_limit"`
	Channels    []yaml.Node `yaml:"channels"`
	Triggers    []yaml.Node `yaml:"triggers"`
}

type fileChannel struct {
	Name        string   `yaml:"name"`
	Type        string   `yaml:"type"`
	URL         string   `yaml:"url"`
	URLEnv      string   `yaml:"url_env"`
	SecretEnv   string   `yaml:"secret_env"`
	Command     []string `yaml:"command"`
	Timeout     string   `yaml:"timeout"`
	Every       string   `yaml:"every"`
	To          string   `yaml:"to"`
	From        string   `yaml:"from"`
	SMTP        string   `yaml:"smtp"`
	StartTLS    bool     `yaml:"starttls"`
	User        string   `yaml:"user"`
	PasswordEnv string   `yaml:"password_env"`
}

type fileTrigger struct {
	Events     []string `yaml:"events"`
	MinVerdict string   `yaml:"min_verdict"`
	Brands     []string `yaml:"brands"`
	MinScore   int      `yaml:"min_score"`
	Channels   []string `yaml:"channels"`
}

// Load reads a settings file. Secrets named by *_env are read from the environment (getenv;
// os.Getenv when nil) and a missing one is an error: a channel that cannot be delivered to is
// refused at start, not discovered at the first event. Every error names the file and line.
func Load(path string, getenv func(string) string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("notification settings: %w", err)
	}
	return Parse(path, raw, getenv)
}

// Parse is Load on the file's contents.
func Parse(path string, raw []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
	}
	var f fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s is empty: see docs/notify.example.yaml", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg := &Config{ConsoleURL: strings.TrimRight(f.ConsoleURL, "/"), LogLagLimit: 10 * time.Minute}
	if cfg.ConsoleURL != "" {
		if u, err := url.Parse(cfg.ConsoleURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("%s: console_url %q is not an http(s) URL", path, f.ConsoleURL)
		}
	}
	if f.LogLagLimit != "" {
		d, err := time.ParseDuration(f.LogLagLimit)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s: log_lag_limit %q is not a duration (10m, 1h)", path, f.LogLagLimit)
		}
		cfg.LogLagLimit = d
	}
	if len(f.Channels) == 0 {
		return nil, fmt.Errorf("%s: no channels: name at least one under channels:", path)
	}
	for i := range f.Channels {
		node := &f.Channels[i]
		var fc fileChannel
		if err := knownKeys(node, fc); err != nil {
			return nil, fail(node.Line, "channel: %v", err)
		}
		if err := node.Decode(&fc); err != nil {
			return nil, fail(node.Line, "channel: %v", err)
		}
		c, err := buildChannel(&fc, getenv)
		if err != nil {
			return nil, fail(node.Line, "channel %q: %v", fc.Name, err)
		}
		c.Line = node.Line
		if slices.ContainsFunc(cfg.Channels, func(o ChannelConfig) bool { return o.Name == c.Name }) {
			return nil, fail(node.Line, "channel %q is defined twice", c.Name)
		}
		cfg.Channels = append(cfg.Channels, *c)
	}
	if len(f.Triggers) == 0 {
		return nil, fmt.Errorf("%s: no triggers: nothing would be sent (see docs/notify.example.yaml)", path)
	}
	for i := range f.Triggers {
		node := &f.Triggers[i]
		var ft fileTrigger
		if err := knownKeys(node, ft); err != nil {
			return nil, fail(node.Line, "trigger: %v", err)
		}
		if err := node.Decode(&ft); err != nil {
			return nil, fail(node.Line, "trigger: %v", err)
		}
		t := Trigger{Events: ft.Events, Brands: ft.Brands, MinScore: ft.MinScore, Channels: ft.Channels, Line: node.Line}
		if len(t.Events) == 0 {
			return nil, fail(node.Line, "trigger has no events: name some of %s", strings.Join(Kinds, ", "))
		}
		for _, e := range t.Events {
			if !slices.Contains(Kinds, e) {
				return nil, fail(node.Line, "unknown event %q: the events are %s", e, strings.Join(Kinds, ", "))
			}
		}
		if ft.MinVerdict != "" {
			v, err := rules.ParseVerdict(ft.MinVerdict)
			if err != nil {
				return nil, fail(node.Line, "min_verdict: %v", err)
			}
			t.MinVerdict = v
		}
		if t.MinScore < 0 || t.MinScore > 100 {
			return nil, fail(node.Line, "min_score %d: a score is 0 to 100", t.MinScore)
		}
		if len(t.Channels) == 0 {
			return nil, fail(node.Line, "trigger has no channels")
		}
		for _, name := range t.Channels {
			if !slices.ContainsFunc(cfg.Channels, func(c ChannelConfig) bool { return c.Name == name }) {
				return nil, fail(node.Line, "channel %q is not defined under channels:", name)
			}
		}
		cfg.Triggers = append(cfg.Triggers, t)
	}
	return cfg, nil
}

func buildChannel(fc *fileChannel, getenv func(string) string) (*ChannelConfig, error) {
	c := &ChannelConfig{Name: fc.Name, Type: fc.Type, URL: fc.URL, SecretEnv: fc.SecretEnv, Command: fc.Command, Every: fc.Every,
		To: fc.To, From: fc.From, SMTP: fc.SMTP, StartTLS: fc.StartTLS, User: fc.User, PasswordEnv: fc.PasswordEnv, Timeout: 30 * time.Second}
	if c.Name == "" {
		return nil, errors.New("has no name")
	}
	if fc.URLEnv != "" {
		if c.URL != "" {
			return nil, errors.New("give url or url_env, not both")
		}
		if c.URL = getenv(fc.URLEnv); c.URL == "" {
			return nil, fmt.Errorf("url_env %s is empty or not set", fc.URLEnv)
		}
	}
	if fc.Timeout != "" {
		d, err := time.ParseDuration(fc.Timeout)
		if err != nil || d <= 0 || d > 10*time.Minute {
			return nil, fmt.Errorf("timeout %q: a duration up to 10m", fc.Timeout)
		}
		c.Timeout = d
	}
	needURL := func() error {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			// The URL may be a secret (Slack's, Teams'): it is not repeated.
			return errors.New("needs an http(s) URL (url or url_env)")
		}
		return nil
	}
	switch c.Type {
	case TypeWebhook:
		if err := needURL(); err != nil {
			return nil, err
		}
		if c.SecretEnv == "" {
			return nil, errors.New("a webhook is signed: name the environment variable with its secret in secret_env")
		}
		secret := getenv(c.SecretEnv)
		if len(secret) < 16 {
			return nil, fmt.Errorf("secret_env %s must hold a secret of at least 16 characters", c.SecretEnv)
		}
		c.Secret = []byte(secret)
	case TypeSlack, TypeTeams:
		if err := needURL(); err != nil {
			return nil, err
		}
	case TypeEmail:
		if c.Every == "" {
			c.Every = "daily"
		}
		if c.Every != "hourly" && c.Every != "daily" && c.Every != "event" {
			return nil, fmt.Errorf("every %q: hourly, daily or event", c.Every)
		}
		if !strings.Contains(c.To, "@") || !strings.Contains(c.From, "@") {
			return nil, errors.New("needs to: and from: addresses")
		}
		if c.SMTP == "" || !strings.Contains(c.SMTP, ":") {
			return nil, errors.New("needs smtp: HOST:PORT")
		}
		if c.PasswordEnv == "" {
			c.PasswordEnv = "HELPWATCH_SMTP_PASSWORD"
		}
		c.Password = getenv(c.PasswordEnv)
		if c.User != "" && c.Password == "" {
			return nil, fmt.Errorf("user given but %s is empty", c.PasswordEnv)
		}
	case TypeCommand:
		if len(c.Command) == 0 || c.Command[0] == "" {
			return nil, errors.New("needs command: [PROGRAM, ARG...]")
		}
	case "":
		return nil, errors.New("has no type: webhook, slack, teams, email or command")
	default:
		return nil, fmt.Errorf("type %q: webhook, slack, teams, email or command", c.Type)
	}
	if c.Type != TypeEmail && c.Every != "" {
		return nil, errors.New("every: is for e-mail digests only")
	}
	return c, nil
}

// Channel returns the named channel's settings.
func (c *Config) Channel(name string) (*ChannelConfig, bool) {
	for i := range c.Channels {
		if c.Channels[i].Name == name {
			return &c.Channels[i], true
		}
	}
	return nil, false
}

// knownKeys refuses a mapping key that shape (a struct with yaml tags) does not have: a
// misspelt setting must not be ignored silently (yaml's KnownFields does not reach nodes
// decoded on their own).
func knownKeys(node *yaml.Node, shape any) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("want a mapping (name: ..., type: ...), got %s", node.ShortTag())
	}
	t := reflect.TypeOf(shape)
	var known []string
	for i := range t.NumField() {
		known = append(known, strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0])
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if k := node.Content[i].Value; !slices.Contains(known, k) {
			return fmt.Errorf("line %d: unknown setting %q (known: %s)", node.Content[i].Line, k, strings.Join(known, ", "))
		}
	}
	return nil
}
