package abuse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher/store"
)

// DefaultActionDays is how many business days a desk has before a report is followed up:
// ICANN's advisory on the registrar agreement gives two business days as an example for
// phishing on a new domain.
const DefaultActionDays = 2

// AddBusinessDays is t plus n working days (Saturdays and Sundays do not count).
func AddBusinessDays(t time.Time, n int) time.Time {
	for n > 0 {
		t = t.Add(24 * time.Hour)
		if wd := t.UTC().Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	return t
}

// LadderStore is what the ladder reads and records; the store implements it.
type LadderStore interface {
	AbuseReports(ctx context.Context, caseID int64) ([]*store.AbuseReport, error)
	AbuseReportByID(ctx context.Context, id int64) (*store.AbuseReport, bool, error)
	ReportEvents(ctx context.Context, id int64) ([]store.ReportEvent, error)
	SetReportState(ctx context.Context, id int64, state, actor, note string, at time.Time, deliver bool) error
	RecordAbuseReport(ctx context.Context, r *store.AbuseReport) error
}

// Approve approves drafts: each is queued for delivery (or, for a destination submitted by
// hand, left for the analyst to submit and record with Ack).
func Approve(ctx context.Context, st LadderStore, ids []int64, actor, note string, now time.Time) error {
	for _, id := range ids {
		r, ok, err := st.AbuseReportByID(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("report %d does not exist (abuse status lists them)", id)
		}
		if err := st.SetReportState(ctx, id, store.ReportApproved, actor, note, now, Delivered(r.Destination)); err != nil {
			return err
		}
	}
	return nil
}

// AckStates are the answers Ack records.
var AckStates = []string{store.ReportSent, store.ReportAcknowledged, store.ReportRefused, store.ReportActioned, store.ReportWithdrawn}

// Ack records a desk's answer to a report (or that a packet was submitted by hand).
func Ack(ctx context.Context, st LadderStore, id int64, state, actor, note string, now time.Time) error {
	ok := false
	for _, s := range AckStates {
		ok = ok || s == state
	}
	if !ok {
		return fmt.Errorf("--state %q: use one of %s", state, strings.Join(AckStates, ", "))
	}
	return st.SetReportState(ctx, id, state, actor, note, now, false)
}

// Rung is one report with its ladder and what is due next.
type Rung struct {
	Report *store.AbuseReport
	Events []store.ReportEvent
	// Due says what is due: a follow-up, a complaint, nothing ("").
	Due   string
	DueAt time.Time
}

// open says a report still waits for its desk to act.
func open(r *store.AbuseReport) bool {
	return r.State == store.ReportSent || r.State == store.ReportAcknowledged || r.State == store.ReportNoAnswer
}

// Ladder lists every report with its steps, and says which follow-ups and complaints are due
// after days business days without action.
func Ladder(ctx context.Context, st LadderStore, days int, now time.Time) ([]Rung, error) {
	all, err := st.AbuseReports(ctx, 0)
	if err != nil {
		return nil, err
	}
	followed := map[int64][]*store.AbuseReport{}
	for _, r := range all {
		if r.FollowUpOf != 0 {
			followed[r.FollowUpOf] = append(followed[r.FollowUpOf], r)
		}
	}
	var out []Rung
	for _, r := range all {
		ev, err := st.ReportEvents(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		g := Rung{Report: r, Events: ev}
		if r.Kind == store.KindReport && (r.Destination == store.DestRegistrar || r.Destination == store.DestHosting) && open(r) {
			var follow, complaint *store.AbuseReport
			for _, f := range followed[r.ID] {
				switch f.Kind {
				case store.KindFollowUp:
					follow = f
				case store.KindComplaint:
					complaint = f
				}
			}
			switch {
			case follow == nil:
				g.DueAt = AddBusinessDays(r.SentAt, days)
				if !now.Before(g.DueAt) {
					g.Due = "follow-up"
				}
			case complaint == nil && r.Destination == store.DestRegistrar && gTLD(r.Names) && !follow.SentAt.IsZero():
				g.DueAt = AddBusinessDays(follow.SentAt, days)
				if !now.Before(g.DueAt) {
					g.Due = "icann-complaint"
				}
			}
		}
		out = append(out, g)
	}
	return out, nil
}

// gTLD says the names are under generic TLDs (ICANN's compliance covers their registrars;
// country-code TLDs have their own rules).
func gTLD(names []string) bool {
	for _, n := range names {
		tld := n[strings.LastIndexByte(n, '.')+1:]
		if len(tld) == 2 {
			return false
		}
	}
	return len(names) > 0
}

// FollowUps drafts what the ladder says is due: a follow-up message to the desk that did not
// act (the original attached, the original marked no-answer), and for a gTLD registrar that
// did not act on the follow-up either, an ICANN Compliance complaint packet with the proof of
// both reports and of every answer. The drafts wait for approval like any report.
func FollowUps(ctx context.Context, st LadderStore, rep *Reporter, outbox string, days int, actor string, now time.Time) ([]*store.AbuseReport, error) {
	rungs, err := Ladder(ctx, st, days, now)
	if err != nil {
		return nil, err
	}
	byID := map[int64]Rung{}
	for _, g := range rungs {
		byID[g.Report.ID] = g
	}
	var out []*store.AbuseReport
	for _, g := range rungs {
		r := g.Report
		switch g.Due {
		case "follow-up":
			raw, msgID, err := followUpMessage(rep, r, now)
			if err != nil {
				return out, err
			}
			f := &store.AbuseReport{MessageID: msgID, CaseID: r.CaseID, Destination: r.Destination, Kind: store.KindFollowUp, Registrar: r.Registrar,
				Recipient: r.Recipient, AbuseType: r.AbuseType, FollowUpOf: r.ID, PreparedAt: now, Names: r.Names}
			f.File = filepath.Join(outbox, fmt.Sprintf("%s-%s-%s-follow-up-%d.eml", now.Format("20060102"), slug(strings.Join(r.Names, "-"), ""), r.Destination, r.ID))
			if err := writeFileAtomic(f.File, raw); err != nil {
				return out, err
			}
			if err := st.RecordAbuseReport(ctx, f); err != nil {
				os.Remove(f.File)
				return out, err
			}
			if r.State == store.ReportSent {
				note := fmt.Sprintf("no action %d business days after it was sent", days)
				if err := st.SetReportState(ctx, r.ID, store.ReportNoAnswer, actor, note, now, false); err != nil {
					return out, err
				}
			}
			out = append(out, f)
		case "icann-complaint":
			text, err := complaintPacket(ctx, st, rep, g, rungs, days, now)
			if err != nil {
				return out, err
			}
			f := &store.AbuseReport{MessageID: "icann-" + fmt.Sprint(r.ID), CaseID: r.CaseID, Destination: store.DestICANN, Kind: store.KindComplaint,
				Registrar: "ICANN Contractual Compliance", Recipient: "https://www.icann.org/compliance/complaint", AbuseType: r.AbuseType,
				FollowUpOf: r.ID, PreparedAt: now, Names: r.Names}
			f.File = filepath.Join(outbox, fmt.Sprintf("%s-%s-icann-complaint-%d.txt", now.Format("20060102"), slug(strings.Join(r.Names, "-"), ""), r.ID))
			if err := writeFileAtomic(f.File, []byte(text)); err != nil {
				return out, err
			}
			if err := st.RecordAbuseReport(ctx, f); err != nil {
				os.Remove(f.File)
				return out, err
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// followUpMessage asks the desk again, with the original report attached.
func followUpMessage(rep *Reporter, r *store.AbuseReport, now time.Time) ([]byte, string, error) {
	original, err := os.ReadFile(r.File)
	if err != nil {
		return nil, "", fmt.Errorf("report %d: its draft: %w", r.ID, err)
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("follow-up %d %s", r.ID, now.Format(time.RFC3339Nano))))
	fromDomain := rep.Email[strings.LastIndexByte(rep.Email, '@')+1:]
	msgID := "<helpwatch." + hex.EncodeToString(sum[:16]) + "@" + fromDomain + ">"
	subject := "Follow-up: "
	if m, err := mail.ReadMessage(bytes.NewReader(original)); err == nil {
		if dec, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err == nil {
			subject += oneLine(dec)
		}
	}
	var body strings.Builder
	fmt.Fprintf(&body, "Dear %s abuse team,\n\n", oneLine(orUnknown(r.Registrar)))
	fmt.Fprintf(&body, "On %s we reported %s to you (message %s). We have not seen the abuse stopped, and the site is still up as far as we can see.\n",
		r.SentAt.UTC().Format(utcFormat), Defang(strings.Join(r.Names, ", ")), r.MessageID)
	body.WriteString("We ask you again to act on it; the original report, with its evidence, is attached.\n\n")
	fmt.Fprintf(&body, "%s <%s>\n", oneLine(rep.Name), rep.Email)
	var msg bytes.Buffer
	mw := multipart.NewWriter(&msg)
	from := mail.Address{Name: oneLine(rep.Name), Address: rep.Email}
	to := mail.Address{Name: oneLine(orUnknown(r.Registrar)) + " abuse", Address: r.Recipient}
	for _, kv := range [][2]string{
		{"From", from.String()}, {"To", to.String()}, {"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", now.Format(time.RFC1123Z)}, {"Message-ID", msgID}, {"In-Reply-To", r.MessageID}, {"References", r.MessageID},
		{"MIME-Version", "1.0"},
	} {
		fmt.Fprintf(&msg, "%s: %s\r\n", kv[0], kv[1])
	}
	fmt.Fprintf(&msg, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", mw.Boundary())
	part, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}})
	if err != nil {
		return nil, "", err
	}
	part.Write([]byte(strings.ReplaceAll(body.String(), "\n", "\r\n")))
	part, err = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"message/rfc822"}, "Content-Disposition": {"attachment; filename=\"original-report.eml\""}})
	if err != nil {
		return nil, "", err
	}
	part.Write(original)
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return msg.Bytes(), msgID, nil
}

