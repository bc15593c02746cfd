package abuse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"os"
	"time"

	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Destination delivers one approved report (its draft as written to the outbox) and returns
// the receiver's answer. Every destination is one of these: mail to an abuse desk, a report
// API; adding one is a type here and an entry in the Deliverer's map.
type Destination interface {
	Deliver(ctx context.Context, r *store.AbuseReport, draft []byte) (reply string, err error)
}

// Mail delivers a report message over SMTP.
type Mail struct{ SMTP SMTP }

// Deliver sends the message to the recipient it was prepared for, and nobody else.
func (m *Mail) Deliver(ctx context.Context, r *store.AbuseReport, raw []byte) (string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("%s is not a readable message: %w", r.File, err)
	}
	from, errFrom := mail.ParseAddress(msg.Header.Get("From"))
	to, errTo := mail.ParseAddress(msg.Header.Get("To"))
	if errFrom != nil || errTo != nil {
		return "", fmt.Errorf("%s: From or To is not an address", r.File)
	}
	if to.Address != r.Recipient || msg.Header.Get("Message-Id") != r.MessageID {
		return "", fmt.Errorf("%s was changed after it was prepared (addressed to %s, prepared for %s)", r.File, to.Address, r.Recipient)
	}
	return deliver(ctx, m.SMTP, from.Address, to.Address, raw)
}

// ReportAPI posts a report to an HTTP report API (Netcraft's v3) through the address guard.
type ReportAPI struct {
	Client *http.Client
}

// Deliver posts the JSON draft to the report's recipient URL.
func (a *ReportAPI) Deliver(ctx context.Context, r *store.AbuseReport, body []byte) (string, error) {
	if !json.Valid(body) {
		return "", fmt.Errorf("%s is not JSON", r.File)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Recipient, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	text := oneLine(string(answer))
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s answered HTTP %d: %s", req.URL.Host, resp.StatusCode, text)
	}
	var ok struct {
		UUID string `json:"uuid"`
	}
	_ = json.Unmarshal(answer, &ok)
	if ok.UUID != "" {
		return fmt.Sprintf("HTTP %d, submission %s", resp.StatusCode, output.Printable(ok.UUID)), nil
	}
	return fmt.Sprintf("HTTP %d", resp.StatusCode), nil
}

// DeliverStore is what the Deliverer reads and records.
type DeliverStore interface {
	AbuseReportByID(ctx context.Context, id int64) (*store.AbuseReport, bool, error)
	MarkReportDelivered(ctx context.Context, job *store.Job, id int64, at time.Time, reply string) error
	CompleteJob(ctx context.Context, job *store.Job) error
}

// Deliverer is the "deliver" job handler: it sends the job's report to its destination once.
// The report is recorded as sent with the job's completion, in one transaction; a report that
// is no longer approved (withdrawn, or already sent by another worker) is not sent.
type Deliverer struct {
	Store        DeliverStore
	Destinations map[string]Destination // by store.Dest*
	Now          func() time.Time
	// Delivered is told of each sent report (concurrently).
	Delivered func(r *store.AbuseReport, reply string)
}

// ErrNoDestination is a report whose destination this process cannot deliver to.
var ErrNoDestination = errors.New("no way to deliver to this destination is configured")

// Handle delivers the report the job names.
func (d *Deliverer) Handle(ctx context.Context, job *store.Job) error {
	r, ok, err := d.Store.AbuseReportByID(ctx, job.Ref)
	if err != nil {
		return err
	}
	if !ok || r.State != store.ReportApproved {
		return d.Store.CompleteJob(ctx, job)
	}
	dest := d.Destinations[r.Destination]
	if dest == nil {
		return &queue.Retry{Reason: fmt.Sprintf("report %d to %s: %v", r.ID, r.Destination, ErrNoDestination), NoAttempt: true,
			At: time.Now().Add(time.Hour)}
	}
	raw, err := os.ReadFile(r.File)
	if err != nil {
		return fmt.Errorf("report %d: its draft: %w", r.ID, err)
	}
	reply, err := dest.Deliver(ctx, r, raw)
	if err != nil {
		return fmt.Errorf("report %d to %s: %w", r.ID, r.Recipient, err)
	}
	// Accepted: this must be recorded whatever happens to ctx now, or a stop right after the
	// server's answer would send the report again.
	now := time.Now().UTC()
	if d.Now != nil {
		now = d.Now()
	}
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := d.Store.MarkReportDelivered(recordCtx, job, r.ID, now, reply); err != nil {
		return fmt.Errorf("report %d was delivered but could not be recorded: %w", r.ID, err)
	}
	if d.Delivered != nil {
		d.Delivered(r, reply)
	}
	return nil
}

// Kind is the delivery as the runner's job kind (jobs.Deliver).
func (d *Deliverer) Kind(workers int) queue.Kind {
	return queue.KindOf(jobs.Deliver, d.Handle, workers)
}
