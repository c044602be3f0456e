package demo

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// saveDelay gathers the changes of a burst (a connect flow changes the simulator
// three times, a refresh twice) into one write.
const saveDelay = 250 * time.Millisecond

// saver keeps the simulator's state in the database under the demo app: sealed
// with the secret key (it holds the simulated tokens and the demo client's
// secret), written in the background after changes and once more at stop.
type saver struct {
	store *models.Store
	box   *secrets.Box
	log   *slog.Logger

	kick chan struct{} // a change happened; buffered, so changes coalesce
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	appID string
	fake  *getresponsetest.Fake
	// mu orders the writes as their snapshots were taken.
	mu sync.Mutex
}

// changed is the simulator's OnChange: it never blocks the simulator.
func (s *saver) changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func snapshotAAD(appID string) string { return secrets.AAD("demo_state", appID, "snapshot") }

// restore loads the saved state into fake. A state that cannot be read (another
// secret key, a snapshot of another version) is logged and the demo starts afresh.
func (s *saver) restore(ctx context.Context, appID string, fake *getresponsetest.Fake) error {
	s.kick, s.done = make(chan struct{}, 1), make(chan struct{})
	st, err := s.store.DemoStateOf(ctx, appID)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.SnapshotEnc == "" {
		return nil
	}
	data, err := s.box.Open(st.SnapshotEnc, snapshotAAD(appID))
	if err == nil {
		err = fake.Restore([]byte(data))
	}
	if err != nil {
		s.log.Warn("demo mode: the saved simulator state cannot be read; starting afresh (demo connections will need a reconnect)", "error", err)
	}
	return nil
}

// start saves fake's state after each burst of changes until stop.
func (s *saver) start(appID string, fake *getresponsetest.Fake) {
	s.appID, s.fake = appID, fake
	s.wg.Go(func() {
		for {
			select {
			case <-s.kick:
				select {
				case <-time.After(saveDelay):
				case <-s.done:
				}
				select {
				case <-s.kick:
				default:
				}
				s.save()
			case <-s.done:
				return
			}
		}
	})
}

// stop ends the background writer and saves the last state.
func (s *saver) stop() {
	s.once.Do(func() {
		if s.done == nil {
			return
		}
		close(s.done)
		s.wg.Wait()
		if s.fake != nil {
			s.save()
		}
	})
}

// flush saves the state now (seeding waits for it).
func (s *saver) flush() { s.save() }

func (s *saver) save() {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := s.fake.Snapshot()
	if err != nil {
		s.log.Warn("demo mode: snapshot the simulator", "error", err)
		return
	}
	sealed, err := s.box.Seal(string(data), snapshotAAD(s.appID))
	if err != nil {
		s.log.Warn("demo mode: seal the simulator state", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.SaveDemoSnapshot(ctx, s.appID, sealed); err != nil {
		s.log.Warn("demo mode: save the simulator state", "error", err)
	}
}
