// Package jobs is the registry of background job kinds: one Spec value per kind says what the
// store queues and when, how many attempts it gets, what it waits for, how long an attempt may
// take, how it backs off and when it runs again. The store, the runner, `work`, `watch` and the
// metrics loop over All instead of naming kinds.
//
// The handlers live with the packages that do the work (enrich.Worker, site.Worker), each of
// which turns its Spec into a queue.Kind; the Specs live here, apart from them, because the
// store must know every kind (a case is queued for all of them when it is made, whichever
// process makes it) without depending on the packages that handle them.
//
// Adding a kind: a Spec here, added to All, and a handler in the package that owns the work.
package jobs

import "time"

// Spec describes one kind of job.
type Spec struct {
	// Name is the kind as stored in jobs.kind and named by `work --kinds`.
	Name string
	// Summary says what the kind does, for --help and the console.
	Summary string
	// MaxAttempts bounds the counted attempts; the last failure leaves the job failed.
	MaxAttempts int
	// After names a kind this one waits for: a job is not claimed while its case has a
	// pending job of After (a site check waits for the enrichment).
	After string
	// OnNewName queues a job of this kind when a case is created or gets a new name (at most
	// one pending per case and kind).
	OnNewName bool
	// Timeout is one attempt's deadline.
	Timeout time.Duration
	// Backoff is the wait before the first retry; it doubles per attempt up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// Rechecks schedules the same work again after a run that found nothing yet, by run
	// number (0: after the first run); empty for kinds that run once.
	Rechecks []time.Duration
	// Workers is the default number of concurrent jobs per process.
	Workers int
	// WorkedBy names the command that works this kind when it is not watch and work (the
	// deliveries need the reporter and the mail settings that only `abuse send` is given).
	WorkedBy string
}

// Background reports whether watch and work run this kind.
func (k Spec) Background() bool { return k.WorkedBy == "" }

// Enrich looks a case up: DNS of its names, registration from RDAP or WHOIS.
var Enrich = Spec{
	Name: "enrich", Summary: "DNS, RDAP and WHOIS lookups of a case",
	MaxAttempts: 6, OnNewName: true,
	Timeout: 10 * time.Minute, Backoff: 15 * time.Minute, MaxBackoff: 6 * time.Hour,
	Workers: 16,
}

// Site checks what a case's sites show, and again while nothing is up.
var Site = Spec{
	Name: "site", Summary: "fetch a case's sites and judge what they show",
	MaxAttempts: 4, After: "enrich", OnNewName: true,
	Timeout: 3 * time.Minute, Backoff: 10 * time.Minute, MaxBackoff: 6 * time.Hour,
	Rechecks: []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour},
	Workers:  8,
}

// Capture keeps the evidence of a site that showed content: a screenshot and the page of each
// visitor profile, the redirects, headers and certificate, and the hosting network. The site
// check queues it (it is not queued for every new name: most names never serve a page).
var Capture = Spec{
	Name: "capture", Summary: "screenshot and keep the pages of a site that showed content, per visitor profile",
	MaxAttempts: 3, After: "site",
	Timeout: 3 * time.Minute, Backoff: 10 * time.Minute, MaxBackoff: 6 * time.Hour,
	// Each capture runs a Chromium: two at a time is what two cores carry.
	Workers: 2,
}

// Deliver sends one approved abuse report to its destination (a mail to an abuse desk, a
// report API). Its jobs name the report (Job.Ref); a case has one per destination.
var Deliver = Spec{
	Name: "deliver", Summary: "send an approved abuse report to its abuse desk or report API",
	MaxAttempts: 8,
	Timeout:     2 * time.Minute, Backoff: 5 * time.Minute, MaxBackoff: 6 * time.Hour,
	Workers:  2,
	WorkedBy: "abuse send",
}

// Notify delivers one notification (an event, or a digest of events) to one channel: a
// webhook, Slack, Teams, an e-mail digest or a hook command. Its jobs name the notification
// (Job.Ref). Only a process given the notification settings (--notify) works them.
var Notify = Spec{
	Name: "notify", Summary: "send a notification to a channel (webhook, Slack, Teams, e-mail digest, hook command)",
	MaxAttempts: 6,
	Timeout:     2 * time.Minute, Backoff: 30 * time.Second, MaxBackoff: 30 * time.Minute,
	Workers: 4,
}

// All is every kind, in the order they run for a new case.
var All = []Spec{Enrich, Site, Capture, Deliver, Notify}

// Names are the names of All.
func Names() []string {
	out := make([]string, len(All))
	for i, k := range All {
		out[i] = k.Name
	}
	return out
}

// Lookup returns the kind named name.
func Lookup(name string) (Spec, bool) {
	for _, k := range All {
		if k.Name == name {
			return k, true
		}
	}
	return Spec{}, false
}
