package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// SendStore is what the Sender reads and records.
type SendStore interface {
	NotificationByID(ctx context.Context, id int64) (*store.Notification, bool, error)
	DigestMembers(ctx context.Context, digestID int64) ([]store.Notification, error)
	MarkNotificationSent(ctx context.Context, job *store.Job, id int64, at time.Time, reply string) error
	CompleteJob(ctx context.Context, job *store.Job) error
}

// Sender is the "notify" job handler: it delivers the job's notification through its
// channel once. The notification is recorded as sent with the job's completion, in one
// transaction; a notification already sent is not sent again.
type Sender struct {
	Store    SendStore
	Channels map[string]Channel // by channel name
	Config   *Config
	Now      func() time.Time
	// Sent is told of each delivered notification (concurrently).
	Sent func(n *store.Notification, reply string)
}

// DeliveryID is a notification's id for receivers: stable across retries and processes.
func DeliveryID(n *store.Notification) string {
	sum := sha256.Sum256([]byte(n.Channel + "\x00" + n.Key))
	return hex.EncodeToString(sum[:12])
}

// Handle delivers the notification the job names.
func (s *Sender) Handle(ctx context.Context, job *store.Job) error {
	n, ok, err := s.Store.NotificationByID(ctx, job.Ref)
	if err != nil {
		return err
	}
	if !ok || n.State == store.NotifySent {
		return s.Store.CompleteJob(ctx, job)
	}
	ch := s.Channels[n.Channel]
	if ch == nil {
		return &queue.Retry{Reason: fmt.Sprintf("notification %d: channel %q is not in this process's notification settings", n.ID, n.Channel),
			NoAttempt: true, At: time.Now().Add(time.Hour)}
	}
	m := &Message{Delivery: DeliveryID(n)}
	if n.Event == "digest" {
		members, err := s.Store.DigestMembers(ctx, n.ID)
		if err != nil {
			return err
		}
		for _, member := range members {
			var e Event
			if err := json.Unmarshal(member.Payload, &e); err != nil {
				return fmt.Errorf("notification %d: its event: %w", member.ID, err)
			}
			m.Digest = append(m.Digest, e)
		}
		m.Period = "daily"
		if c, ok := s.Config.Channel(n.Channel); ok {
			m.Period = c.Every
		}
	} else {
		m.Event = &Event{}
		if err := json.Unmarshal(n.Payload, m.Event); err != nil {
			return fmt.Errorf("notification %d: its event: %w", n.ID, err)
		}
	}
	reply, err := ch.Send(ctx, m)
	if err != nil {
		return fmt.Errorf("notification %d (%s) to %s: %w", n.ID, n.Event, n.Channel, err)
	}
	// Delivered: recorded whatever happens to ctx now, or a stop right after the receiver's
	// answer would send it again.
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now()
	}
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.Store.MarkNotificationSent(recordCtx, job, n.ID, now, reply); err != nil {
		return fmt.Errorf("notification %d was delivered but could not be recorded: %w", n.ID, err)
	}
	if s.Sent != nil {
		s.Sent(n, reply)
	}
	return nil
}

// Kind is the sender as the runner's job kind (jobs.Notify).
func (s *Sender) Kind(workers int) queue.Kind {
	return queue.KindOf(jobs.Notify, s.Handle, workers)
}
