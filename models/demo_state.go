package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DemoState is demo mode's saved simulator, kept under the demo app: the sealed
// snapshot of the simulated GetResponse and when the demo connections were seeded.
type DemoState struct {
	AppID       string `gorm:"primaryKey"`
	SnapshotEnc string
	SeededAt    *time.Time
	UpdatedAt   time.Time
}

// DemoStateOf returns the saved demo state of an app, or ErrNotFound.
func (s *Store) DemoStateOf(ctx context.Context, appID string) (*DemoState, error) {
	var d DemoState
	err := s.db.WithContext(ctx).Where("app_id = ?", appID).First(&d).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch the demo state of app %s", appID)
	}
	return &d, nil
}

// SaveDemoSnapshot stores the sealed simulator snapshot of an app.
func (s *Store) SaveDemoSnapshot(ctx context.Context, appID, snapshotEnc string) error {
	d := DemoState{AppID: appID, SnapshotEnc: snapshotEnc, UpdatedAt: Now()}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "app_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"snapshot_enc", "updated_at"}),
	}).Create(&d).Error
	return storeError(err, "save the demo snapshot of app %s", appID)
}

// ClaimDemoSeeding marks an app's demo connections as seeded and reports whether
// this call did it: only the first start of a demo seeds.
func (s *Store) ClaimDemoSeeding(ctx context.Context, appID string) (bool, error) {
	claimed := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := Now()
		var d DemoState
		err := tx.Where("app_id = ?", appID).First(&d).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			claimed = true
			return tx.Create(&DemoState{AppID: appID, SeededAt: &now, UpdatedAt: now}).Error
		case err != nil:
			return err
		case d.SeededAt != nil:
			return nil
		}
		res := tx.Model(&DemoState{}).Where("app_id = ? AND seeded_at IS NULL", appID).Update("seeded_at", now)
		claimed = res.RowsAffected == 1
		return res.Error
	})
	return claimed, storeError(err, "claim the demo seeding of app %s", appID)
}
