package capture

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Store is what the capture worker reads and records.
type Store interface {
	CaseByID(ctx context.Context, id int64) (*watcher.Case, bool, error)
	SaveCapture(ctx context.Context, job *store.Job, c *watcher.Capture, arts []store.Artefact) error
	PurgeEvidence(ctx context.Context, cutoff time.Time) (int, int64, error)
}

// DefaultRetention is how long captures are kept when no report cites them.
const DefaultRetention = 180 * 24 * time.Hour

// Worker is the "capture" job handler: it captures the case's name whose latest site check
// showed the strongest content, and stores the capture and its artefacts.
type Worker struct {
	Store    Store
	Capturer *Capturer
	// Retention: captures older than this are purged (at most hourly, by the worker), unless
	// a report cites their case. Zero: DefaultRetention; negative: never.
	Retention time.Duration
	// Captured is told of each stored capture (concurrently).
	Captured func(c *watcher.Case, capture *watcher.Capture)

	mu         sync.Mutex
	lastPurged time.Time
}

// Handle captures the job's case.
func (w *Worker) Handle(ctx context.Context, job *store.Job) error {
	c, ok, err := w.Store.CaseByID(ctx, job.CaseID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("case %d (%s) is not in the store", job.CaseID, job.Registrable)
	}
	name := nameToCapture(c)
	capture, arts := w.Capturer.Capture(ctx, name)
	if err := ctx.Err(); err != nil {
		return err
	}
	capture.CaseID = c.ID
	kept := make([]store.Artefact, len(arts))
	for i, a := range arts {
		kept[i] = store.Artefact{SHA256: a.SHA256, MediaType: a.MediaType, Data: a.Data}
	}
	if err := w.Store.SaveCapture(context.WithoutCancel(ctx), job, capture, kept); err != nil {
		return err
	}
	if w.Captured != nil {
		w.Captured(c, capture)
	}
	w.purge(ctx)
	return nil
}

func (w *Worker) purge(ctx context.Context) {
	if w.Retention < 0 {
		return
	}
	keep := w.Retention
	if keep == 0 {
		keep = DefaultRetention
	}
	now := w.Capturer.now()
	w.mu.Lock()
	due := now.Sub(w.lastPurged) >= time.Hour
	if due {
		w.lastPurged = now
	}
	w.mu.Unlock()
	if due {
		// A failed purge is tried again next hour; the capture itself is stored.
		_, _, _ = w.Store.PurgeEvidence(ctx, now.Add(-keep))
	}
}

// nameToCapture is the case's name whose latest check showed the strongest content, else the
// registrable domain.
func nameToCapture(c *watcher.Case) string {
	var best *watcher.SiteEvidence
	for i := range c.Sites {
		s := &c.Sites[i]
		if s.Status == 0 {
			continue
		}
		if best == nil || rules.StrongerSite(s.Verdict, s.Score, best.Verdict, best.Score) {
			best = s
		}
	}
	if best != nil {
		return best.Name
	}
	return c.Registrable
}

// Kind is the capture as the runner's job kind (jobs.Capture).
func (w *Worker) Kind(workers int) queue.Kind { return queue.KindOf(jobs.Capture, w.Handle, workers) }
