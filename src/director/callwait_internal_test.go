package director

import (
	"context"
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/bbr-release/bbr/src/orchestrator"
)

var _ = Describe("waiting for an abandoned set-up", func() {
	It("returns, once cancelled, only after the call has ended", func() {
		ctx, cancel := context.WithCancel(context.Background())
		release, ended := make(chan struct{}), make(chan struct{})
		go func() { <-release; cancel() }()
		_, err := callWaiting(ctx, time.Minute, func() (int, error) {
			close(release) // cancelled while the task runs
			<-ctx.Done()
			close(ended)
			return 1, nil
		})
		// Whichever it sees first, the call has ended when it returns.
		Expect(ended).To(BeClosed())
		if err != nil {
			Expect(err).To(MatchError(context.Canceled))
		}
	})

	It("gives up after the grace, saying the set-up had not finished", func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		block := make(chan struct{})
		DeferCleanup(func() { close(block) })
		_, err := callWaiting(ctx, 10*time.Millisecond, func() (int, error) { <-block; return 0, errors.New("late") })
		Expect(err).To(MatchError(orchestrator.ErrSetUpUnfinished))
		Expect(err).To(MatchError(context.Canceled))
	})
})