// complaintPacket is the text of an ICANN Compliance abuse complaint: the facts and the proof
// that the registrar was told, twice, and what it answered.
func complaintPacket(ctx context.Context, st LadderStore, rep *Reporter, g Rung, rungs []Rung, days int, now time.Time) (string, error) {
	r := g.Report
	var b strings.Builder
	b.WriteString("ICANN Contractual Compliance: registrar abuse complaint (submit at https://www.icann.org/compliance/complaint)\n\n")
	fmt.Fprintf(&b, "Domain: %s\nRegistrar: %s\nRegistrar abuse contact: %s\nAbuse type: %s\n\n", strings.Join(r.Names, ", "), oneLine(r.Registrar), r.Recipient, r.AbuseType)
	fmt.Fprintf(&b, "The registrar was told and did not act within %d business days, twice:\n\n", days)
	write := func(x *store.AbuseReport, events []store.ReportEvent) {
		fmt.Fprintf(&b, "- %s %s, message %s, sent %s", x.Kind, x.Destination, x.MessageID, x.SentAt.UTC().Format(utcFormat))
		if x.SMTPReply != "" {
			fmt.Fprintf(&b, " (accepted by the mail server: %s)", oneLine(x.SMTPReply))
		}
		b.WriteString("\n")
		for _, e := range events {
			fmt.Fprintf(&b, "    %s  %s by %s", e.At.UTC().Format(utcFormat), e.State, oneLine(e.Actor))
			if e.Note != "" {
				fmt.Fprintf(&b, ": %s", oneLine(e.Note))
			}
			b.WriteString("\n")
		}
	}
	write(r, g.Events)
	for _, other := range rungs {
		if other.Report.FollowUpOf == r.ID && other.Report.Kind == store.KindFollowUp {
			write(other.Report, other.Events)
		}
	}
	fmt.Fprintf(&b, "\nThe original report (with its screenshot and X-ARF evidence) is the file %s.\n", r.File)
	fmt.Fprintf(&b, "Complainant: %s <%s>", oneLine(rep.Name), rep.Email)
	if rep.Organization != "" {
		fmt.Fprintf(&b, ", %s", oneLine(rep.Organization))
	}
	fmt.Fprintf(&b, "\nPrepared %s\n", now.UTC().Format(utcFormat))
	return b.String(), nil
}
