package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// backupService is the scheduled backups, as the backups page sees them.
type backupService interface {
	Status() services.BackupStatus
	RunManual(ctx context.Context) (*services.BackupFile, error)
}

func (s *Server) showBackups(c echo.Context) error {
	st := s.backups.Status()
	k := s.clock(c)
	v := views.BackupsView{Postgres: st.Postgres, Enabled: st.Enabled, Dir: st.Dir, Every: everyText(st.Every), Keep: strconv.Itoa(st.Keep),
		Running: st.Running, FilesError: st.FilesError}
	if st.Latest != nil {
		v.Latest = &views.BackupRow{Name: st.Latest.Name, At: k.view(st.Latest.At), Size: services.FormatBytes(st.Latest.Size)}
		if st.Latest.Took > 0 {
			v.LatestTook = st.Latest.Took.Round(time.Millisecond).String()
		}
	}
	if !st.Next.IsZero() {
		t := k.view(st.Next)
		v.Next = &t
	}
	if st.Failed != nil {
		t := k.view(st.Failed.At)
		v.Failed, v.FailedAt = st.Failed.Error, &t
	}
	for _, f := range st.Files {
		v.Files = append(v.Files, views.BackupRow{Name: f.Name, At: k.view(f.At), Size: services.FormatBytes(f.Size)})
	}
	for _, f := range st.Manual {
		v.Manual = append(v.Manual, views.BackupRow{Name: f.Name, At: k.view(f.At), Size: services.FormatBytes(f.Size)})
	}
	return render(c, http.StatusOK, views.BackupsPage(s.page(c, "Backups", "backups"), v))
}

// runBackup makes a backup by hand into the scheduled backups' directory now: at
// most one a minute, kept apart from the scheduled ones.
func (s *Server) runBackup(c echo.Context) error {
	if !s.backups.Status().Enabled {
		return s.redirectWithFlash(c, "/backups", "error", "Scheduled backups are off: set GRCONNECT_BACKUP_DIR first.")
	}
	// A closed tab must not cut the backup short.
	f, err := s.backups.RunManual(context.WithoutCancel(c.Request().Context()))
	var tooSoon *services.BackupTooSoonError
	switch {
	case errors.As(err, &tooSoon):
		k := s.clock(c)
		return s.redirectWithFlash(c, "/backups", "error", "Not made: a backup was made by hand at "+k.text(tooSoon.Last)+
			", less than a minute ago. Backups by hand are limited to one a minute; try again from "+k.text(tooSoon.Next)+".")
	case errors.Is(err, services.ErrBackupRunning):
		return s.redirectWithFlash(c, "/backups", "error", "A backup is being made right now; it shows here once it is done.")
	case f == nil && err != nil:
		s.log.Error("backup failed", "error", err, "request_id", requestIDOf(c))
		return s.redirectWithFlash(c, "/backups", "error", "The backup failed: "+err.Error())
	}
	if err != nil { // made, but something after it failed (removing old backups)
		s.log.Warn("backup made, with a problem", "file", f.Name, "error", err, "request_id", requestIDOf(c))
	}
	s.log.Info("backup made", "file", f.Name, "by", currentOperator(c).ID)
	return s.redirectWithFlash(c, "/backups", "success", "Backup "+f.Name+" made ("+services.FormatBytes(f.Size)+").")
}

// everyText says an interval in words: "24 hours", "90 minutes".
func everyText(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d >= 48*time.Hour:
		return plural(int64(d/(24*time.Hour)), "day", "days")
	case d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour", "hours")
	case d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute", "minutes")
	}
	return d.String()
}
