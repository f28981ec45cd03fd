package sample

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// RunAPI is the body of the hidden `bbr-lab sample-api` the api job
// starts: ServeAPI until SIGTERM or SIGINT, with its log appended to
// logPath (stderr when empty), where the specs read when it was locked.
func RunAPI(cfg APIConfig, logPath string) error {
	cfg.Log = os.Stderr
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("opening log: %w", err)
		}
		defer f.Close()
		cfg.Log = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return ServeAPI(ctx, cfg)
}
